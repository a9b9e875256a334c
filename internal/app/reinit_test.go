package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// sessionCounter is an MCP server that counts the sessions each user's
// token opens (initialize requests by X-Notes-Token).
type sessionCounter struct {
	*httptest.Server
	mu sync.Mutex // guards n
	n  map[string]int
}

func newSessionCounter(t *testing.T) *sessionCounter {
	sc := &sessionCounter{n: map[string]int{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "counted", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "lookup"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	sc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct{ Method string }
			if json.Unmarshal(body, &msg) == nil && msg.Method == "initialize" {
				sc.mu.Lock()
				sc.n[r.Header.Get("X-Notes-Token")]++
				sc.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		sc.Close()
	})
	return sc
}

func (sc *sessionCounter) sessions(token string) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.n[token]
}

// Issue 9, item 4: reinitialize applies to the caller's connection; an
// administrator's ?all=1 reconnects every user's; anyone else's ?all=1 is
// refused.
func TestReinitializeCallerOrEveryone(t *testing.T) {
	up := newSessionCounter(t)
	ta := startApp(t, "", fmt.Sprintf(`mcpServers:
  notes:
    type: streamable-http
    url: %q
    headers:
      X-Notes-Token: "{{NOTES_TOKEN}}"
    customUserVars:
      NOTES_TOKEN: {title: Notes token}
`, up.URL+"/"))
	_, admin := ta.addUser(t, "root", store.RoleAdmin)
	_, alice := ta.addUser(t, "alice", store.RoleUser)
	_, bob := ta.addUser(t, "bob", store.RoleUser)
	post := func(key, path string) (int, string) {
		t.Helper()
		return ta.do(t, http.MethodPost, path, key, "")
	}
	// Each user saves a value and connects.
	for _, u := range []struct{ key, token string }{{alice, "a"}, {bob, "b"}} {
		if st, body := ta.do(t, http.MethodPut, "/api/servers/notes/credentials", u.key, `{"values":{"NOTES_TOKEN":"`+u.token+`"}}`); st != http.StatusOK {
			t.Fatalf("PUT credentials: %d %s", st, body)
		}
		if st, body := post(u.key, "/api/servers/notes/reinitialize"); st != http.StatusOK {
			t.Fatalf("reinitialize: %d %s", st, body)
		}
	}
	base := map[string]int{"a": up.sessions("a"), "b": up.sessions("b")}
	if base["a"] == 0 || base["b"] == 0 {
		t.Fatalf("sessions: %v, want each user connected", base)
	}

	if st, body := post(alice, "/api/servers/notes/reinitialize"); st != http.StatusOK {
		t.Fatalf("alice's reinitialize: %d %s", st, body)
	}
	if got := map[string]int{"a": up.sessions("a"), "b": up.sessions("b")}; got["a"] != base["a"]+1 || got["b"] != base["b"] {
		t.Errorf("after alice's reinitialize: sessions %v, want only alice's one more than %v", got, base)
	}

	if st, body := post(bob, "/api/servers/notes/reinitialize?all=1"); st != http.StatusForbidden {
		t.Errorf("bob's ?all=1: %d %s, want 403", st, body)
	}
	before := map[string]int{"a": up.sessions("a"), "b": up.sessions("b")}
	st, body := post(admin, "/api/servers/notes/reinitialize?all=1")
	var reply struct{ Reconnected, Failed int }
	if err := json.Unmarshal([]byte(body), &reply); err != nil || st != http.StatusOK || reply.Reconnected != 2 || reply.Failed != 0 {
		t.Fatalf("admin's ?all=1: %d %s, want 2 reconnected", st, body)
	}
	if got := map[string]int{"a": up.sessions("a"), "b": up.sessions("b")}; got["a"] != before["a"]+1 || got["b"] != before["b"]+1 {
		t.Errorf("after ?all=1: sessions %v, want one more each than %v", got, before)
	}
}
