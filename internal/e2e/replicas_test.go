package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
)

// redisURL returns the test Redis or skips.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("set SWITCHBOARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the cross-replica session test")
	}
	return u
}

// newAskingUpstream is an upstream MCP server (streamable HTTP) whose
// tools ask the client (elicitation) and report progress during a call.
func newAskingUpstream(t *testing.T) string {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "asking", Version: "1"}, nil)
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Mode: "form", Message: "which colour?",
			RequestedSchema: map[string]any{
				"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}},
			},
		})
		if err != nil {
			return nil, nil, err
		}
		return text(fmt.Sprintf("%s: %v", res.Action, res.Content["answer"])), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "count"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		if tok == nil {
			return nil, nil, errors.New("no progress token")
		}
		for i := 1; i <= 3; i++ {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: tok, Progress: float64(i), Total: 3, Message: fmt.Sprintf("step %d", i),
			})
			if err != nil {
				return nil, nil, err
			}
		}
		return text("counted"), nil, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		srv.Close()
	})
	return srv.URL + "/mcp"
}

// firstThenOther sends the first request to first and every later one to
// other, as a load balancer without sticky sessions may, with a bearer
// token. It notes where each request went and what it answered.
type firstThenOther struct {
	first, other string // host:port
	token        string

	mu   sync.Mutex // guards seen
	seen []string   // "METHOD host status"
}

func (f *firstThenOther) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	host := f.other
	if len(f.seen) == 0 {
		host = f.first
	}
	i := len(f.seen)
	f.seen = append(f.seen, r.Method+" "+host)
	f.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = host, ""
	r.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		f.mu.Lock()
		f.seen[i] += fmt.Sprintf(" %d", resp.StatusCode)
		f.mu.Unlock()
	}
	return resp, err
}

func (f *firstThenOther) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// Two replicas sharing PostgreSQL, Redis and the key file, behind a load
// balancer that is not sticky: a session initialized at A is used, with an
// elicitation and progress notifications during calls, and closed, all
// through B. Another user presenting A's session id at B finds no session.
func TestSessionAcrossReplicas(t *testing.T) {
	dsn := postgresSchema(t)
	rurl := redisURL(t)
	upstream := newAskingUpstream(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	public := "http://" + addrA
	config := func(self string) string {
		return fmt.Sprintf("  publicURL: %q\n  replicaURL: %q\nstore:\n  driver: postgres\n  dsn: %q\nredis:\n  url: %q\n"+
			"mcpServers:\n  up:\n    type: streamable-http\n    url: %q\n", public, "http://"+self, dsn, rurl, upstream)
	}
	dataA, dataB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cfgA, cfgB := writeConfig(t, dataA, config(addrA)), writeConfig(t, dataB, config(addrB))
	addUser(t, cfgA, "alice", "user")
	addUser(t, cfgA, "bob", "user")
	key, err := os.ReadFile(filepath.Join(dataA, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "secrets.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	alice, bob := apiKey(t, cfgA, "alice"), apiKey(t, cfgA, "bob")
	a := serve(t, "switchboard A", cfgA, addrA)
	b := serve(t, "switchboard B", cfgB, addrB)
	waitTool(t, a.base+"/mcp", alice, openSession(t, a.base+"/mcp", alice), "up__ask")
	waitTool(t, b.base+"/mcp", alice, openSession(t, b.base+"/mcp", alice), "up__ask")

	lb := &firstThenOther{first: addrA, other: addrB, token: alice}
	var (
		mu       sync.Mutex // guards progress
		progress []string
	)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "green"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.Message)
			mu.Unlock()
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   a.base + "/mcp",
		HTTPClient: &http.Client{Transport: lb},
	}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	sid := cs.ID()
	call := func(tool string, tok any) string {
		t.Helper()
		p := &mcp.CallToolParams{Name: tool, Arguments: map[string]any{}}
		if tok != nil {
			p.SetProgressToken(tok)
		}
		res, err := cs.CallTool(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		var sb strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				sb.WriteString(tc.Text)
			}
		}
		if res.IsError {
			t.Fatalf("%s: tool error %s", tool, sb.String())
		}
		return sb.String()
	}
	if got := call("up__ask", nil); got != "accept: green" {
		t.Errorf("up__ask = %q, want the elicited answer", got)
	}
	if got := call("up__count", "p1"); got != "counted" {
		t.Errorf("up__count = %q", got)
	}
	if got := call("switchboard__get_current_time", nil); got == "" {
		t.Error("get_current_time answered nothing")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress notifications: %d of 3", n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Run("another user's token with the session id at B", func(t *testing.T) {
		if r := mcpPost(t, b.base+"/mcp", bob, sid, toolsListMsg); r.status != http.StatusNotFound {
			t.Errorf("bob at B: %d %s, want 404", r.status, r.body)
		}
		if r := mcpPost(t, a.base+"/mcp", bob, sid, toolsListMsg); r.status != http.StatusNotFound {
			t.Errorf("bob at A: %d %s, want 404", r.status, r.body)
		}
	})
	t.Run("a forged forwarding header at A", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, a.base+"/mcp", strings.NewReader(toolsListMsg))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("X-Switchboard-Forwarded", "1")
		req.Header.Set("X-Switchboard-Forwarded-User", "eyJ1IjoiYWxpY2UifQ.AAAA")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged forwarding header: %d, want 403", resp.StatusCode)
		}
	})

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	reqs := lb.requests()
	if want := "POST " + addrA + " 200"; reqs[0] != want {
		t.Errorf("first request %q, want %q", reqs[0], want)
	}
	var deleted bool
	for _, r := range reqs[1:] {
		if !strings.Contains(r, " "+addrB) {
			t.Errorf("request %q did not go to B", r)
		}
		deleted = deleted || strings.HasPrefix(r, "DELETE "+addrB+" 204")
	}
	if !deleted {
		t.Errorf("no DELETE answered 204 at B: %q", reqs)
	}
	t.Logf("requests: %q", reqs)
	// Closed for good, at both replicas and in Redis.
	for _, base := range []string{a.base, b.base} {
		if r := mcpPost(t, base+"/mcp", alice, sid, toolsListMsg); r.status != http.StatusNotFound {
			t.Errorf("closed session at %s: %d, want 404", base, r.status)
		}
	}
	opts, err := redis.ParseURL(rurl)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	if n, err := rc.Exists(context.Background(), "switchboard:sess:"+sid).Result(); err != nil || n != 0 {
		t.Errorf("Redis still holds the closed session: %d, %v", n, err)
	}
}
