package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// behaviourEnv is a gateway over one server "up" in one of the four
// shapes a server takes (shared or per user, stdio or HTTP), which the
// test can take down.
type behaviourEnv struct {
	url     string
	hub     *hub.Hub
	perUser bool
	down    func()
}

func newBehaviourEnv(t *testing.T, stdio, perUser bool) *behaviourEnv {
	t.Helper()
	e := &behaviourEnv{perUser: perUser}
	var srv *config.Server
	if stdio {
		downFile := filepath.Join(t.TempDir(), "down")
		srv = &config.Server{Name: "up", Type: config.Stdio, Command: os.Args[0], Startup: true, ChatMenu: true,
			Env: map[string]string{upstreamEnv: "1", downEnv: downFile}}
		if perUser {
			srv.Args = []string{"--who={{LIBRECHAT_USER_ID}}"}
		}
		e.down = func() {
			if err := os.WriteFile(downFile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			// The child goes; its restarts fail while the file exists.
			for _, u := range []string{"", "alice", "bob"} {
				if c, err := e.hub.Binding("up", u); err == nil {
					c.Reinitialize(t.Context(), hub.Caller{User: u})
				}
			}
		}
	} else {
		var isDown atomic.Bool
		up := newUpstream("up", func(string) {})
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isDown.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(func() {
			ts.Close()
			for ss := range up.Sessions() {
				ss.Close()
			}
		})
		srv = &config.Server{Name: "up", Type: config.StreamableHTTP, URL: ts.URL, Startup: true, ChatMenu: true}
		if perUser {
			srv.Headers = map[string]string{"X-Token": "{{TOKEN}}"}
			srv.CustomUserVars = map[string]config.CustomUserVar{"TOKEN": {Title: "Token"}}
		}
		e.down = func() { isDown.Store(true) }
	}
	srv.ServerInstructions = config.Instructions{Enabled: true}
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.hub = hub.New(&config.Config{Servers: []*config.Server{srv}}, &hub.Options{Store: st, BreakerCooldown: time.Minute})
	if perUser && srv.CustomUserVars != nil {
		for _, u := range []string{"alice", "bob"} {
			if err := e.hub.SetCredentials(t.Context(), u, "up", map[string]string{"TOKEN": u + "-token"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	gw := gateway.New(e.hub, &gateway.Options{Verify: testVerify})
	t.Cleanup(func() {
		e.hub.Close()
		gw.Close()
	})
	e.hub.Start()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	e.hub.WaitConnected(ctx)
	gw.Sync()
	hs := httptest.NewServer(gw.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

func (e *behaviourEnv) connect(t *testing.T, user string) *mcp.ClientSession {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "behaviour-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: &http.Client{Transport: &asUser{user, tr}}},
		&mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tool := range res.Tools {
		if strings.HasPrefix(tool.Name, "up__") {
			out = append(out, tool.Name)
		}
	}
	slices.Sort(out)
	return out
}

// The same observable behaviour for a shared and a per-user server, stdio
// and HTTP: a new user's first tools/list shows every tool of the server;
// its serverInstructions reach the /mcp instructions and the agent's
// system prompt; the agent is offered its tools; and while the server is
// down its tools stay listed and a call is an isError result naming the
// server (in Korean for a Korean client).
func TestPerUserBehavesLikeShared(t *testing.T) {
	wantTools := []string{"up__ask", "up__log", "up__progress", "up__roots", "up__sample", "up__slow", "up__touch"}
	for _, tt := range []struct {
		name           string
		stdio, perUser bool
	}{
		{"shared stdio", true, false},
		{"per-user stdio", true, true},
		{"shared HTTP", false, false},
		{"per-user HTTP", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newBehaviourEnv(t, tt.stdio, tt.perUser)
			alice := e.connect(t, "alice")
			if got := toolNames(t, alice); !slices.Equal(got, wantTools) {
				t.Errorf("alice's first tools/list: %v, want %v", got, wantTools)
			}
			instr := alice.InitializeResult().Instructions
			if !strings.Contains(instr, "## up MCP server instructions") || !strings.Contains(instr, "Instructions of ") {
				t.Errorf("/mcp instructions %q lack the server's", instr)
			}

			tools := agent.NewHubTools(e.hub)
			servers, err := tools.Servers(t.Context(), "bob")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range servers {
				names = append(names, s.Name)
			}
			offered, err := tools.Tools(t.Context(), "bob", names)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ti := range offered {
				got = append(got, ti.Server+"__"+ti.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, wantTools) {
				t.Errorf("the agent is offered %v for bob, want %v", got, wantTools)
			}
			// Servers after Tools: bob's binding has connected by now.
			servers, _ = tools.Servers(t.Context(), "bob")
			if i := slices.IndexFunc(servers, func(s agent.ServerInfo) bool { return s.Name == "up" }); i < 0 || !strings.HasPrefix(servers[i].Instructions, "Instructions of ") {
				t.Errorf("the agent's servers for bob: %+v, want up with its instructions", servers)
			}

			e.down()
			ko := e.connectLang(t, "alice", "ko-KR,ko;q=0.9")
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			for _, cs := range []*mcp.ClientSession{alice, ko} {
				if got := toolNames(t, cs); !slices.Equal(got, wantTools) {
					t.Errorf("tools/list while down: %v, want every tool still listed", got)
				}
			}
			for cs, want := range map[*mcp.ClientSession]string{alice: "The up server is unavailable", ko: "up 서버에 지금 연결할 수 없습니다"} {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up__touch", Arguments: map[string]any{"tag": "t"}})
				if err != nil {
					t.Fatalf("call while down: protocol error %v, want an isError result", err)
				}
				if !res.IsError || !strings.Contains(resultText(res), want) {
					t.Errorf("call while down: isError %v, %q; want isError containing %q", res.IsError, resultText(res), want)
				}
			}
		})
	}
}

// connectLang connects as user with an Accept-Language header.
func (e *behaviourEnv) connectLang(t *testing.T, user, lang string) *mcp.ClientSession {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "behaviour-test", Version: "1"}, nil)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Accept-Language", lang)
		return (&asUser{user, tr}).RoundTrip(r)
	})}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Sessions of 2025-11-25 and 2026-07-28 clients using one stdio server at
// once are served by one child process per binding and revision, however
// many sessions there are: for the shared server one of each revision, for
// a per-user one that per user. (One child per binding for both revisions
// needs the hub to bridge 2026-07-28 callers; see hub.Conn.Modern.)
func TestChildrenPerBinding(t *testing.T) {
	for _, perUser := range []bool{false, true} {
		t.Run(map[bool]string{false: "shared", true: "per user"}[perUser], func(t *testing.T) {
			spawns := filepath.Join(t.TempDir(), "spawns")
			srv := &config.Server{Name: "up", Type: config.Stdio, Command: os.Args[0], Startup: true,
				Env: map[string]string{upstreamEnv: "1", spawnEnv: spawns}}
			if perUser {
				srv.Args = []string{"--who={{LIBRECHAT_USER_ID}}"}
			}
			h := hub.New(&config.Config{Servers: []*config.Server{srv}}, nil)
			gw := gateway.New(h, &gateway.Options{Verify: testVerify})
			t.Cleanup(func() {
				h.Close()
				gw.Close()
			})
			h.Start()
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			h.WaitConnected(ctx)
			hs := httptest.NewServer(gw.Handler())
			t.Cleanup(hs.Close)
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			users := []string{"alice", "bob"}
			revisions := []string{"2025-11-25", "2026-07-28", "2025-11-25", "2026-07-28"}
			for _, user := range users {
				for _, rev := range revisions {
					client := mcp.NewClient(&mcp.Implementation{Name: "rev-test", Version: "1"}, nil)
					cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL + "/mcp", HTTPClient: &http.Client{Transport: &asUser{user, tr}}},
						&mcp.ClientSessionOptions{ProtocolVersion: rev})
					if err != nil {
						t.Fatalf("%s %s: %v", user, rev, err)
					}
					t.Cleanup(func() { cs.Close() })
					res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up__touch", Arguments: map[string]any{"tag": "t"}})
					if err != nil || res.IsError {
						if res == nil {
							t.Fatalf("%s %s: call: %v", user, rev, err)
						}
						t.Fatalf("%s %s: call: %v %v", user, rev, err, resultText(res))
					}
				}
			}
			b, err := os.ReadFile(spawns)
			if err != nil {
				t.Fatal(err)
			}
			want := 2 // revisions
			if perUser {
				want *= len(users)
			}
			if got := strings.Count(string(b), "\n"); got != want {
				t.Errorf("%d child processes started for %d sessions, want %d (one per binding and revision)", got, len(users)*len(revisions), want)
			}
		})
	}
}
