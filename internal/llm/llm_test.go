package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fake struct {
	name string
	typ  string
	new  func(turns ...llmtest.Turn) *llmtest.Server
}

var fakes = []fake{
	{"openai", llm.TypeOpenAI, llmtest.NewOpenAI},
	{"anthropic", llm.TypeAnthropic, llmtest.NewAnthropic},
}

func provider(t *testing.T, f fake, srv *llmtest.Server, key string) llm.Provider {
	t.Helper()
	p, err := llm.New("test", llm.ProviderConfig{Type: f.typ, BaseURL: srv.URL, APIKey: key, RetryDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func collect(t *testing.T, s llm.Stream) ([]llm.Event, llm.Turn, error) {
	t.Helper()
	defer s.Close()
	var evs []llm.Event
	var turn llm.Turn
	for s.Next() {
		evs = append(evs, s.Event())
		turn.Add(s.Event())
	}
	return evs, turn, s.Err()
}

func TestStreamTextAndToolCalls(t *testing.T) {
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			srv := f.new(llmtest.Turn{
				Reasoning: []string{"thinking…"},
				Text:      []string{"Let me ", "check."},
				ToolCalls: []llmtest.Call{
					{ID: "c1", Name: "web_search", Args: []string{`{"que`, `ry":"예술의`, ` 전당"}`}},
					{ID: "c2", Name: "get_current_time", Args: []string{`{}`}},
				},
				Usage: llmtest.Usage{Input: 7, Output: 3},
			})
			defer srv.Close()
			p := provider(t, f, srv, "")
			s, err := p.Stream(t.Context(), &llm.Request{Model: "m", System: "sys", Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
				Tools: []llm.Tool{{Name: "web_search", Schema: map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}}}, {Name: "get_current_time"}}})
			if err != nil {
				t.Fatal(err)
			}
			evs, turn, err := collect(t, s)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, e := range evs {
				if len(kinds) == 0 || kinds[len(kinds)-1] != e.Kind.String() {
					kinds = append(kinds, e.Kind.String())
				}
			}
			want := []string{"reasoning", "text", "tool_call_start", "tool_call_delta", "tool_call_start", "tool_call_delta", "tool_call_end", "usage", "finish"}
			if f.name == "anthropic" {
				// Anthropic closes each tool_use block before the next starts.
				want = []string{"reasoning", "text", "tool_call_start", "tool_call_delta", "tool_call_end", "tool_call_start", "tool_call_delta", "tool_call_end", "usage", "finish"}
			}
			if d := cmp.Diff(want, kinds); d != "" {
				t.Errorf("event kinds (-want +got):\n%s", d)
			}
			wantTurn := llm.Turn{Text: "Let me check.", Reasoning: "thinking…", Reason: llm.FinishToolCalls, Usage: llm.Usage{Input: 7, Output: 3},
				ToolCalls: []llm.ToolCall{{ID: "c1", Name: "web_search", Arguments: json.RawMessage(`{"query":"예술의 전당"}`)}, {ID: "c2", Name: "get_current_time", Arguments: json.RawMessage(`{}`)}}}
			if d := cmp.Diff(wantTurn, turn, cmp.AllowUnexported(llm.Turn{}), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".args" }, cmp.Ignore())); d != "" {
				t.Errorf("turn (-want +got):\n%s", d)
			}
		})
	}
}

func TestToolResultsSentBackInOrder(t *testing.T) {
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			srv := f.new(llmtest.Turn{Text: []string{"done"}})
			defer srv.Close()
			p := provider(t, f, srv, "")
			msgs := []llm.Message{
				{Role: llm.RoleUser, Text: "q"},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "x", Arguments: json.RawMessage(`{"n":1}`)}, {ID: "b", Name: "y"}}},
				{Role: llm.RoleTool, ToolResult: &llm.ToolResult{CallID: "a", Content: "one"}},
				{Role: llm.RoleTool, ToolResult: &llm.ToolResult{CallID: "b", Content: "boom", IsError: true}},
			}
			s, err := p.Stream(t.Context(), &llm.Request{Model: "m", Messages: msgs})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := collect(t, s); err != nil {
				t.Fatal(err)
			}
			got := srv.Requests()[0].ToolResults()
			want := []llmtest.ToolResult{{CallID: "a", Content: "one"}, {CallID: "b", Content: "boom", IsError: true}}
			if f.name == "openai" {
				want[1] = llmtest.ToolResult{CallID: "b", Content: "Error: boom"}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("tool results (-want +got):\n%s", d)
			}
		})
	}
}

func TestHCX007ReasoningEffort(t *testing.T) {
	srv := llmtest.NewOpenAI(llmtest.Turn{Text: []string{"a"}}, llmtest.Turn{Text: []string{"b"}}, llmtest.Turn{Text: []string{"c"}})
	defer srv.Close()
	p := provider(t, fakes[0], srv, "k")
	tools := []llm.Tool{{Name: "get_current_time", Schema: map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": map[string]any{}}}}
	for _, req := range []*llm.Request{
		{Model: "HCX-007", Tools: tools, MaxTokens: 100},
		{Model: "HCX-007", MaxTokens: 100},
		{Model: "HCX-005", Tools: tools, MaxTokens: 100},
	} {
		req.Messages = []llm.Message{{Role: llm.RoleUser, Text: "q"}}
		s, err := p.Stream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		collect(t, s)
	}
	reqs := srv.Requests()
	if got := reqs[0].Body["reasoning_effort"]; got != "none" {
		t.Errorf("HCX-007 with tools: reasoning_effort = %v, want none", got)
	}
	if _, ok := reqs[0].Body["max_completion_tokens"]; !ok {
		t.Errorf("HCX-007: want max_completion_tokens, body %v", reqs[0].Body)
	}
	if got, ok := reqs[1].Body["reasoning_effort"]; ok {
		t.Errorf("HCX-007 without tools: reasoning_effort = %v, want absent", got)
	}
	if got, ok := reqs[2].Body["reasoning_effort"]; ok {
		t.Errorf("HCX-005: reasoning_effort = %v, want absent", got)
	}
	if reqs[2].Body["max_tokens"] != float64(100) {
		t.Errorf("HCX-005: max_tokens = %v", reqs[2].Body["max_tokens"])
	}
	if got := reqs[0].Header.Get("Authorization"); got != "Bearer k" {
		t.Errorf("Authorization = %q", got)
	}
	fn := reqs[0].Body["tools"].([]any)[0].(map[string]any)["function"].(map[string]any)
	params := fn["parameters"].(map[string]any)
	if _, ok := params["$schema"]; ok {
		t.Errorf("$schema sent: %v", params)
	}
	if props := params["properties"].(map[string]any); len(props) != 1 || props[llm.PlaceholderParam] == nil {
		t.Errorf("empty properties not filled: %v", params)
	}
}

func TestSanitizeSchema(t *testing.T) {
	in := map[string]any{
		"$schema": "x", "type": "object", "additionalProperties": false,
		"properties": map[string]any{
			"$id":  map[string]any{"type": "string", "$comment": "a property named $id survives"},
			"tags": map[string]any{"type": "array", "items": map[string]any{"type": "string", "$id": "drop"}},
		},
		"required": []any{"tags"},
	}
	got := llm.SanitizeSchemaForTest(in, "openai")
	want := map[string]any{
		"type": "object", "additionalProperties": false,
		"properties": map[string]any{
			"$id":  map[string]any{"type": "string"},
			"tags": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		},
		"required": []any{"tags"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("openai (-want +got):\n%s", d)
	}
	if _, ok := llm.SanitizeSchemaForTest(in, "clova")["additionalProperties"]; ok {
		t.Error("clova: additionalProperties kept")
	}
	if in["$schema"] != "x" {
		t.Error("input modified")
	}
	empty := llm.SanitizeSchemaForTest(map[string]any{"type": "object"}, "anthropic")
	if d := cmp.Diff(map[string]any{"type": "object"}, empty); d != "" {
		t.Errorf("anthropic empty (-want +got):\n%s", d)
	}
}

func TestErrors(t *testing.T) {
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			srv := f.new(llmtest.Turn{Status: 400, Error: "messages: roles must alternate"})
			defer srv.Close()
			req := &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Text: "q"}}}

			_, err := provider(t, f, srv, "").Stream(t.Context(), req)
			if !errors.Is(err, llm.ErrRefused) || !strings.Contains(err.Error(), "roles must alternate") {
				t.Errorf("400: %v", err)
			}
			srv.RequireKey("right")
			_, err = provider(t, f, srv, "wrong").Stream(t.Context(), req)
			if !errors.Is(err, llm.ErrAuth) {
				t.Errorf("401: %v", err)
			}
			srv.SetModels("other")
			_, err = provider(t, f, srv, "right").Stream(t.Context(), req)
			var ae *llm.APIError
			if !errors.Is(err, llm.ErrUnknownModel) || !errors.As(err, &ae) || ae.Status != 404 {
				t.Errorf("404: %v", err)
			}
		})
	}
}

func TestRateLimitRetry(t *testing.T) {
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			srv := f.new(llmtest.Turn{Status: 429, Error: "slow down"}, llmtest.Turn{Status: 429, Error: "slow down"}, llmtest.Turn{Text: []string{"ok"}})
			defer srv.Close()
			s, err := provider(t, f, srv, "").Stream(t.Context(), &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Text: "q"}}})
			if err != nil {
				t.Fatal(err)
			}
			_, turn, err := collect(t, s)
			if err != nil || turn.Text != "ok" {
				t.Fatalf("turn %+v, err %v", turn, err)
			}
			if n := len(srv.Requests()); n != 3 {
				t.Errorf("requests = %d, want 3", n)
			}

			srv.Push(llmtest.Turn{Status: 429, Error: "quota", Header: http.Header{"Retry-After": {"0"}}})
			p, _ := llm.New("test", llm.ProviderConfig{Type: f.typ, BaseURL: srv.URL, MaxRetries: -1}, nil)
			_, err = p.Stream(t.Context(), &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Text: "q"}}})
			if !errors.Is(err, llm.ErrRateLimited) {
				t.Errorf("no retries: %v", err)
			}
		})
	}
}

func TestCancelMidStream(t *testing.T) {
	for _, f := range fakes {
		t.Run(f.name, func(t *testing.T) {
			hold := make(chan struct{})
			defer close(hold)
			srv := f.new(llmtest.Turn{Text: []string{"partial"}, Hold: hold})
			defer srv.Close()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s, err := provider(t, f, srv, "").Stream(ctx, &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Text: "q"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var text string
			for s.Next() {
				if e := s.Event(); e.Kind == llm.TextDelta {
					text += e.Text
					if text == "partial" {
						cancel()
					}
				}
			}
			if !errors.Is(s.Err(), context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", s.Err())
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	r, err := llm.NewRegistry(map[string]llm.ProviderConfig{
		"clova": {Type: "openai", BaseURL: "https://clovastudio.stream.ntruss.com/v1/openai/", Models: []string{"HCX-005", "HCX-007"}},
		"local": {Type: "openai", BaseURL: "http://127.0.0.1:11434/v1"},
	}, "clova/HCX-005", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref, model string
		ok         bool
	}{
		{"", "HCX-005", true},
		{"clova/HCX-007", "HCX-007", true},
		{"local/qwen/qwen3:8b", "qwen/qwen3:8b", true},
		{"clova/gpt-4o", "", false},
		{"nope/x", "", false},
		{"HCX-005", "", false},
	} {
		_, m, err := r.Resolve(tc.ref)
		if (err == nil) != tc.ok || m != tc.model {
			t.Errorf("Resolve(%q) = %q, %v", tc.ref, m, err)
		}
	}
	if _, err := llm.New("x", llm.ProviderConfig{Type: "gemini"}, nil); err == nil {
		t.Error("unknown type accepted")
	}
}
