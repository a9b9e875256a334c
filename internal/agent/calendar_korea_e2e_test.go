package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
	"github.com/switchboard-mcp/switchboard/internal/tools"
	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

// TestAgentKoreanCalendarsE2E is issue 16's acceptance 1 for calendars: an
// agent run (scripted OpenAI-compatible model, the real built-in tools, hub
// and agent host) creates an event in the signed-in user's own Kakao Talk
// Calendar or NAVER WORKS calendar, and a user who has not granted calendar
// access gets the ko/en fix-it message. Only the providers and the model
// are fakes.
func TestAgentKoreanCalendarsE2E(t *testing.T) {
	// 08:30 on Sunday 2026-11-29 in Seoul, still Saturday in UTC.
	clock := time.Date(2026, 11, 28, 23, 30, 0, 0, time.UTC)
	tokens := map[string]string{"tok-alice": "alice", "tok-carol": "carol"}
	tests := []struct {
		provider string
		setup    func(t *testing.T) (tools.CalendarOptions, func(user string) []string)
		consent  []string
	}{
		{tools.ProviderKakao, func(t *testing.T) (tools.CalendarOptions, func(string) []string) {
			f := toolstest.NewKakaoCalendar(t, tokens)
			f.DenyConsent("carol")
			return tools.CalendarOptions{Provider: tools.ProviderKakao, KakaoBaseURL: f.URL}, func(u string) []string {
				var out []string
				for _, e := range f.Events(u, "primary") {
					out = append(out, e.Title+"|"+e.Time.StartAt+"|"+e.Time.EndAt+"|"+e.Time.TimeZone)
				}
				return out
			}
		}, []string{"talk_calendar", "sign in to Switchboard again with Kakao", "톡캘린더"}},
		{tools.ProviderNaverWorks, func(t *testing.T) (tools.CalendarOptions, func(string) []string) {
			f := toolstest.NewNaverWorksCalendar(t, tokens)
			f.DenyScope("carol")
			return tools.CalendarOptions{Provider: tools.ProviderNaverWorks, NaverWorksBaseURL: f.URL}, func(u string) []string {
				var out []string
				for _, e := range f.Events(u, "") {
					out = append(out, e.Summary+"|"+e.Start.DateTime+"|"+e.End.DateTime+"|"+e.Start.TimeZone)
				}
				return out
			}
		}, []string{"scope calendar", "sign in to Switchboard again with NAVER WORKS", "캘린더"}},
	}
	want := map[string]string{
		tools.ProviderKakao:      "예술의 전당 방문|2026-12-02T06:00:00Z|2026-12-02T07:00:00Z|Asia/Seoul",
		tools.ProviderNaverWorks: "예술의 전당 방문|2026-12-02T15:00:00|2026-12-02T16:00:00|Asia/Seoul",
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			calOpts, stored := tt.setup(t)
			builtin := tools.NewServer(&tools.Options{
				Now:      func() time.Time { return clock },
				Calendar: calOpts,
				ProviderToken: func(ctx context.Context, userID, provider string) (string, error) {
					if provider != tt.provider {
						return "", fmt.Errorf("%s: no %s token: %w", userID, provider, tools.ErrNotAuthorized)
					}
					return "tok-" + userID, nil
				},
			})
			schedule := func(r llmtest.Request) llmtest.Turn {
				// The model reads the clock's answer, as the real one would.
				tr := r.ToolResults()
				if len(tr) == 0 {
					return llmtest.Turn{Status: 400, Error: "no tool result"}
				}
				cur, err := time.Parse(time.RFC3339, strings.Fields(tr[len(tr)-1].Content)[0])
				if err != nil {
					return llmtest.Turn{Status: 400, Error: "no time in " + tr[len(tr)-1].Content}
				}
				d := cur.AddDate(0, 0, 3)
				start := time.Date(d.Year(), d.Month(), d.Day(), 15, 0, 0, 0, cur.Location())
				a, _ := json.Marshal(map[string]string{"title": "예술의 전당 방문", "start": start.Format(time.RFC3339)})
				return llmtest.Turn{ToolCalls: []llmtest.Call{call("create_calendar_schedule", string(a))}}
			}
			model := llmtest.NewOpenAI(
				llmtest.Turn{ToolCalls: []llmtest.Call{call("get_current_time", `{"timezone":"Asia/Seoul"}`)}},
				llmtest.Turn{Respond: schedule},
				llmtest.Turn{Text: []string{"12월 2일 오후 3시에 일정을 만들었습니다."}},
				// Carol's run.
				llmtest.Turn{ToolCalls: []llmtest.Call{call("get_current_time", `{"timezone":"Asia/Seoul"}`)}},
				llmtest.Turn{Respond: schedule},
				llmtest.Turn{Text: []string{"캘린더 권한이 없어 일정을 만들지 못했습니다."}},
			)
			t.Cleanup(model.Close)

			h := hub.New(nil, &hub.Options{Builtin: builtin})
			h.Start()
			t.Cleanup(func() { h.Close() })
			if err := h.WaitConnected(t.Context()); err != nil {
				t.Fatal(err)
			}
			reg, err := llm.NewRegistry(map[string]llm.ProviderConfig{"fake": {Type: llm.TypeOpenAI, BaseURL: model.URL, RetryDelay: time.Millisecond}}, "fake/HCX-005", nil)
			if err != nil {
				t.Fatal(err)
			}
			mem := newMemory()
			host := agent.New(&agent.Options{Models: reg, Tools: agent.NewHubTools(h), Conversations: mem, AgentStore: agentStore{mem}})
			t.Cleanup(func() { host.Close() })
			srv := httptest.NewServer(host.Handler(&agent.HandlerOptions{User: func(r *http.Request) (string, bool) {
				u := r.Header.Get("X-Test-User")
				return u, u != ""
			}}))
			t.Cleanup(srv.Close)

			chat := func(user, msg string) []agent.Event {
				t.Helper()
				resp := do(t, srv, user, http.MethodPost, "/api/chat", agent.ChatRequest{Message: msg})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("POST /api/chat: %s", resp.Status)
				}
				var evs []agent.Event
				for _, e := range readEvents(t, resp.Body, func(e sseEvent) bool {
					return e.typ == agent.EventRunFinished || e.typ == agent.EventError
				}) {
					evs = append(evs, e.ev)
				}
				if len(evs) == 0 || last(evs).Type != agent.EventRunFinished {
					t.Fatalf("run did not finish: %+v", evs)
				}
				return evs
			}
			toolErrors := func(evs []agent.Event) (n int) {
				for _, e := range evs {
					if e.Type == agent.EventToolFinished && e.Tool != nil && e.Tool.IsError {
						n++
					}
				}
				return n
			}

			alice := chat("alice", "3일 뒤 오후 3시에 예술의 전당 방문 일정 잡아줘")
			if n := toolErrors(alice); n != 0 {
				t.Errorf("alice's run had %d failed tool calls: %+v", n, alice)
			}
			if got := stored("alice"); len(got) != 1 || got[0] != want[tt.provider] {
				t.Errorf("alice's %s calendar = %v, want [%s]", tt.provider, got, want[tt.provider])
			}

			carol := chat("carol", "3일 뒤 오후 3시에 예술의 전당 방문 일정 잡아줘")
			if n := toolErrors(carol); n != 1 {
				t.Errorf("carol's run had %d failed tool calls, want 1", n)
			}
			// The model got the fix-it message as the tool's result.
			reqs := model.Requests()
			tr := reqs[len(reqs)-1].ToolResults()
			carolSaw := ""
			if len(tr) > 0 {
				carolSaw = tr[len(tr)-1].Content
			}
			for _, w := range tt.consent {
				if !strings.Contains(carolSaw, w) {
					t.Errorf("the model was told %q, which lacks %q", carolSaw, w)
				}
			}
			if got := stored("carol"); len(got) != 0 {
				t.Errorf("carol's calendar = %v", got)
			}
			if n := model.Remaining(); n != 0 {
				t.Errorf("%d scripted model turns not used", n)
			}
		})
	}
}
