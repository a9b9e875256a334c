package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

func serveAPI(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f.host.Handler(&agent.HandlerOptions{User: func(r *http.Request) (string, bool) {
		u := r.Header.Get("X-Test-User")
		return u, u != ""
	}}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, user, method, path string, body any, hdr ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	req.Header.Set("X-Test-User", user)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, typ string
	ev      agent.Event
}

// readEvents reads SSE events from r, calling stop after each; reading ends
// when stop returns true or the stream ends.
func readEvents(t *testing.T, r io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(r)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, cur)
			if stop != nil && stop(cur) {
				return out
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &cur.ev); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		}
	}
	return out
}

func TestSSEResume(t *testing.T) {
	hold := make(chan struct{})
	f := newFixture(t, setup{store: true},
		llmtest.Turn{Text: []string{"첫 ", "부분"}, Hold: hold, ToolCalls: []llmtest.Call{call("web_search", `{"query":"a"}`)}},
		llmtest.Turn{Text: []string{"끝", "."}},
	)
	srv := serveAPI(t, f)

	resp := do(t, srv, "alice", "POST", "/api/chat", agent.ChatRequest{Message: "q"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	firstPart := readEvents(t, resp.Body, func(e sseEvent) bool { return e.typ == agent.EventMessageDelta })
	resp.Body.Close() // the connection drops mid-run
	close(hold)       // the run goes on without a client

	lastID := firstPart[len(firstPart)-1].id
	resp = do(t, srv, "alice", "POST", "/api/chat", nil, "Last-Event-ID", lastID)
	rest := readEvents(t, resp.Body, nil)

	all := append(firstPart, rest...)
	runID := all[0].ev.RunID
	for i, e := range all {
		if e.ev.Seq != i+1 || e.id != fmt.Sprintf("%s:%d", runID, i+1) || e.typ != e.ev.Type {
			t.Errorf("event %d: id %q seq %d type %q/%q", i, e.id, e.ev.Seq, e.typ, e.ev.Type)
		}
	}
	if got := all[len(all)-1].ev; got.Type != agent.EventRunFinished || got.Result.Text != "첫 부분\n\n끝." {
		t.Errorf("last event %+v", got)
	}

	// GET …/events with ?after resumes too; another user cannot.
	resp = do(t, srv, "alice", "GET", "/api/chat/"+runID+"/events?after=2", nil)
	again := readEvents(t, resp.Body, nil)
	if len(again) != len(all)-2 || again[0].ev.Seq != 3 {
		t.Errorf("after=2: %d events, first seq %d", len(again), again[0].ev.Seq)
	}
	if resp := do(t, srv, "bob", "POST", "/api/chat", nil, "Last-Event-ID", lastID); resp.StatusCode != 404 {
		t.Errorf("bob resuming alice's run: %d", resp.StatusCode)
	}
}

func TestTwoUsersAreIsolated(t *testing.T) {
	f := newFixture(t, setup{store: true})
	f.model.Push(
		llmtest.Turn{Respond: echo}, llmtest.Turn{Respond: echo},
	)
	srv := serveAPI(t, f)
	var wg sync.WaitGroup
	got := map[string][]sseEvent{}
	var mu sync.Mutex
	for _, u := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/api/chat", strings.NewReader(`{"message":"secret of `+u+`"}`))
			req.Header.Set("X-Test-User", u)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			evs := readEvents(t, resp.Body, nil)
			mu.Lock()
			got[u] = evs
			mu.Unlock()
		}()
	}
	wg.Wait()
	convs := map[string]string{}
	for u, evs := range got {
		for _, e := range evs {
			if e.ev.RunID != evs[0].ev.RunID {
				t.Errorf("%s saw an event of another run", u)
			}
		}
		res := evs[len(evs)-1].ev.Result
		if res == nil || res.Text != "you said: secret of "+u {
			t.Errorf("%s: %+v", u, evs[len(evs)-1].ev)
		}
		convs[u] = evs[0].ev.ConversationID
	}
	for _, u := range []string{"alice", "bob"} {
		other := map[string]string{"alice": "bob", "bob": "alice"}[u]
		var list struct{ Conversations []agent.Conversation }
		json.NewDecoder(do(t, srv, u, "GET", "/api/conversations", nil).Body).Decode(&list)
		if len(list.Conversations) != 1 || list.Conversations[0].ID != convs[u] {
			t.Errorf("%s lists %+v", u, list)
		}
		for _, m := range []string{"GET", "DELETE"} {
			if resp := do(t, srv, u, m, "/api/conversations/"+convs[other], nil); resp.StatusCode != 404 {
				t.Errorf("%s %s %s's conversation: %d", u, m, other, resp.StatusCode)
			}
		}
		if resp := do(t, srv, u, "PATCH", "/api/conversations/"+convs[other], map[string]string{"title": "x"}); resp.StatusCode != 404 {
			t.Errorf("%s renames %s's conversation: %d", u, other, resp.StatusCode)
		}
	}
	resp := do(t, srv, "alice", "PATCH", "/api/conversations/"+convs["alice"], map[string]string{"title": "내 대화"})
	var c agent.Conversation
	json.NewDecoder(resp.Body).Decode(&c)
	if resp.StatusCode != 200 || c.Title != "내 대화" {
		t.Errorf("rename: %d %+v", resp.StatusCode, c)
	}
	resp = do(t, srv, "alice", "GET", "/api/conversations/"+convs["alice"], nil)
	json.NewDecoder(resp.Body).Decode(&c)
	if len(c.Messages) != 2 || c.Messages[0].Text != "secret of alice" {
		t.Errorf("get: %+v", c)
	}
	if resp := do(t, srv, "alice", "DELETE", "/api/conversations/"+convs["alice"], nil); resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	if resp := do(t, srv, "", "GET", "/api/conversations", nil); resp.StatusCode != 401 {
		t.Errorf("anonymous: %d", resp.StatusCode)
	}
}

func echo(r llmtest.Request) llmtest.Turn {
	return llmtest.Turn{Text: []string{"you said: ", r.LastUserText()}}
}

func TestAgentsAPI(t *testing.T) {
	f := newFixture(t, setup{store: true, opts: func(o *agent.Options) {
		o.Agents = []agent.Agent{{Name: "helper", Servers: []string{"switchboard"}, Tools: map[string][]string{"switchboard": {"get_current_time"}}}}
	}})
	srv := serveAPI(t, f)
	resp := do(t, srv, "alice", "POST", "/api/agents", agent.Agent{Name: "researcher", Instructions: "Cite sources.", Language: "en", Servers: []string{"switchboard"}})
	var created agent.Agent
	json.NewDecoder(resp.Body).Decode(&created)
	if resp.StatusCode != 201 || created.ID == "" || created.Source != "api" {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}
	resp = do(t, srv, "alice", "PATCH", "/api/agents/"+created.ID, map[string]any{"instructions": "Be brief."})
	var patched agent.Agent
	json.NewDecoder(resp.Body).Decode(&patched)
	if patched.Instructions != "Be brief." || patched.Name != "researcher" || patched.Language != "en" {
		t.Errorf("patch: %+v", patched)
	}
	var list struct{ Agents []agent.Agent }
	json.NewDecoder(do(t, srv, "alice", "GET", "/api/agents", nil).Body).Decode(&list)
	var names []string
	for _, a := range list.Agents {
		names = append(names, a.Name+"/"+a.Source)
	}
	if d := cmp.Diff([]string{"helper/config", "researcher/api"}, names); d != "" {
		t.Errorf("alice's agents (-want +got):\n%s", d)
	}
	json.NewDecoder(do(t, srv, "bob", "GET", "/api/agents", nil).Body).Decode(&list)
	if len(list.Agents) != 1 {
		t.Errorf("bob sees %+v", list.Agents)
	}
	if resp := do(t, srv, "bob", "GET", "/api/agents/"+created.ID, nil); resp.StatusCode != 404 {
		t.Errorf("bob gets alice's agent: %d", resp.StatusCode)
	}
	if resp := do(t, srv, "alice", "PATCH", "/api/agents/helper", map[string]any{"name": "x"}); resp.StatusCode != 403 {
		t.Errorf("patch config agent: %d", resp.StatusCode)
	}
	if resp := do(t, srv, "alice", "POST", "/api/agents", agent.Agent{Name: "x", Model: "nope/model"}); resp.StatusCode != 400 {
		t.Errorf("bad model: %d", resp.StatusCode)
	}
	if resp := do(t, srv, "alice", "DELETE", "/api/agents/"+created.ID, nil); resp.StatusCode != 204 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
}
