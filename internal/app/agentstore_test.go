package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/store/storetest"
)

// openTestStore opens a SQLite store in a file of its own, closed when the
// test ends. reopen closes it and opens the same file again.
func openTestStore(t *testing.T) (s *sqlite.Store, reopen func() *sqlite.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	keys := storetest.Keys(t, "k1")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(t.Context(), path, keys)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s = open()
	return s, func() *sqlite.Store {
		s.Close()
		s = open()
		return s
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("%s: error %v, want agent.ErrNotFound", what, err)
	}
}

func TestConversationStore(t *testing.T) {
	s, reopen := openTestStore(t)
	cs := newConversationStore(s)
	ctx := t.Context()
	t0 := time.Now().UTC().Add(-time.Hour).Round(0) // in the past: Append sets Updated to now

	c1 := &agent.Conversation{ID: "conv_1", Title: "서울 날씨", Agent: "helper", Model: "openai/gpt-5", Created: t0, Updated: t0}
	c2 := &agent.Conversation{ID: "conv_2", Title: "second", Created: t0.Add(time.Minute), Updated: t0.Add(time.Minute)}
	for _, c := range []*agent.Conversation{c2, c1} { // List orders by Created, not by insertion
		if err := cs.Create(ctx, "alice", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := cs.Create(ctx, "bob", &agent.Conversation{ID: "conv_b", Title: "bob's", Created: t0, Updated: t0}); err != nil {
		t.Fatal(err)
	}

	user := agent.StoredMessage{ID: "msg_1", Role: llm.RoleUser, Text: "서울 날씨 알려줘", RunID: "run_1", Created: t0.Add(time.Second)}
	answer := agent.StoredMessage{ID: "msg_2", Role: llm.RoleAssistant, Text: "맑습니다 [1]", RunID: "run_1",
		ToolCalls: []agent.ToolCallRecord{{ID: "call_1", Server: "naver", Tool: "search", Arguments: json.RawMessage(`{"q":"서울 날씨"}`),
			Summary: "검색 결과 3건", DurationMS: 420}},
		References: []agent.Reference{{Index: 1, Title: "날씨", URL: "https://example.com/w", Snippet: "맑음", Server: "naver", Tool: "search"}},
		Usage:      llm.Usage{Input: 120, Output: 30},
		Created:    t0.Add(2 * time.Second)}
	if err := cs.Append(ctx, "alice", "conv_1", user); err != nil {
		t.Fatal(err)
	}
	if err := cs.Append(ctx, "alice", "conv_1", answer); err != nil {
		t.Fatal(err)
	}
	third := agent.StoredMessage{ID: "msg_3", Role: llm.RoleUser, Text: "내일은?", RunID: "run_2", Created: t0.Add(3 * time.Second)}
	if err := cs.Append(ctx, "alice", "conv_1", third); err != nil {
		t.Fatal(err)
	}

	got, err := cs.Get(ctx, "alice", "conv_1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Updated.After(t0) {
		t.Errorf("Updated = %v after appending, want later than %v", got.Updated, t0)
	}
	want := *c1
	want.UserID = "alice"
	want.Updated = got.Updated
	want.Messages = []agent.StoredMessage{user, answer, third}
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}

	for _, tt := range []struct {
		limit int
		want  []agent.StoredMessage
	}{
		{0, nil},
		{2, []agent.StoredMessage{answer, third}},
		{20, []agent.StoredMessage{user, answer, third}},
	} {
		got, err := cs.Recent(ctx, "alice", "conv_1", tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("Recent(%d) (-want +got):\n%s", tt.limit, d)
		}
	}

	list, err := cs.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, c := range list {
		if c.Messages != nil {
			t.Errorf("List filled Messages of %s", c.ID)
		}
		titles = append(titles, c.Title)
	}
	if d := cmp.Diff([]string{"서울 날씨", "second"}, titles); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}

	// Everything of alice's is not found for bob.
	wantNotFound(t, "Get", errOf(cs.Get(ctx, "bob", "conv_1")))
	wantNotFound(t, "Recent", errOf(cs.Recent(ctx, "bob", "conv_1", 10)))
	wantNotFound(t, "Append", cs.Append(ctx, "bob", "conv_1", agent.StoredMessage{Role: llm.RoleUser, Text: "x"}))
	wantNotFound(t, "Rename", cs.Rename(ctx, "bob", "conv_1", "mine"))
	wantNotFound(t, "Delete", cs.Delete(ctx, "bob", "conv_1"))
	wantNotFound(t, "Get unknown", errOf(cs.Get(ctx, "alice", "conv_nope")))
	if bobs, _ := cs.List(ctx, "bob"); len(bobs) != 1 || bobs[0].Title != "bob's" {
		t.Errorf("bob's list = %+v", bobs)
	}

	if err := cs.Rename(ctx, "alice", "conv_1", "renamed"); err != nil {
		t.Fatal(err)
	}
	// Conversations outlive a restart.
	cs = newConversationStore(reopen())
	got, err = cs.Get(ctx, "alice", "conv_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "renamed" || len(got.Messages) != 3 {
		t.Errorf("after rename and reopen: %q with %d messages", got.Title, len(got.Messages))
	}

	if err := cs.Delete(ctx, "alice", "conv_1"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "Get deleted", errOf(cs.Get(ctx, "alice", "conv_1")))
	wantNotFound(t, "Delete deleted", cs.Delete(ctx, "alice", "conv_1"))
	// Its messages went with it.
	if err := cs.Create(ctx, "alice", &agent.Conversation{ID: "conv_1", Title: "again", Created: t0, Updated: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := cs.Get(ctx, "alice", "conv_1"); err != nil || got.Messages != nil {
		t.Errorf("conversation made again after delete: %+v, %v; want no messages", got, err)
	}
}

func TestAgentStore(t *testing.T) {
	s, reopen := openTestStore(t)
	as := newAgentStore(s)
	ctx := t.Context()
	temp := 0.2
	a := &agent.Agent{ID: "agent_1", Name: "요약기", Instructions: "세 줄로 요약하세요.", Model: "openai/gpt-5", Temperature: &temp,
		MaxTokens: 500, Language: agent.Korean, Servers: []string{"naver"}, Tools: map[string][]string{"naver": {"search"}},
		Capabilities: map[string]bool{"webSearch": false}, MaxIterations: 3, Source: "api"}
	b := &agent.Agent{ID: "agent_2", Name: "second", Source: "api"}
	for _, ag := range []*agent.Agent{a, b} {
		if err := as.Put(ctx, "alice", ag); err != nil {
			t.Fatal(err)
		}
	}
	got, err := as.Get(ctx, "alice", "agent_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a, got); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}
	list, err := as.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]agent.Agent{*a, *b}, list); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}

	wantNotFound(t, "Get another user's", errOf(as.Get(ctx, "bob", "agent_1")))
	wantNotFound(t, "Delete another user's", as.Delete(ctx, "bob", "agent_1"))
	if bobs, err := as.List(ctx, "bob"); err != nil || bobs != nil {
		t.Errorf("bob's agents = %+v, %v; want none", bobs, err)
	}

	// Put replaces.
	a.Instructions, a.Temperature = "한 줄로.", nil
	if err := as.Put(ctx, "alice", a); err != nil {
		t.Fatal(err)
	}
	as = newAgentStore(reopen())
	got, err = as.Get(ctx, "alice", "agent_1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a, got); d != "" {
		t.Errorf("after replace and reopen (-want +got):\n%s", d)
	}

	if err := as.Delete(ctx, "alice", "agent_1"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, "Get deleted", errOf(as.Get(ctx, "alice", "agent_1")))
	wantNotFound(t, "Delete deleted", as.Delete(ctx, "alice", "agent_1"))
	if list, _ := as.List(ctx, "alice"); len(list) != 1 || list[0].ID != "agent_2" {
		t.Errorf("after delete: %+v", list)
	}
}

// TestAgentStoreAPI serves the agent host's API on the store, as
// switchboard does, and checks what its users see.
func TestAgentStoreAPI(t *testing.T) {
	s, _ := openTestStore(t)
	cs := newConversationStore(s)
	h := agent.New(&agent.Options{Models: noModels{}, Tools: noTools{}, Conversations: cs, AgentStore: newAgentStore(s)})
	defer h.Close()
	srv := httptest.NewServer(h.Handler(&agent.HandlerOptions{User: func(r *http.Request) (string, bool) {
		u := r.Header.Get("X-Test-User")
		return u, u != ""
	}}))
	defer srv.Close()
	do := func(user, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test-User", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	code, created := do("alice", "POST", "/api/agents", `{"name":"researcher","instructions":"Cite sources."}`)
	id, _ := created["id"].(string)
	if code != http.StatusCreated || id == "" {
		t.Fatalf("create agent: %d %v", code, created)
	}
	if code, got := do("alice", "PATCH", "/api/agents/"+id, `{"instructions":"Be brief."}`); code != http.StatusOK || got["instructions"] != "Be brief." || got["name"] != "researcher" {
		t.Errorf("patch agent: %d %v", code, got)
	}
	if code, _ := do("bob", "GET", "/api/agents/"+id, ""); code != http.StatusNotFound {
		t.Errorf("bob gets alice's agent: %d, want 404", code)
	}
	if code, _ := do("bob", "DELETE", "/api/agents/"+id, ""); code != http.StatusNotFound {
		t.Errorf("bob deletes alice's agent: %d, want 404", code)
	}

	t0 := time.Now()
	if err := cs.Create(t.Context(), "alice", &agent.Conversation{ID: "conv_1", Title: "hello", Created: t0, Updated: t0}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Append(t.Context(), "alice", "conv_1", agent.StoredMessage{ID: "msg_1", Role: llm.RoleUser, Text: "안녕", Created: t0}); err != nil {
		t.Fatal(err)
	}
	code, got := do("alice", "GET", "/api/conversations/conv_1", "")
	if msgs, _ := got["messages"].([]any); code != http.StatusOK || len(msgs) != 1 {
		t.Errorf("get conversation: %d %v", code, got)
	}
	if code, got := do("alice", "PATCH", "/api/conversations/conv_1", `{"title":"renamed"}`); code != http.StatusOK || got["title"] != "renamed" {
		t.Errorf("rename conversation: %d %v", code, got)
	}
	for _, method := range []string{"GET", "DELETE"} {
		if code, _ := do("bob", method, "/api/conversations/conv_1", ""); code != http.StatusNotFound {
			t.Errorf("bob %s alice's conversation: %d, want 404", method, code)
		}
	}
	if code, got := do("bob", "GET", "/api/conversations", ""); code != http.StatusOK || len(got["conversations"].([]any)) != 0 {
		t.Errorf("bob's conversations: %d %v", code, got)
	}
	if code, _ := do("alice", "DELETE", "/api/conversations/conv_1", ""); code != http.StatusNoContent {
		t.Errorf("delete conversation: %d", code)
	}
	if code, _ := do("alice", "GET", "/api/conversations/conv_1", ""); code != http.StatusNotFound {
		t.Errorf("get deleted conversation: %d, want 404", code)
	}
}

func errOf[T any](_ T, err error) error { return err }

// noModels and noTools stand in for the model registry and the hub, which
// the agents and conversations API does not reach.
type noModels struct{}

func (noModels) Resolve(ref string) (llm.Provider, string, error) {
	return nil, "", llm.ErrBadModelRef
}

type noTools struct{}

func (noTools) Servers(context.Context, string) ([]agent.ServerInfo, error) { return nil, nil }
func (noTools) Tools(context.Context, string, []string) ([]agent.ToolInfo, error) {
	return nil, nil
}
func (noTools) Call(context.Context, hub.Caller, string, string, json.RawMessage) (*mcp.CallToolResult, error) {
	return nil, errors.New("no tools")
}
