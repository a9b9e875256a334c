package hub_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// restartableHTTP is a streamable-HTTP upstream that can be taken down
// and restarted: a restart is a new server that knows none of the old
// sessions (it answers 404 to them). It opens no standalone GET stream, so
// a client learns of the restart only from its next request.
type restartableHTTP struct {
	*httptest.Server
	down atomic.Bool
	mu   sync.Mutex // guards the fields below
	h    http.Handler
	srv  *mcp.Server
}

func newRestartableHTTP(t *testing.T) *restartableHTTP {
	u := &restartableHTTP{}
	u.restart()
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.Method == http.MethodGet {
			http.Error(w, "no standalone stream here", http.StatusMethodNotAllowed)
			return
		}
		u.mu.Lock()
		h := u.h
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		u.Close()
		u.closeSessions()
	})
	return u
}

// restart replaces the server by a new one; the old one's sessions end,
// as they would with its process.
func (u *restartableHTTP) restart() {
	u.closeSessions()
	srv := childServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	u.mu.Lock()
	u.h, u.srv = h, srv
	u.mu.Unlock()
}

func (u *restartableHTTP) closeSessions() {
	u.mu.Lock()
	srv := u.srv
	u.mu.Unlock()
	if srv == nil {
		return
	}
	for ss := range srv.Sessions() {
		ss.Close()
	}
}

// outage is one way of taking a test upstream down and bringing it back.
type outage struct {
	down func(t *testing.T, ctx context.Context, c *hub.Conn)
	up   func()
}

// A binding reconnects on its own after its server was down, shared or
// per user, stdio or HTTP: the next call after the server is back
// succeeds without a reinitialize. An HTTP server that restarts and
// answers 404 to the old session id is used again at the very next call.
func TestReconnectsAfterOutage(t *testing.T) {
	stdio := func(t *testing.T, perUser bool) (*config.Server, outage) {
		down := filepath.Join(t.TempDir(), "down")
		s := stdioServer("up", modeServer)
		s.Env[downEnv] = down
		if perUser {
			s.Args = []string{"--who={{LIBRECHAT_USER_ID}}"}
		}
		return s, outage{
			down: func(t *testing.T, ctx context.Context, c *hub.Conn) {
				if err := os.WriteFile(down, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				call(ctx, c, "crash", nil) // the child exits; restarts fail while down
			},
			up: func() { os.Remove(down) },
		}
	}
	httpServer := func(t *testing.T, perUser bool) (*config.Server, outage) {
		u := newRestartableHTTP(t)
		s := &config.Server{Name: "up", Type: config.StreamableHTTP, URL: u.URL, Startup: true}
		if perUser {
			s.Headers = map[string]string{"X-Token": "{{TOKEN}}"}
			s.CustomUserVars = map[string]config.CustomUserVar{"TOKEN": {Title: "Token"}}
		}
		return s, outage{
			down: func(*testing.T, context.Context, *hub.Conn) { u.down.Store(true); u.restart() },
			up:   func() { u.down.Store(false) },
		}
	}
	tests := []struct {
		name    string
		perUser bool
		server  func(t *testing.T, perUser bool) (*config.Server, outage)
	}{
		{"shared stdio", false, stdio},
		{"per-user stdio", true, stdio},
		{"shared HTTP", false, httpServer},
		{"per-user HTTP", true, httpServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, o := tt.server(t, tt.perUser)
			st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
			h, _ := newHub(t, &hub.Options{Store: st, BreakerThreshold: 2, BreakerCooldown: 2 * time.Second}, srv)
			c := conn(t, h, "up")
			ctx := t.Context()
			if tt.perUser {
				if srv.CustomUserVars != nil {
					if err := h.SetCredentials(ctx, "alice", "up", map[string]string{"TOKEN": "t"}); err != nil {
						t.Fatal(err)
					}
				}
				ctx = withUser(ctx, "alice")
			}
			if got, err := call(ctx, c, "echo", map[string]any{"text": "before"}); err != nil || got != "before" {
				t.Fatalf("first call: %q, %v", got, err)
			}
			o.down(t, ctx, c)
			_, err := call(ctx, c, "echo", map[string]any{"text": "during"})
			var ue *hub.UnavailableError
			if !errors.As(err, &ue) || ue.Server != "up" {
				t.Fatalf("call while down: %v, want an UnavailableError naming the server", err)
			}
			// Let the binding fail often enough to open its breaker.
			time.Sleep(time.Second)
			o.up()
			back := time.Now()
			for {
				got, err := call(ctx, c, "echo", map[string]any{"text": "after"})
				if err == nil && got == "after" {
					t.Logf("used again %s after the server was back", time.Since(back).Round(10*time.Millisecond))
					break
				}
				if time.Since(back) > 10*time.Second {
					t.Fatalf("still failing 10 s after the server was back: %v (status %+v)", err, statusOf(t, h, c, tt.perUser))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !tt.perUser && srv.Type == config.StreamableHTTP || tt.perUser && srv.Type == config.StreamableHTTP {
				// A restart without downtime: the old session id gets 404,
				// and the very next call starts a new session.
				o.down(t, ctx, c)
				o.up()
				if got, err := call(ctx, c, "echo", map[string]any{"text": "restarted"}); err != nil || got != "restarted" {
					t.Fatalf("first call after a restart: %q, %v; want a new session at once", got, err)
				}
			}
		})
	}
}

func statusOf(t *testing.T, h *hub.Hub, c *hub.Conn, perUser bool) hub.Status {
	if !perUser {
		return c.Status()
	}
	st, _ := h.StatusFor(t.Context(), "alice", c.Name())
	return st
}
