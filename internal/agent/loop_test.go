package agent_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

var hangul = regexp.MustCompile(`\p{Hangul}`)

func TestStreamingOrder(t *testing.T) {
	for _, anth := range []bool{false, true} {
		name := map[bool]string{false: "openai", true: "anthropic"}[anth]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, setup{anthropic: anth},
				llmtest.Turn{Reasoning: []string{"검색이 필요하다"}, Text: []string{"찾아볼게요."}, ToolCalls: []llmtest.Call{call("web_search", `{"qu`, `ery": "예술의`, ` 전당"}`)}},
				llmtest.Turn{Text: []string{"예술의 전당은 ", "서울 서초구에 있습니다."}},
			)
			evs := f.run(t, "alice", agent.ChatRequest{Message: "예술의 전당이 어디있어?"})
			want := []string{"run.started", "reasoning.delta", "message.delta", "tool.started", "tool.finished", "message.delta", "run.finished"}
			if d := cmp.Diff(want, kinds(evs)); d != "" {
				t.Fatalf("events (-want +got):\n%s", d)
			}
			var deltas string
			for i, e := range evs {
				if e.Seq != i+1 || e.RunID != evs[0].RunID {
					t.Errorf("event %d: seq %d run %q", i, e.Seq, e.RunID)
				}
				if e.Type == agent.EventMessageDelta {
					deltas += e.Delta
				}
			}
			res := last(evs).Result
			if res.Text != deltas || res.Text != "찾아볼게요.\n\n예술의 전당은 서울 서초구에 있습니다." {
				t.Errorf("text %q, deltas %q", res.Text, deltas)
			}
			started := find(evs, agent.EventToolStarted)[0].Tool
			if started.Server != "switchboard" || started.Tool != "web_search" || string(started.Arguments) != `{"query": "예술의 전당"}` {
				t.Errorf("tool.started %+v", started)
			}
			if res.Usage.Input != 20 || res.Usage.Output != 10 {
				t.Errorf("usage %+v", res.Usage)
			}
			// The search result went back to the model.
			reqs := f.model.Requests()
			if tr := reqs[1].ToolResults(); len(tr) != 1 || !strings.Contains(tr[0].Content, "2 results") {
				t.Errorf("tool results sent back: %+v", tr)
			}
		})
	}
}

func TestParallelToolsInCallOrder(t *testing.T) {
	f := newFixture(t, setup{},
		llmtest.Turn{ToolCalls: []llmtest.Call{
			{ID: "call_a", Name: "switchboard__slow_a", Args: []string{`{"n":`, `1}`}},
			{ID: "call_b", Name: "switchboard__slow_b", Args: []string{`{"n":2}`}},
		}},
		llmtest.Turn{Text: []string{"both done"}},
	)
	evs := f.run(t, "alice", agent.ChatRequest{Message: "run both"})
	if last(evs).Type != agent.EventRunFinished {
		t.Fatalf("last event %+v", last(evs))
	}
	a, b := f.tools.spans["slow_a"], f.tools.spans["slow_b"]
	if !(a[0].Before(b[1]) && b[0].Before(a[1])) {
		t.Errorf("calls did not overlap: a %v–%v, b %v–%v", a[0], a[1], b[0], b[1])
	}
	var ids []string
	for _, r := range f.model.Requests()[1].ToolResults() {
		ids = append(ids, r.CallID)
	}
	if d := cmp.Diff([]string{"call_a", "call_b"}, ids); d != "" {
		t.Errorf("results order (-want +got):\n%s", d)
	}
}

func TestToolErrorGoesBackToModel(t *testing.T) {
	for _, anth := range []bool{false, true} {
		t.Run(map[bool]string{false: "openai", true: "anthropic"}[anth], func(t *testing.T) {
			f := newFixture(t, setup{anthropic: anth},
				llmtest.Turn{ToolCalls: []llmtest.Call{call("explode", `{}`), {Name: "no_such_tool", Args: []string{`{}`}}}},
				llmtest.Turn{Text: []string{"the tool failed"}},
			)
			evs := f.run(t, "alice", agent.ChatRequest{Message: "go"})
			fin := find(evs, agent.EventToolFinished)
			if len(fin) != 2 || !fin[0].Tool.IsError || !fin[1].Tool.IsError {
				t.Fatalf("tool.finished %+v", fin)
			}
			for _, e := range fin {
				if !strings.Contains(e.Tool.Summary, "실패") {
					t.Errorf("summary %q: want Korean failure", e.Tool.Summary)
				}
			}
			tr := f.model.Requests()[1].ToolResults()
			if len(tr) != 2 || !strings.Contains(tr[0].Content, "upstream exploded") || !strings.Contains(tr[1].Content, "unknown tool") {
				t.Fatalf("results sent back: %+v", tr)
			}
			if anth && !(tr[0].IsError && tr[1].IsError) {
				t.Errorf("anthropic is_error not set: %+v", tr)
			}
			if last(evs).Type != agent.EventRunFinished {
				t.Errorf("last event %+v", last(evs))
			}
		})
	}
}

func TestIterationLimit(t *testing.T) {
	loop := llmtest.Turn{ToolCalls: []llmtest.Call{call("get_current_time", `{}`)}}
	f := newFixture(t, setup{opts: func(o *agent.Options) { o.MaxIterations = 3 }}, loop, loop, loop, loop)
	evs := f.run(t, "alice", agent.ChatRequest{Message: "loop forever"})
	res := last(evs).Result
	if res == nil || res.Stop != "max_iterations" || !strings.Contains(res.Text, "3번") {
		t.Fatalf("last event %+v", last(evs))
	}
	if n := len(f.model.Requests()); n != 3 {
		t.Errorf("model requests = %d, want 3", n)
	}
	if n := len(find(evs, agent.EventToolFinished)); n != 2 {
		t.Errorf("tool calls = %d, want 2 (the last turn's calls are not run)", n)
	}
}

func TestCancelMidStream(t *testing.T) {
	for _, anth := range []bool{false, true} {
		t.Run(map[bool]string{false: "openai", true: "anthropic"}[anth], func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			f := newFixture(t, setup{anthropic: anth}, llmtest.Turn{Text: []string{"partial answer"}, Hold: hold, ToolCalls: []llmtest.Call{call("explode", "{}")}})
			r, err := f.host.Start(t.Context(), "alice", agent.ChatRequest{Message: "q"})
			if err != nil {
				t.Fatal(err)
			}
			var evs []agent.Event
			r.Follow(t.Context(), 0, func(e agent.Event) error {
				evs = append(evs, e)
				if e.Type == agent.EventMessageDelta {
					r.Cancel()
				}
				return nil
			})
			got := last(evs)
			if got.Type != agent.EventError || got.Message != "실행이 취소되었습니다." {
				t.Errorf("last event %+v", got)
			}
			if n := len(find(evs, agent.EventToolStarted)); n != 0 {
				t.Errorf("%d tools started after cancel", n)
			}
		})
	}
}

func TestCancelMidTool(t *testing.T) {
	f := newFixture(t, setup{opts: func(o *agent.Options) { o.Language = agent.English }},
		llmtest.Turn{ToolCalls: []llmtest.Call{call("block", "{}"), call("slow_a", `{"n":1}`)}})
	r, err := f.host.Start(t.Context(), "alice", agent.ChatRequest{Message: "q"})
	if err != nil {
		t.Fatal(err)
	}
	<-f.tools.started
	r.Cancel()
	select {
	case <-f.tools.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("tool call was not cancelled")
	}
	<-r.Done()
	evs := r.Events()
	if got := last(evs); got.Type != agent.EventError || got.Message != "The run was cancelled." {
		t.Errorf("last event %+v", got)
	}
	if n := len(f.model.Requests()); n != 1 {
		t.Errorf("model called %d times after cancel", n)
	}
}

func TestModelErrors(t *testing.T) {
	f := newFixture(t, setup{}, llmtest.Turn{Status: 400, Error: "tools[0].function.parameters: invalid schema"})
	evs := f.run(t, "alice", agent.ChatRequest{Message: "q"})
	if got := last(evs); got.Type != agent.EventError || !strings.Contains(got.Message, "거부") || !strings.Contains(got.Message, "invalid schema") {
		t.Errorf("400: %+v", got)
	}
	f.model.RequireKey("secret")
	evs = f.run(t, "alice", agent.ChatRequest{Message: "q", Language: "en"})
	if got := last(evs); got.Type != agent.EventError || !strings.Contains(got.Message, "refused the API key") {
		t.Errorf("401: %+v", got)
	}
}

func TestAuthRequired(t *testing.T) {
	f := newFixture(t, setup{}, llmtest.Turn{ToolCalls: []llmtest.Call{call("private_docs", "{}")}}, llmtest.Turn{Text: []string{"please sign in"}})
	evs := f.run(t, "alice", agent.ChatRequest{Message: "q"})
	auth := find(evs, agent.EventAuthRequired)
	if len(auth) != 1 || auth[0].Auth.Server != "switchboard" || auth[0].Auth.URL != "https://auth.example/authorize?x=1" {
		t.Errorf("auth.required: %+v", auth)
	}
}

// TestCookbookKorean replays the cookbook's scenario: a search, then an
// event three days later at 15:00 KST in the same conversation.
func TestCookbookKorean(t *testing.T) {
	f := newFixture(t, setup{store: true},
		llmtest.Turn{ToolCalls: []llmtest.Call{call("web_search", `{"query":`, ` "예술의 전당 위치"}`)}},
		llmtest.Turn{Text: []string{"예술의 전당은 서울 서초구 ", "남부순환로 2406에 있습니다 [1]."}},
		llmtest.Turn{ToolCalls: []llmtest.Call{call("get_current_time", `{}`)}},
		llmtest.Turn{Respond: func(r llmtest.Request) llmtest.Turn {
			// The fake model reads the clock's answer, as the real one would.
			tr := r.ToolResults()
			cur, err := time.Parse(time.RFC3339, strings.Fields(tr[0].Content)[0])
			if err != nil {
				return llmtest.Turn{Status: 400, Error: "no time in " + tr[0].Content}
			}
			d := cur.AddDate(0, 0, 3)
			start := time.Date(d.Year(), d.Month(), d.Day(), 15, 0, 0, 0, cur.Location())
			a, _ := json.Marshal(map[string]string{"title": "예술의 전당 방문", "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "location": "예술의 전당"})
			return llmtest.Turn{ToolCalls: []llmtest.Call{call("create_calendar_schedule", string(a[:20]), string(a[20:]))}}
		}},
		llmtest.Turn{Text: []string{"11월 18일 오후 3시에 '예술의 전당 방문' 일정을 만들었습니다."}},
	)
	first := f.run(t, "alice", agent.ChatRequest{Message: "예술의 전당이 어디있어?"})
	res := last(first).Result
	if res == nil {
		t.Fatalf("first run: %+v", last(first))
	}
	want := []agent.Reference{
		{Index: 1, Title: "예술의 전당 오시는 길", URL: "https://www.sac.or.kr/site/main/content/location", Snippet: "서울특별시 서초구 남부순환로 2406", Server: "switchboard", Tool: "web_search"},
		{Index: 2, Title: "예술의전당 - 나무위키", URL: "https://namu.wiki/w/예술의전당", Snippet: "서초구 서초동에 있는 복합 예술 시설", Server: "switchboard", Tool: "web_search"},
	}
	if d := cmp.Diff(want, res.References); d != "" {
		t.Errorf("references (-want +got):\n%s", d)
	}
	conv := first[0].ConversationID
	second := f.run(t, "alice", agent.ChatRequest{ConversationID: conv, Message: "3일 뒤 오후 3시에 방문 일정 잡아줘"})
	if last(second).Type != agent.EventRunFinished {
		t.Fatalf("second run: %+v", last(second))
	}
	if len(f.tools.calendar) != 1 || f.tools.calendar[0]["start"] != "2026-11-18T15:00:00+09:00" {
		t.Fatalf("calendar got %+v", f.tools.calendar)
	}
	var summaries []string
	for _, e := range append(first, second...) {
		if e.Tool != nil {
			summaries = append(summaries, e.Tool.Summary)
		}
	}
	wantSummaries := []string{
		`웹 검색: "예술의 전당 위치"`,
		`"예술의 전당 위치" 검색 결과 2건 (sac.or.kr, namu.wiki)`,
		"현재 시각 확인",
		"현재 시각: 2026-11-15 10:00 (일요일)",
		`일정 만들기: "예술의 전당 방문" 2026-11-18 15:00`,
		`일정을 만들었습니다: "예술의 전당 방문" 2026-11-18 15:00`,
	}
	if d := cmp.Diff(wantSummaries, summaries); d != "" {
		t.Errorf("summaries (-want +got):\n%s", d)
	}
	// The second run's model saw the first exchange (history window).
	reqs := f.model.Requests()
	msgs, _ := reqs[2].Body["messages"].([]any)
	if b, _ := json.Marshal(msgs); !strings.Contains(string(b), "남부순환로 2406") {
		t.Errorf("history not sent: %s", b)
	}
	c, err := f.mem.Get(t.Context(), "alice", conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Messages) != 4 || len(c.Messages[1].References) != 2 || len(c.Messages[3].ToolCalls) != 2 || c.Messages[3].ToolCalls[1].Summary == "" {
		t.Errorf("stored conversation: %+v", c)
	}
}

func TestSummaries(t *testing.T) {
	// Korean never falls back to English framing.
	for _, tc := range []struct{ tool, server string }{{"web_search", "switchboard"}, {"search_code", "github"}, {"get_current_time", "switchboard"}} {
		ko := agent.StartSummaryForTest("ko", tc.server, tc.tool, map[string]any{"query": "mcp"})
		en := agent.StartSummaryForTest("en", tc.server, tc.tool, map[string]any{"query": "mcp"})
		if !hangul.MatchString(ko) || hangul.MatchString(en) {
			t.Errorf("%s: ko %q, en %q", tc.tool, ko, en)
		}
	}
	got := agent.StartSummaryForTest("ko", "github", "search_code", map[string]any{"query": "hub", "limit": float64(5), "nested": map[string]any{}})
	if got != `github의 search_code 호출 (limit=5, query="hub")` {
		t.Errorf("generic ko: %q", got)
	}
}

func TestRunTimeout(t *testing.T) {
	f := newFixture(t, setup{opts: func(o *agent.Options) { o.ToolTimeout = 50 * time.Millisecond; o.Language = "en" }},
		llmtest.Turn{ToolCalls: []llmtest.Call{call("slow_a", `{"n":1}`)}}, llmtest.Turn{Text: []string{"ok"}})
	evs := f.run(t, "alice", agent.ChatRequest{Message: "q"})
	fin := find(evs, agent.EventToolFinished)
	if len(fin) != 1 || !fin[0].Tool.IsError || !strings.Contains(fin[0].Tool.Summary, "timed out") {
		t.Errorf("tool.finished %+v", fin)
	}
}
