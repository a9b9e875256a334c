package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// openStore opens a real SQLite store in dir with a fixed key.
func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), path, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func userInfo(_ context.Context, id string) (*hub.User, error) {
	return &hub.User{ID: id, Name: "Name of " + id, Email: id + "@example.com", Role: "user", Provider: "local"}, nil
}

// perUserStdio is a stdio server whose environment and arguments carry the
// user's id and customUserVar TOKEN.
func perUserStdio(name string) *config.Server {
	s := stdioServer(name, modeServer)
	s.Env["SB_USER"] = "{{LIBRECHAT_USER_ID}}"
	s.Env["SB_TOKEN"] = "{{TOKEN}}"
	s.Env["SB_EMAIL"] = "{{LIBRECHAT_USER_EMAIL}}"
	s.Args = []string{"{{TOKEN}}", "--who={{LIBRECHAT_USER_ID}}"}
	s.CustomUserVars = map[string]config.CustomUserVar{"TOKEN": {Title: "Token", Sensitive: true}}
	return s
}

func envOf(t *testing.T, ctx context.Context, c *hub.Conn) map[string]string {
	t.Helper()
	out, err := call(ctx, c, "env", nil)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Two users of one stdio server: each gets a process of their own, with
// their own id and values, and values pass literally.
func TestPerUserStdio(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	spawns := filepath.Join(t.TempDir(), "spawns")
	srv := perUserStdio("per")
	srv.Env[spawnEnv] = spawns
	h, _ := newHub(t, &hub.Options{Store: st, UserInfo: userInfo}, srv)
	c := conn(t, h, "per")
	alice := withUser(t.Context(), "alice")
	bob := withUser(t.Context(), "bob")

	if !c.UserScoped() {
		t.Fatal("server with placeholders is not user-scoped")
	}
	// Without a user there is no connection.
	if _, err := call(t.Context(), c, "env", nil); !errors.Is(err, hub.ErrNeedsUser) {
		t.Fatalf("call without user: %v, want ErrNeedsUser", err)
	}
	// Without the variable the status says what is missing.
	_, err := call(alice, c, "env", nil)
	var mv *hub.MissingVariablesError
	if !errors.As(err, &mv) || !slices.Equal(mv.Names, []string{"TOKEN"}) {
		t.Fatalf("call before TOKEN is set: %v", err)
	}
	stA, err := h.StatusFor(t.Context(), "alice", "per")
	if err != nil || !slices.Equal(stA.MissingVariables, []string{"TOKEN"}) || stA.Variables["TOKEN"] {
		t.Fatalf("status before TOKEN: %+v, %v", stA, err)
	}

	aliceToken := "a ${HOME} {{LIBRECHAT_USER_ID}} $(id) `id`"
	if err := h.SetCredentials(t.Context(), "alice", "per", map[string]string{"TOKEN": aliceToken}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetCredentials(t.Context(), "bob", "per", map[string]string{"TOKEN": "bob-secret"}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetCredentials(t.Context(), "bob", "per", map[string]string{"OTHER": "x"}); !errors.Is(err, hub.ErrUnknownVariable) {
		t.Fatalf("unknown variable: %v", err)
	}

	envA, envB := envOf(t, alice, c), envOf(t, bob, c)
	for _, tt := range []struct {
		env              map[string]string
		user, token, who string
	}{{envA, "alice", aliceToken, "alice"}, {envB, "bob", "bob-secret", "bob"}} {
		if tt.env["SB_USER"] != tt.user || tt.env["SB_TOKEN"] != tt.token || tt.env["SB_EMAIL"] != tt.user+"@example.com" {
			t.Errorf("%s's process got SB_USER=%q SB_TOKEN=%q SB_EMAIL=%q", tt.user, tt.env["SB_USER"], tt.env["SB_TOKEN"], tt.env["SB_EMAIL"])
		}
	}
	argv, err := call(alice, c, "argv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	json.Unmarshal([]byte(argv), &args)
	if !slices.Equal(args, []string{aliceToken, "--who=alice"}) {
		t.Errorf("alice's argv %q", args)
	}
	pidA, _ := call(alice, c, "pid", nil)
	pidB, _ := call(bob, c, "pid", nil)
	if pidA == pidB {
		t.Errorf("alice and bob share process %s", pidA)
	}
	if n := countLines(t, spawns); n != 2 {
		t.Errorf("%d processes started, want 2", n)
	}

	// Bob's status says nothing of alice's values; clearing alice's leaves bob's.
	stB, _ := h.StatusFor(t.Context(), "bob", "per")
	if !stB.Variables["TOKEN"] || len(stB.MissingVariables) != 0 || stB.State != hub.StateConnected {
		t.Errorf("bob's status %+v", stB)
	}
	if b, _ := json.Marshal(stB); strings.Contains(string(b), "bob-secret") || strings.Contains(string(b), "HOME") {
		t.Errorf("status carries a value: %s", b)
	}
	if err := h.DeleteCredentials(t.Context(), "alice", "per"); err != nil {
		t.Fatal(err)
	}
	if _, err := call(alice, c, "env", nil); !errors.As(err, &mv) {
		t.Errorf("alice's call after clearing: %v", err)
	}
	if envOf(t, bob, c)["SB_TOKEN"] != "bob-secret" {
		t.Error("bob lost his token when alice cleared hers")
	}

	// A value that would start an argument with '-' is refused.
	if err := h.SetCredentials(t.Context(), "alice", "per", map[string]string{"TOKEN": "--config=/etc/passwd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(alice, c, "env", nil); err == nil || !strings.Contains(err.Error(), "must not start an argument") {
		t.Errorf("leading dash: %v", err)
	}
}

// Concurrent first uses make one connection; the caps refuse more with a
// clear error; idle connections close and come back on use.
func TestPerUserCoalesceCapsIdle(t *testing.T) {
	spawns := filepath.Join(t.TempDir(), "spawns")
	one := stdioServer("one", modeServer)
	one.Env["SB_USER"] = "{{LIBRECHAT_USER_ID}}"
	one.Env[spawnEnv] = spawns
	two := stdioServer("two", modeServer)
	two.Env["SB_USER"] = "{{LIBRECHAT_USER_ID}}"
	h, _ := newHub(t, &hub.Options{MaxConnsPerUser: 1, MaxUserConns: 2, IdleTimeout: 300 * time.Millisecond}, one, two)
	c1, c2 := conn(t, h, "one"), conn(t, h, "two")
	alice := withUser(t.Context(), "alice")

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := call(alice, c1, "echo", map[string]any{"text": "hi"}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := countLines(t, spawns); n != 1 {
		t.Errorf("%d processes for 8 concurrent first calls, want 1", n)
	}
	if _, err := call(alice, c2, "echo", map[string]any{"text": "hi"}); !errors.Is(err, hub.ErrTooManyConnections) {
		t.Errorf("second server beyond the per-user cap: %v", err)
	}

	u, _ := c1.ForUser("alice")
	pid, _ := call(alice, c1, "pid", nil)
	waitFor(t, 5*time.Second, "the idle connection to close", func() bool { return u.Idle() && !u.Connected() })
	var p int
	json.Unmarshal([]byte(pid), &p)
	waitFor(t, 5*time.Second, "the idle process to exit", func() bool { return processGone(p) })
	if u.Catalog() == nil {
		t.Error("an idle connection lost its catalog")
	}
	// The slot is free again: the other server connects, and the first
	// comes back when used.
	if _, err := call(alice, c2, "echo", map[string]any{"text": "hi"}); err != nil {
		t.Fatalf("after idle close: %v", err)
	}
	waitFor(t, 5*time.Second, "two to go idle", func() bool { u2, _ := c2.ForUser("alice"); return u2.Idle() })
	if _, err := call(alice, c1, "echo", map[string]any{"text": "again"}); err != nil {
		t.Fatalf("reconnect after idle: %v", err)
	}
}

// recordingServer is an MCP server over streamable HTTP that records the
// headers of every request.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex // guards seen
	seen []http.Header
}

func newRecordingServer(t *testing.T) *recordingServer {
	rs := &recordingServer{}
	s := mcp.NewServer(&mcp.Implementation{Name: "rec", Version: "1"}, nil)
	addEcho(s)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.seen = append(rs.seen, r.Header.Clone())
		rs.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(rs.Close)
	return rs
}

// headers returns the distinct values of header a seen with header b = v.
func (rs *recordingServer) headers(name, whereName, whereValue string) []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []string
	for _, h := range rs.seen {
		if h.Get(whereName) == whereValue && !slices.Contains(out, h.Get(name)) {
			out = append(out, h.Get(name))
		}
	}
	return out
}

// Two users of one HTTP server: each connection sends only its user's
// values; a line break in a value is refused.
func TestPerUserHTTPHeaders(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	rs := newRecordingServer(t)
	srv := &config.Server{Name: "web", Type: config.StreamableHTTP, URL: rs.URL, Startup: true,
		Headers:        map[string]string{"X-User": "{{LIBRECHAT_USER_ID}}", "X-Token": "{{TOKEN}}", "X-Name": "{{LIBRECHAT_USER_NAME}}"},
		CustomUserVars: map[string]config.CustomUserVar{"TOKEN": {Sensitive: true}},
		APIKey:         &config.APIKey{Source: "user", AuthorizationType: "custom", CustomHeader: "X-Api-Key"},
	}
	h, _ := newHub(t, &hub.Options{Store: st, UserInfo: userInfo}, srv)
	c := conn(t, h, "web")
	ctx := t.Context()
	for user, vals := range map[string]map[string]string{
		"alice": {"TOKEN": "alice-token", "MCP_API_KEY": "alice-key"},
		"bob":   {"TOKEN": "bob-token", "MCP_API_KEY": "bob-key"},
	} {
		if err := h.SetCredentials(ctx, user, "web", vals); err != nil {
			t.Fatal(err)
		}
		if _, err := call(withUser(ctx, user), c, "echo", map[string]any{"text": user}); err != nil {
			t.Fatal(err)
		}
	}
	for _, user := range []string{"alice", "bob"} {
		if got := rs.headers("X-Token", "X-User", user); !slices.Equal(got, []string{user + "-token"}) {
			t.Errorf("%s's requests carried X-Token %q", user, got)
		}
		if got := rs.headers("X-Api-Key", "X-User", user); !slices.Equal(got, []string{user + "-key"}) {
			t.Errorf("%s's requests carried X-Api-Key %q", user, got)
		}
		if got := rs.headers("X-Name", "X-User", user); !slices.Equal(got, []string{"Name of " + user}) {
			t.Errorf("%s's requests carried X-Name %q", user, got)
		}
	}
	if err := h.SetCredentials(ctx, "bob", "web", map[string]string{"TOKEN": "x\r\nX-User: alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(withUser(ctx, "bob"), c, "echo", map[string]any{"text": "x"}); !errors.Is(err, hub.ErrHeaderValue) {
		t.Errorf("line break in a header value: %v", err)
	}
	if got := rs.headers("X-Token", "X-User", "alice"); !slices.Equal(got, []string{"alice-token"}) {
		t.Errorf("alice's requests carried X-Token %q after bob's attempt", got)
	}
}

// A tool call that runs 3x its timeout while reporting progress completes;
// one that reports nothing times out with a clear error, and the server
// sees the cancellation.
func TestTimeoutResetByProgress(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	s := mcp.NewServer(&mcp.Implementation{Name: "slow", Version: "1"}, nil)
	const timeout = 300 * time.Millisecond
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		for i := range 9 { // 9 x 100ms = 3 x timeout
			time.Sleep(timeout / 3)
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: 9})
		}
		return textResult("done"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "silent"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case <-ctx.Done():
			cancelled <- struct{}{}
			return nil, nil, ctx.Err()
		case <-time.After(10 * timeout):
			return textResult("too late"), nil, nil
		}
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close) // after the hub's cleanup closes its streams
	h, _ := newHub(t, nil, &config.Server{Name: "slow", Type: config.StreamableHTTP, URL: ts.URL, Timeout: timeout, Startup: true})
	c := conn(t, h, "slow")
	start := time.Now()
	if out, err := call(t.Context(), c, "progress", nil); err != nil || out != "done" {
		t.Fatalf("call with progress: %q, %v", out, err)
	}
	if d := time.Since(start); d < 3*timeout {
		t.Errorf("call with progress took %s, want at least %s", d, 3*timeout)
	}
	_, err := call(t.Context(), c, "silent", nil)
	if !errors.Is(err, hub.ErrTimeout) || !strings.Contains(err.Error(), "without progress") {
		t.Fatalf("silent call: %v, want a timeout without progress", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the server never saw the cancellation")
	}
}
