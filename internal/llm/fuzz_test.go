package llm_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

// streamBody answers every request with 200 and one fixed SSE body, or
// forwards to a real server and records what it streamed.
type streamBody struct {
	mu       sync.Mutex // guards the fields below
	body     string
	forward  bool
	captured []string
}

func (s *streamBody) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	forward, body := s.forward, s.body
	s.mu.Unlock()
	if forward {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.captured = append(s.captured, string(b))
		s.mu.Unlock()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK",
		Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// fuzzTurns are answers of the llmtest fakes whose streams seed the corpus:
// text, reasoning, and parallel tool calls with arguments split mid-token.
var fuzzTurns = []llmtest.Turn{
	{Text: []string{"안녕", "하세요. ", "Hello"}},
	{Reasoning: []string{"think", "ing"}, Text: []string{"ok"}, ToolCalls: []llmtest.Call{
		{ID: "call_a", Name: "web_search", Args: []string{`{"que`, `ry":"주식`, ` 시세"}`}},
		{ID: "call_b", Name: "get_current_time", Args: []string{`{}`}},
	}},
	{ToolCalls: []llmtest.Call{{ID: "c", Name: "x", Args: []string{`{"a":`, `1}`}}}, Finish: "stop"},
	{Text: []string{"cut"}, Finish: "length", Usage: llmtest.Usage{Input: 1 << 20, Output: 3}},
}

// checkStream reads a stream to its end and asserts the event grammar the
// agent loop relies on: tool calls start in index order before their
// deltas and ends, one Finish comes last, and the folded turn holds every
// call with arguments.
func checkStream(t *testing.T, s llm.Stream) {
	t.Helper()
	defer s.Close()
	var turn llm.Turn
	started, ended := 0, map[int]bool{}
	finished := false
	n := 0
	for s.Next() {
		e := s.Event()
		n++
		if finished {
			t.Fatalf("event %v after Finish", e.Kind)
		}
		switch e.Kind {
		case llm.ToolCallStart:
			if e.Index != started {
				t.Fatalf("tool call %d started, want %d", e.Index, started)
			}
			started++
		case llm.ToolCallDelta, llm.ToolCallEnd:
			if e.Index < 0 || e.Index >= started || ended[e.Index] {
				t.Fatalf("%v for call %d (%d started, ended %v)", e.Kind, e.Index, started, ended)
			}
			if e.Kind == llm.ToolCallEnd {
				ended[e.Index] = true
			}
		case llm.Finish:
			finished = true
			if e.Reason == "" {
				t.Fatal("Finish without a reason")
			}
		case llm.UsageReport:
			if e.Usage.Input < 0 || e.Usage.Output < 0 {
				t.Fatalf("usage %+v", e.Usage)
			}
		}
		turn.Add(e)
	}
	if err := s.Err(); err != nil {
		return
	}
	if !finished {
		t.Fatalf("stream of %d events ended without Finish", n)
	}
	if len(turn.ToolCalls) != started {
		t.Fatalf("%d calls folded, %d started", len(turn.ToolCalls), started)
	}
	for i, c := range turn.ToolCalls {
		if c.Arguments == nil || c.ID == "" {
			t.Fatalf("call %d: %+v", i, c)
		}
	}
}

func fuzzStream(f *testing.F, typ string, newFake func(...llmtest.Turn) *llmtest.Server, extra []string) {
	body := &streamBody{forward: true}
	fake := newFake(fuzzTurns...)
	defer fake.Close()
	p, err := llm.New("fuzz", llm.ProviderConfig{Type: typ, BaseURL: fake.URL, APIKey: "k", MaxRetries: -1}, &http.Client{Transport: body})
	if err != nil {
		f.Fatal(err)
	}
	req := &llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
		Tools: []llm.Tool{{Name: "web_search", Schema: map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}}}}}
	for range fuzzTurns {
		s, err := p.Stream(context.Background(), req)
		if err != nil {
			f.Fatal(err)
		}
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			f.Fatalf("fake stream: %v", err)
		}
		s.Close()
	}
	if len(body.captured) != len(fuzzTurns) {
		f.Fatalf("captured %d streams", len(body.captured))
	}
	for _, c := range body.captured {
		f.Add(c)
	}
	for _, c := range extra {
		f.Add(c)
	}
	body.forward = false
	f.Fuzz(func(t *testing.T, stream string) {
		body.mu.Lock()
		body.body = stream
		body.mu.Unlock()
		s, err := p.Stream(context.Background(), req)
		if err != nil {
			return
		}
		checkStream(t, s)
	})
}

// FuzzOpenAIStream feeds chat-completions SSE streams (WIRE.md) to the
// OpenAI-compatible provider.
func FuzzOpenAIStream(f *testing.F) {
	fuzzStream(f, llm.TypeOpenAI, llmtest.NewOpenAI, []string{
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":5,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n",
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1,\"id\":\"x\",\"function\":{\"name\":\"n\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n",
		"data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":2}}\n\n",
		"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
		": keep-alive\n\nevent: ping\ndata: {}\n\n",
		"data: not json\n\n",
		"",
	})
}

// FuzzAnthropicStream feeds Messages API SSE streams (WIRE.md) to the
// Anthropic provider.
func FuzzAnthropicStream(f *testing.F) {
	fuzzStream(f, llm.TypeAnthropic, llmtest.NewAnthropic, []string{
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"\",\"name\":\"x\",\"input\":{}}}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
			"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":-1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		"event: ping\ndata: {\"type\": \"ping\"}\n\n",
		"",
	})
}
