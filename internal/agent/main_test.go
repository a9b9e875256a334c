package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seoul is the fake clock's zone; now is the fake "current time", a Sunday.
var (
	seoul = time.FixedZone("KST", 9*3600)
	now   = time.Date(2026, 11, 15, 10, 0, 0, 0, seoul)
)

const slowDelay = 300 * time.Millisecond

// toolLog records what the fake built-in tools saw.
type toolLog struct {
	mu        sync.Mutex
	spans     map[string][2]time.Time // tool -> start, end
	calendar  []map[string]any
	cancelled chan string
	started   chan string
}

func (l *toolLog) span(name string, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans[name] = [2]time.Time{start, time.Now()}
}

func object(props map[string]any) map[string]any {
	return map[string]any{"type": "object", "properties": props}
}

func text(s string) []mcp.Content { return []mcp.Content{&mcp.TextContent{Text: s}} }

func args(req *mcp.CallToolRequest) map[string]any {
	var m map[string]any
	json.Unmarshal(req.Params.Arguments, &m)
	return m
}

// builtin is a fake built-in server with the cookbook's tools and a few
// for the loop's edge cases. The real calendar and search tools live in
// internal/tools.
func builtin(l *toolLog) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "fake-builtin", Version: "1"}, &mcp.ServerOptions{Instructions: "Use get_current_time for relative dates."})
	str := map[string]any{"type": "string"}
	s.AddTool(&mcp.Tool{Name: "web_search", Description: "Search the web", InputSchema: object(map[string]any{"query": str})},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			q, _ := args(req)["query"].(string)
			items := []any{
				map[string]any{"title": "<b>예술의 전당</b> 오시는 길", "link": "https://www.sac.or.kr/site/main/content/location", "description": "서울특별시 서초구 남부순환로 2406"},
				map[string]any{"title": "예술의전당 - 나무위키", "link": "https://namu.wiki/w/예술의전당", "description": "서초구 서초동에 있는 복합 예술 시설"},
			}
			return &mcp.CallToolResult{Content: text(fmt.Sprintf("%d results for %s", len(items), q)),
				StructuredContent: map[string]any{"query": q, "total": 2, "items": items}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "get_current_time", Description: "Current time", InputSchema: object(map[string]any{})},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: text(now.Format(time.RFC3339) + " (Sunday, 일요일) in Asia/Seoul"),
				StructuredContent: map[string]any{"timezone": "Asia/Seoul", "datetime": now.Format(time.RFC3339), "weekday": "Sunday", "weekdayKo": "일요일"}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "create_calendar_schedule", Description: "Create an event in the user's Naver Calendar",
		InputSchema: object(map[string]any{"title": str, "start": str, "end": str, "location": str})},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			a := args(req)
			l.mu.Lock()
			l.calendar = append(l.calendar, a)
			l.mu.Unlock()
			return &mcp.CallToolResult{Content: text("created"), StructuredContent: map[string]any{"result": "success", "title": a["title"], "start": a["start"]}}, nil
		})
	for _, name := range []string{"slow_a", "slow_b"} {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: object(map[string]any{"n": map[string]any{"type": "number"}})},
			func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				start := time.Now()
				select {
				case <-time.After(slowDelay):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				l.span(name, start)
				return &mcp.CallToolResult{Content: text(name + " done")}, nil
			})
	}
	s.AddTool(&mcp.Tool{Name: "explode", InputSchema: object(nil)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: text("upstream exploded: quota exceeded")}, nil
		})
	s.AddTool(&mcp.Tool{Name: "block", InputSchema: object(nil)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			l.started <- "block"
			<-ctx.Done()
			l.cancelled <- "block"
			return nil, ctx.Err()
		})
	s.AddTool(&mcp.Tool{Name: "private_docs", InputSchema: object(nil)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, mcp.URLElicitationRequiredError([]*mcp.ElicitParams{{Mode: "url", ElicitationID: "e1", Message: "Sign in", URL: "https://auth.example/authorize?x=1"}})
		})
	return s
}

type fixture struct {
	hub   *hub.Hub
	host  *agent.Host
	model *llmtest.Server
	mem   *memory
	tools *toolLog
}

type setup struct {
	anthropic bool
	store     bool
	opts      func(*agent.Options)
}

func newFixture(t *testing.T, s setup, turns ...llmtest.Turn) *fixture {
	t.Helper()
	f := &fixture{tools: &toolLog{spans: map[string][2]time.Time{}, cancelled: make(chan string, 4), started: make(chan string, 4)}}
	typ := llm.TypeOpenAI
	if s.anthropic {
		typ = llm.TypeAnthropic
		f.model = llmtest.NewAnthropic(turns...)
	} else {
		f.model = llmtest.NewOpenAI(turns...)
	}
	f.hub = hub.New(nil, &hub.Options{Builtin: builtin(f.tools)})
	f.hub.Start()
	if err := f.hub.WaitConnected(t.Context()); err != nil {
		t.Fatal(err)
	}
	reg, err := llm.NewRegistry(map[string]llm.ProviderConfig{"fake": {Type: typ, BaseURL: f.model.URL, RetryDelay: time.Millisecond}}, "fake/test-model", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := &agent.Options{Models: reg, Tools: agent.NewHubTools(f.hub), Now: time.Now}
	if s.store {
		f.mem = newMemory()
		opts.Conversations = f.mem
		opts.AgentStore = agentStore{f.mem}
	}
	if s.opts != nil {
		s.opts(opts)
	}
	f.host = agent.New(opts)
	t.Cleanup(func() {
		f.host.Close()
		f.hub.Close()
		f.model.Close()
	})
	return f
}

// run starts a run and returns all its events.
func (f *fixture) run(t *testing.T, user string, req agent.ChatRequest) []agent.Event {
	t.Helper()
	r, err := f.host.Start(t.Context(), user, req)
	if err != nil {
		t.Fatal(err)
	}
	var evs []agent.Event
	if err := r.Follow(t.Context(), 0, func(e agent.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs
}

// kinds compresses an event list to its types, merging runs of deltas.
func kinds(evs []agent.Event) []string {
	var out []string
	for _, e := range evs {
		if len(out) > 0 && out[len(out)-1] == e.Type && (e.Type == agent.EventMessageDelta || e.Type == agent.EventReasoningDelta) {
			continue
		}
		out = append(out, e.Type)
	}
	return out
}

func last(evs []agent.Event) agent.Event { return evs[len(evs)-1] }

func find(evs []agent.Event, typ string) []agent.Event {
	var out []agent.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func call(name string, args ...string) llmtest.Call {
	return llmtest.Call{Name: hub.QualifiedName(hub.BuiltinName, name), Args: args}
}
