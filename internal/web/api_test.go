package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/web"
)

// Canaries: values the users enter, looked for wherever they must not be.
const (
	canaryAlice = "alice-secret-CANARY-4f1b9e"
	canaryBob   = "bob-secret-CANARY-0c7d22"
)

// upstreamRecord is what the upstream saw on one HTTP request.
type upstreamRecord struct {
	session, user, token string
}

// recordingUpstream is a streamable-HTTP MCP server that records the
// headers every request of every connection carried.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex // guards seen
	seen []upstreamRecord
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	s := mcp.NewServer(&mcp.Implementation{Name: "recorder", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		// The user id only: the token stays out of results.
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: req.Extra.Header.Get("X-User")}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, upstreamRecord{session: r.Header.Get("Mcp-Session-Id"), user: r.Header.Get("X-User"), token: r.Header.Get("X-Token")})
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		u.Close()
	})
	return u
}

func (u *recordingUpstream) records() []upstreamRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRecord(nil), u.seen...)
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// apiClient calls the API as one user, keeping every body it received.
type apiClient struct {
	t      *testing.T
	base   string
	key    string
	bodies *[]string
}

type apiReply struct {
	status int
	body   string
}

func (c apiClient) do(method, path, body string) apiReply {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	*c.bodies = append(*c.bodies, string(b))
	return apiReply{resp.StatusCode, string(b)}
}

// view is what a user observes of the server through every endpoint, with
// the times that change on their own removed.
func (c apiClient) view() map[string]any {
	c.t.Helper()
	out := map[string]any{}
	for _, r := range []struct{ name, method, path, body string }{
		{"list", http.MethodGet, "/api/servers", ""},
		{"one", http.MethodGet, "/api/servers/svc", ""},
		{"reinitialize", http.MethodPost, "/api/servers/svc/reinitialize", ""},
		{"unknown variable", http.MethodPut, "/api/servers/svc/credentials", `{"values":{"NOPE":"x"}}`},
		{"unknown server", http.MethodGet, "/api/servers/nope", ""},
	} {
		rep := c.do(r.method, r.path, r.body)
		var v any
		if err := json.Unmarshal([]byte(rep.body), &v); err != nil {
			c.t.Fatalf("%s %s: %d %q is not JSON", r.method, r.path, rep.status, rep.body)
		}
		out[r.name] = map[string]any{"status": rep.status, "body": dropTimes(v)}
	}
	return out
}

func dropTimes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "since")
		delete(x, "nextRetry")
		for k, e := range x {
			x[k] = dropTimes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropTimes(e)
		}
	}
	return v
}

// Issue 4, acceptance 2 (the API part): user B cannot read, use or learn
// the existence of user A's customUserVars through the API, and the
// values appear in no response and no log line. The hub, the store (a
// SQLite file) and the upstream are real; users are told apart by UserOf,
// as cmd/switchboard does with the authorization server's principal.
func TestCredentialsAreEachUsersOwn(t *testing.T) {
	up := newRecordingUpstream(t)
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	srv := &config.Server{
		Name: "svc", Type: config.StreamableHTTP, URL: up.URL + "/mcp", Startup: true,
		Headers:        map[string]string{"X-Token": "{{API_TOKEN}}", "X-User": "{{LIBRECHAT_USER_ID}}"},
		CustomUserVars: map[string]config.CustomUserVar{"API_TOKEN": {Title: "API token", Sensitive: true}},
	}
	h := hub.New(&config.Config{Servers: []*config.Server{srv}}, &hub.Options{
		Store:  st,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(func() { h.Close() })
	h.Start()

	principals := map[string]string{"key-alice": "alice", "key-bob": "bob"}
	api := web.NewAPI(h, &web.Options{UserOf: func(r *http.Request) string {
		return principals[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	}})
	ts := httptest.NewServer(api.Handler())
	t.Cleanup(ts.Close)
	var bodies []string
	alice := apiClient{t, ts.URL, "key-alice", &bodies}
	bob := apiClient{t, ts.URL, "key-bob", &bodies}
	callAs := func(user string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		c, err := h.Conn("svc")
		if err != nil {
			return "", err
		}
		res, err := c.CallTool(ctx, hub.Caller{User: user}, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil {
			return "", err
		}
		if res.IsError || len(res.Content) == 0 {
			return "", errors.New("tool error")
		}
		return res.Content[0].(*mcp.TextContent).Text, nil
	}

	bobBefore := bob.view()

	if r := alice.do(http.MethodPut, "/api/servers/svc/credentials", `{"values":{"API_TOKEN":"`+canaryAlice+`"}}`); r.status != http.StatusOK {
		t.Fatalf("alice saves her token: %d %s", r.status, r.body)
	}
	if who, err := callAs("alice"); err != nil || who != "alice" {
		t.Fatalf("alice's call: %q, %v", who, err)
	}

	t.Run("B's view is the same whether or not A has values", func(t *testing.T) {
		if diff := cmp.Diff(bobBefore, bob.view()); diff != "" {
			t.Errorf("bob's view changed when alice saved her value (-before +after):\n%s", diff)
		}
		var one hub.Status
		json.Unmarshal([]byte(bob.do(http.MethodGet, "/api/servers/svc", "").body), &one)
		if diff := cmp.Diff(map[string]bool{"API_TOKEN": false}, one.Variables); diff != "" {
			t.Errorf("bob's variables (-want +got):\n%s", diff)
		}
	})
	t.Run("B cannot use A's values", func(t *testing.T) {
		_, err := callAs("bob")
		var mv *hub.MissingVariablesError
		if !errors.As(err, &mv) {
			t.Fatalf("bob's call without values: %v, want MissingVariablesError", err)
		}
		if strings.Contains(err.Error(), canaryAlice) {
			t.Errorf("bob's error carries alice's value: %v", err)
		}
	})
	t.Run("B's DELETE leaves A's values alone", func(t *testing.T) {
		if r := bob.do(http.MethodDelete, "/api/servers/svc/credentials", ""); r.status != http.StatusOK {
			t.Fatalf("bob's DELETE: %d %s", r.status, r.body)
		}
		var one hub.Status
		json.Unmarshal([]byte(alice.do(http.MethodGet, "/api/servers/svc", "").body), &one)
		if !one.Variables["API_TOKEN"] || len(one.MissingVariables) > 0 {
			t.Errorf("alice's variables after bob's DELETE: %v, missing %v", one.Variables, one.MissingVariables)
		}
		if who, err := callAs("alice"); err != nil || who != "alice" {
			t.Fatalf("alice's call after bob's DELETE: %q, %v", who, err)
		}
	})
	t.Run("B's own values reach only B's connection", func(t *testing.T) {
		if r := bob.do(http.MethodPut, "/api/servers/svc/credentials", `{"values":{"API_TOKEN":"`+canaryBob+`"}}`); r.status != http.StatusOK {
			t.Fatalf("bob saves his token: %d %s", r.status, r.body)
		}
		if who, err := callAs("bob"); err != nil || who != "bob" {
			t.Fatalf("bob's call: %q, %v", who, err)
		}
		if who, err := callAs("alice"); err != nil || who != "alice" {
			t.Fatalf("alice's call: %q, %v", who, err)
		}
	})

	t.Run("upstream connections carry their own user's values only", func(t *testing.T) {
		want := map[string]string{canaryAlice: "alice", canaryBob: "bob"}
		sessions := map[string]string{} // session -> user
		users := map[string]bool{}
		for _, r := range up.records() {
			if r.user != "alice" && r.user != "bob" {
				t.Errorf("a request for user %q", r.user)
				continue
			}
			users[r.user] = true
			if want[r.token] != r.user {
				t.Errorf("a request for %s carried token %q", r.user, r.token)
			}
			if r.session == "" {
				continue
			}
			if u, ok := sessions[r.session]; ok && u != r.user {
				t.Errorf("upstream session %s carried requests of %s and %s", r.session, u, r.user)
			}
			sessions[r.session] = r.user
		}
		if !users["alice"] || !users["bob"] {
			t.Errorf("the upstream saw users %v, want both", users)
		}
	})
	t.Run("values appear in no response and no log line", func(t *testing.T) {
		bob.view()
		alice.view()
		for _, b := range bodies {
			for _, c := range []string{canaryAlice, canaryBob} {
				if strings.Contains(b, c) {
					t.Errorf("an API response carries a value: %s", b)
				}
			}
		}
		out := logs.String()
		if out == "" {
			t.Fatal("no log output to search")
		}
		for _, line := range strings.Split(out, "\n") {
			for _, c := range []string{canaryAlice, canaryBob} {
				if strings.Contains(line, c) {
					t.Errorf("a log line carries a value: %s", line)
				}
			}
		}
	})
}
