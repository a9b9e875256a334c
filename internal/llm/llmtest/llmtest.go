// Package llmtest provides scripted fake model APIs for tests: an
// OpenAI-compatible chat completions server and an Anthropic Messages
// server, both speaking the real streaming wire formats (shared/WIRE.md),
// including tool-call arguments split across chunks and several tool calls
// in one turn. A script is a list of turns, one per model request; the
// servers record every request so tests can check what was sent back.
//
// Only tests and the development demo configuration import it.
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Turn is one scripted model answer.
type Turn struct {
	// Reasoning chunks come first (reasoning_content / thinking_delta).
	Reasoning []string
	// Text chunks of the answer.
	Text []string
	// ToolCalls the model makes after the text.
	ToolCalls []Call
	// Finish overrides the finish (stop) reason in the API's own words.
	// Empty: "tool_calls"/"tool_use" when there are calls, else
	// "stop"/"end_turn".
	Finish string
	// Usage reported at the end. Zero: 10 input, 5 output tokens.
	Usage Usage
	// Delay is slept before every chunk.
	Delay time.Duration
	// Hold, if set, is waited for after the text chunks (before any tool
	// call and the finish), or until the client goes away.
	Hold <-chan struct{}
	// Status, when set, answers with this HTTP status and an error body in
	// the API's format carrying Error as the message.
	Status int
	Error  string
	// Header is added to the response (for example Retry-After).
	Header http.Header
	// Respond, if set, computes the turn from the request; the other
	// fields are ignored.
	Respond func(r Request) Turn
}

// Call is one scripted tool call. Args are the fragments of its JSON
// arguments in the order they are streamed.
type Call struct {
	ID   string
	Name string
	Args []string
}

// Usage counts tokens.
type Usage struct{ Input, Output int }

// Request is one recorded request.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
}

// Model returns the request's model.
func (r Request) Model() string { s, _ := r.Body["model"].(string); return s }

// ToolResult is a tool result found in a request.
type ToolResult struct {
	CallID  string
	Content string
	IsError bool
}

// ToolResults returns the tool results of the request's last turn in the
// order they appear: role "tool" messages (OpenAI) or tool_result blocks of
// the last user message (Anthropic).
func (r Request) ToolResults() []ToolResult {
	msgs, _ := r.Body["messages"].([]any)
	var out []ToolResult
	for i := len(msgs) - 1; i >= 0; i-- {
		m, _ := msgs[i].(map[string]any)
		role, _ := m["role"].(string)
		if role == "tool" {
			id, _ := m["tool_call_id"].(string)
			out = append([]ToolResult{{CallID: id, Content: textOf(m["content"])}}, out...)
			continue
		}
		if role == "user" {
			if blocks, ok := m["content"].([]any); ok {
				for _, b := range blocks {
					bm, _ := b.(map[string]any)
					if bm["type"] != "tool_result" {
						continue
					}
					id, _ := bm["tool_use_id"].(string)
					isErr, _ := bm["is_error"].(bool)
					out = append(out, ToolResult{CallID: id, Content: textOf(bm["content"]), IsError: isErr})
				}
			}
		}
		break
	}
	return out
}

// LastUserText returns the text of the last user message.
func (r Request) LastUserText() string {
	msgs, _ := r.Body["messages"].([]any)
	for i := len(msgs) - 1; i >= 0; i-- {
		m, _ := msgs[i].(map[string]any)
		if m["role"] == "user" {
			if t := textOf(m["content"]); t != "" {
				return t
			}
		}
	}
	return ""
}

// ToolNames returns the names of the tools offered.
func (r Request) ToolNames() []string {
	tools, _ := r.Body["tools"].([]any)
	var out []string
	for _, t := range tools {
		tm, _ := t.(map[string]any)
		if f, ok := tm["function"].(map[string]any); ok {
			tm = f
		}
		if n, ok := tm["name"].(string); ok {
			out = append(out, n)
		}
	}
	return out
}

func textOf(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			pm, _ := p.(map[string]any)
			if t, ok := pm["text"].(string); ok {
				b.WriteString(t)
			}
		}
		return b.String()
	}
	return ""
}

// Server is a fake model API.
type Server struct {
	// URL is the base URL to configure: ".../v1" for the OpenAI fake (like
	// Ollama's), the root for the Anthropic fake.
	URL string

	srv    *httptest.Server
	format format

	mu     sync.Mutex // guards the fields below
	turns  []Turn
	reqs   []Request
	key    string
	models []string
}

type format int

const (
	formatOpenAI format = iota
	formatAnthropic
)

// NewOpenAI starts a fake OpenAI-compatible server that answers
// POST /v1/chat/completions with turns, in order.
func NewOpenAI(turns ...Turn) *Server { return start(formatOpenAI, turns) }

// NewAnthropic starts a fake Anthropic server that answers POST
// /v1/messages with turns, in order.
func NewAnthropic(turns ...Turn) *Server { return start(formatAnthropic, turns) }

func start(f format, turns []Turn) *Server {
	s := &Server{format: f, turns: turns}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	if f == formatOpenAI {
		s.URL += "/v1"
	}
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Push appends turns to the script.
func (s *Server) Push(turns ...Turn) {
	s.mu.Lock()
	s.turns = append(s.turns, turns...)
	s.mu.Unlock()
}

// RequireKey makes the server refuse requests without this API key, as
// the real APIs do (401).
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	s.key = key
	s.mu.Unlock()
}

// SetModels makes the server refuse other models (404).
func (s *Server) SetModels(models ...string) {
	s.mu.Lock()
	s.models = models
	s.mu.Unlock()
}

// Requests returns the recorded model requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Remaining returns the number of unused turns.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.turns)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	want := "/v1/chat/completions"
	if s.format == formatAnthropic {
		want = "/v1/messages"
	}
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/models") {
		s.mu.Lock()
		ms := slices.Clone(s.models)
		s.mu.Unlock()
		data := []map[string]any{}
		for _, m := range ms {
			data = append(data, map[string]any{"id": m, "object": "model", "owned_by": "fake"})
		}
		writeJSON(w, 200, map[string]any{"object": "list", "data": data})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != want {
		s.fail(w, 404, "no such endpoint "+r.Method+" "+r.URL.Path)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	if err := json.Unmarshal(raw, &req.Body); err != nil {
		s.fail(w, 400, "body is not JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	key, models := s.key, s.models
	var (
		t  Turn
		ok bool
	)
	if len(s.turns) > 0 {
		t, s.turns, ok = s.turns[0], s.turns[1:], true
	}
	s.mu.Unlock()

	if key != "" && !s.keyOK(r, key) {
		if s.format == formatOpenAI {
			writeJSON(w, 401, map[string]any{"error": map[string]any{"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": nil, "code": "invalid_api_key"}})
		} else {
			writeJSON(w, 401, map[string]any{"type": "error", "error": map[string]any{"type": "authentication_error", "message": "invalid x-api-key"}})
		}
		return
	}
	if len(models) > 0 && !slices.Contains(models, req.Model()) {
		if s.format == formatOpenAI {
			writeJSON(w, 404, map[string]any{"error": map[string]any{"message": fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model()), "type": "invalid_request_error", "param": nil, "code": "model_not_found"}})
		} else {
			writeJSON(w, 404, map[string]any{"type": "error", "error": map[string]any{"type": "not_found_error", "message": "model: " + req.Model()}})
		}
		return
	}
	if !ok {
		s.fail(w, 500, "llmtest: script exhausted")
		return
	}
	if t.Respond != nil {
		t = t.Respond(req)
	}
	for k, vs := range t.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if t.Status != 0 {
		s.fail(w, t.Status, t.Error)
		return
	}
	if stream, _ := req.Body["stream"].(bool); !stream {
		s.fail(w, 400, "llmtest: only streaming requests are scripted")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	sw := &sse{w: w, r: r, delay: t.Delay}
	if s.format == formatOpenAI {
		streamOpenAI(sw, req, t)
	} else {
		streamAnthropic(sw, req, t)
	}
}

func (s *Server) keyOK(r *http.Request, key string) bool {
	if s.format == formatAnthropic {
		return r.Header.Get("X-Api-Key") == key
	}
	return r.Header.Get("Authorization") == "Bearer "+key
}

func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	if s.format == formatOpenAI {
		typ := "invalid_request_error"
		switch {
		case status == 429:
			typ = "rate_limit_exceeded"
		case status >= 500:
			typ = "server_error"
		}
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
		return
	}
	typ := "invalid_request_error"
	switch {
	case status == 401:
		typ = "authentication_error"
	case status == 404:
		typ = "not_found_error"
	case status == 429:
		typ = "rate_limit_error"
	case status == 529:
		typ = "overloaded_error"
	case status >= 500:
		typ = "api_error"
	}
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// sse writes server-sent events, flushing each.
type sse struct {
	w     http.ResponseWriter
	r     *http.Request
	delay time.Duration
	gone  bool
}

func (s *sse) send(event string, v any) {
	if s.gone {
		return
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-s.r.Context().Done():
			s.gone = true
			return
		}
	}
	var b strings.Builder
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	data, _ := json.Marshal(v)
	b.WriteString("data: " + string(data) + "\n\n")
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		s.gone = true
		return
	}
	s.w.(http.Flusher).Flush()
}

func (s *sse) raw(line string) {
	if s.gone {
		return
	}
	io.WriteString(s.w, line)
	s.w.(http.Flusher).Flush()
}

func (s *sse) hold(ch <-chan struct{}) {
	if ch == nil || s.gone {
		return
	}
	select {
	case <-ch:
	case <-s.r.Context().Done():
		s.gone = true
	}
}

func usageOf(t Turn) Usage {
	if t.Usage == (Usage{}) {
		return Usage{Input: 10, Output: 5}
	}
	return t.Usage
}
