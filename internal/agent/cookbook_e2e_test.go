package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
	"github.com/switchboard-mcp/switchboard/internal/tools"
)

// TestCookbookKoreanE2E is issue 6's acceptance 2 with the real parts: the
// built-in tools of internal/tools (NAVER search and NAVER Calendar against
// the NAVER fake, the clock injected), the hub, the agent host and its SSE
// API, and a scripted OpenAI-compatible model. Only NAVER and the model are
// fakes.
func TestCookbookKoreanE2E(t *testing.T) {
	// 08:30 on Sunday 2026-11-29 in Seoul is still Saturday in UTC, so a
	// clock or calendar that slipped into UTC would land on another day.
	clock := time.Date(2026, 11, 28, 23, 30, 0, 0, time.UTC)
	const wantDTStart = "DTSTART;TZID=Asia/Seoul:20261202T150000"
	const wantDTEnd = "DTEND;TZID=Asia/Seoul:20261202T160000"

	const aliceNaverID = "32742776"
	naver := idptest.NewNaver(t, &idptest.NaverOptions{Users: []idptest.NaverUser{
		{ID: aliceNaverID, Name: "김앨리스"}, {ID: "99999999", Name: "다른 사람"},
	}})
	naver.SetSearchItems("webkr", []idptest.SearchItem{
		{Title: "<b>예술의 전당</b> 오시는 길", Link: "https://www.sac.or.kr/site/main/content/location", Description: "서울특별시 서초구 <b>남부순환로</b> 2406 &amp; 주차 안내"},
		{Title: "<b>예술의전당</b> - 나무위키", Link: "https://namu.wiki/w/%EC%98%88%EC%88%A0%EC%9D%98%EC%A0%84%EB%8B%B9", Description: "서초구 서초동에 있는 &quot;복합 예술 시설&quot;"},
	})
	aliceToken, _ := naver.IssueTokens(aliceNaverID, "")
	var (
		mu        sync.Mutex // guards tokenAsks
		tokenAsks []string   // user/provider of each token the calendar asked for
	)
	builtin := tools.NewServer(&tools.Options{
		Now: func() time.Time { return clock },
		WebSearch: tools.WebSearchOptions{
			Provider: "naver", NaverClientID: naver.ClientID(), NaverClientSecret: naver.ClientSecret(), NaverBaseURL: naver.URL(),
		},
		Calendar: tools.CalendarOptions{Provider: "naver", NaverBaseURL: naver.URL()},
		ProviderToken: func(ctx context.Context, userID, provider string) (string, error) {
			mu.Lock()
			tokenAsks = append(tokenAsks, userID+"/"+provider)
			mu.Unlock()
			if userID == "alice" && provider == tools.ProviderNaver {
				return aliceToken, nil
			}
			return "", fmt.Errorf("%s: %w", userID, tools.ErrNotAuthorized)
		},
	})

	model := llmtest.NewOpenAI(
		// Run 1: "예술의 전당이 어디있어?"
		llmtest.Turn{ToolCalls: []llmtest.Call{call("web_search", `{"query":`, ` "예술의 전당 위치"}`)}},
		llmtest.Turn{Text: []string{"예술의 전당은 서울 서초구 ", "남부순환로 2406에 있습니다 [1]."}},
		// Run 2: "3일 뒤 오후 3시에 방문 일정 잡아줘"
		llmtest.Turn{ToolCalls: []llmtest.Call{call("get_current_time", `{"timezone":"Asia/Seoul"}`)}},
		llmtest.Turn{Respond: func(r llmtest.Request) llmtest.Turn {
			// The fake model reads the clock's answer, as the real one would.
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
			a, _ := json.Marshal(map[string]string{"title": "예술의 전당 방문", "start": start.Format(time.RFC3339), "location": "서울 서초구 남부순환로 2406"})
			// Streamed in two fragments, split where a real stream could
			// split: never inside a UTF-8 sequence.
			cut := strings.Index(string(a), `"start"`)
			return llmtest.Turn{ToolCalls: []llmtest.Call{call("create_calendar_schedule", string(a[:cut]), string(a[cut:]))}}
		}},
		llmtest.Turn{Text: []string{"12월 2일 오후 3시에 '예술의 전당 방문' 일정을 ", "만들었습니다."}},
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

	chat := func(req agent.ChatRequest) []agent.Event {
		t.Helper()
		resp := do(t, srv, "alice", http.MethodPost, "/api/chat", req)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("POST /api/chat: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		var evs []agent.Event
		for _, e := range readEvents(t, resp.Body, func(e sseEvent) bool {
			return e.typ == agent.EventRunFinished || e.typ == agent.EventError
		}) {
			if e.typ != e.ev.Type {
				t.Errorf("SSE event %q carries data of type %q", e.typ, e.ev.Type)
			}
			evs = append(evs, e.ev)
		}
		if len(evs) == 0 || last(evs).Type != agent.EventRunFinished {
			t.Fatalf("run did not finish: %+v", evs)
		}
		return evs
	}

	first := chat(agent.ChatRequest{Message: "예술의 전당이 어디있어?"})
	res := last(first).Result
	wantRefs := []agent.Reference{
		{Index: 1, Title: "예술의 전당 오시는 길", URL: "https://www.sac.or.kr/site/main/content/location", Snippet: "서울특별시 서초구 남부순환로 2406 & 주차 안내", Server: hub.BuiltinName, Tool: "web_search"},
		{Index: 2, Title: "예술의전당 - 나무위키", URL: "https://namu.wiki/w/%EC%98%88%EC%88%A0%EC%9D%98%EC%A0%84%EB%8B%B9", Snippet: `서초구 서초동에 있는 "복합 예술 시설"`, Server: hub.BuiltinName, Tool: "web_search"},
	}
	if d := cmp.Diff(wantRefs, res.References); d != "" {
		t.Errorf("run.finished references (-want +got):\n%s", d)
	}
	if res.Text != "예술의 전당은 서울 서초구 남부순환로 2406에 있습니다 [1]." {
		t.Errorf("first answer %q", res.Text)
	}
	// The model got the real search result, tags stripped.
	if tr := model.Requests()[1].ToolResults(); len(tr) != 1 || !strings.Contains(tr[0].Content, "예술의 전당 오시는 길") || strings.Contains(tr[0].Content, "<b>") {
		t.Errorf("search result sent to the model: %+v", tr)
	}
	if reqs := naver.SearchRequests(); len(reqs) != 1 || reqs[0].Kind != "webkr" || reqs[0].Query.Get("query") != "예술의 전당 위치" {
		t.Errorf("NAVER search requests: %+v", reqs)
	}

	second := chat(agent.ChatRequest{ConversationID: first[0].ConversationID, Message: "3일 뒤 오후 3시에 방문 일정 잡아줘"})

	// The fake NAVER Calendar received the event in alice's calendar, three
	// days after the injected clock at 15:00 KST.
	evs := naver.CalendarEvents(aliceNaverID)
	if len(evs) != 1 {
		t.Fatalf("alice's NAVER calendar: %+v (all: %+v)", evs, naver.CalendarEvents(""))
	}
	ics := strings.ReplaceAll(evs[0].ICal, "\r\n ", "") // unfold (RFC 5545 §3.1)
	for _, want := range []string{wantDTStart, wantDTEnd, "SUMMARY:예술의 전당 방문", "LOCATION:서울 서초구 남부순환로 2406", "TZID:Asia/Seoul"} {
		if !strings.Contains(ics, want) {
			t.Errorf("iCalendar lacks %q:\n%s", want, evs[0].ICal)
		}
	}
	mu.Lock()
	if d := cmp.Diff([]string{"alice/naver"}, tokenAsks); d != "" {
		t.Errorf("NAVER tokens asked for (-want +got):\n%s", d)
	}
	mu.Unlock()

	// The model called web_search, then get_current_time and
	// create_calendar_schedule, and the event stream summarized each call
	// in Korean.
	var calls, summaries []string
	for _, e := range append(first, second...) {
		if e.Tool == nil {
			continue
		}
		if e.Type == agent.EventToolStarted {
			calls = append(calls, e.Tool.Server+"/"+e.Tool.Tool)
		}
		if e.Type == agent.EventToolFinished && e.Tool.IsError {
			t.Errorf("%s failed: %s", e.Tool.Tool, e.Tool.Summary)
		}
		if !hangul.MatchString(e.Tool.Summary) {
			t.Errorf("%s summary %q is not Korean", e.Type, e.Tool.Summary)
		}
		summaries = append(summaries, e.Tool.Summary)
	}
	if d := cmp.Diff([]string{"switchboard/web_search", "switchboard/get_current_time", "switchboard/create_calendar_schedule"}, calls); d != "" {
		t.Errorf("tool calls (-want +got):\n%s", d)
	}
	wantSummaries := []string{
		`웹 검색: "예술의 전당 위치"`,
		`"예술의 전당 위치" 검색 결과 2건 (sac.or.kr, namu.wiki)`,
		"현재 시각 확인",
		"현재 시각: 2026-11-29 08:30 (일요일)",
		`일정 만들기: "예술의 전당 방문" 2026-12-02 15:00`,
		`일정을 만들었습니다: "예술의 전당 방문" 2026-12-02 15:00`,
	}
	if d := cmp.Diff(wantSummaries, summaries); d != "" {
		t.Errorf("tool summaries (-want +got):\n%s", d)
	}
	if got := last(second).Result.Text; got != "12월 2일 오후 3시에 '예술의 전당 방문' 일정을 만들었습니다." {
		t.Errorf("second answer %q", got)
	}
	if n := model.Remaining(); n != 0 {
		t.Errorf("%d scripted model turns not used", n)
	}
}
