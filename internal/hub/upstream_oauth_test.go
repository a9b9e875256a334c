package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/postgres"
)

// clock is a test clock shared by the hub and the upstream.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// oauthUpstream is an MCP server protected by an authorization server of
// its own: the resource at 127.0.0.1, the authorization server named as
// "localhost" (a name that resolves to a loopback address). Access tokens
// expire after tokenTTL; refresh tokens rotate and work once.
type oauthUpstream struct {
	*httptest.Server
	clk      *clock
	issuer   string // http://localhost:port
	asURL    string // what the protected resource metadata names; issuer unless a test changes it
	tokenTTL time.Duration

	mu        sync.Mutex // guards the fields below
	codes     map[string]string
	access    map[string]accessToken
	refresh   map[string]string // refresh token -> user; deleted when used
	refreshes int
	revoked   []string
	seen      []string // user of every authorized MCP request
	n         int
}

type accessToken struct {
	user    string
	expires time.Time
}

func newOAuthUpstream(t *testing.T, clk *clock) *oauthUpstream {
	u := &oauthUpstream{clk: clk, tokenTTL: time.Hour, codes: map[string]string{}, access: map[string]accessToken{}, refresh: map[string]string{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "protected", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return textResult(req.Extra.Header.Get("X-Upstream-User")), nil, nil
	})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	t.Cleanup(func() { // after the hub's cleanup
		for ss := range s.Sessions() {
			ss.Close()
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, map[string]any{"resource": u.URL + "/mcp", "authorization_servers": []string{u.asURL}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, map[string]any{
			"issuer": u.issuer, "authorization_endpoint": u.issuer + "/authorize", "token_endpoint": u.issuer + "/token",
			"registration_endpoint": u.issuer + "/register", "revocation_endpoint": u.issuer + "/revoke",
			"code_challenge_methods_supported": []string{"S256"}, "response_types_supported": []string{"code"},
		})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		writeJSONTest(w, map[string]any{"client_id": "registered-client", "token_endpoint_auth_method": "none", "redirect_uris": []string{"http://sb.example/oauth/callback"}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := u.next("code")
		u.mu.Lock()
		u.codes[code] = q.Get("login_hint")
		u.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		u.mu.Lock()
		var user string
		switch r.Form.Get("grant_type") {
		case "authorization_code":
			user = u.codes[r.Form.Get("code")]
			delete(u.codes, r.Form.Get("code"))
		case "refresh_token":
			user = u.refresh[r.Form.Get("refresh_token")]
			delete(u.refresh, r.Form.Get("refresh_token")) // rotation: one use
			u.refreshes++
		}
		u.mu.Unlock()
		if user == "" {
			w.WriteHeader(http.StatusBadRequest)
			writeJSONTest(w, map[string]any{"error": "invalid_grant"})
			return
		}
		at, rt := u.next("at"), u.next("rt")
		u.mu.Lock()
		u.access[at] = accessToken{user: user, expires: u.clk.now().Add(u.tokenTTL)}
		u.refresh[rt] = user
		u.mu.Unlock()
		writeJSONTest(w, map[string]any{"access_token": at, "token_type": "Bearer", "refresh_token": rt, "expires_in": int(u.tokenTTL / time.Second)})
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		u.mu.Lock()
		u.revoked = append(u.revoked, r.Form.Get("token"))
		delete(u.refresh, r.Form.Get("token"))
		delete(u.access, r.Form.Get("token"))
		u.mu.Unlock()
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		at, ok := u.access[tok]
		if ok && u.clk.now().Before(at.expires) {
			u.seen = append(u.seen, at.user)
		}
		u.mu.Unlock()
		if !ok || !u.clk.now().Before(at.expires) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+u.URL+`/.well-known/oauth-protected-resource/mcp"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Set("X-Upstream-User", at.user)
		mcpHandler.ServeHTTP(w, r)
	})
	u.Server = httptest.NewServer(mux)
	_, port, _ := net.SplitHostPort(u.Listener.Addr().String())
	u.issuer = "http://localhost:" + port
	u.asURL = u.issuer
	t.Cleanup(u.Close)
	return u
}

func (u *oauthUpstream) next(prefix string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return fmt.Sprintf("%s-%d", prefix, u.n)
}

func (u *oauthUpstream) refreshCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.refreshes
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func oauthServer(u *oauthUpstream) *config.Server {
	return &config.Server{Name: "gh", Type: config.StreamableHTTP, URL: u.URL + "/mcp", Startup: true}
}

// authorizeAs plays the user's browser: it opens the authorization URL as
// user and hands the redirect back to the hub's callback.
func authorizeAs(t *testing.T, h *hub.Hub, user, authURL string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL + "&login_hint=" + user)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := h.HandleOAuthCallback(t.Context(), user, resp.Header.Get("Location")); err != nil {
		t.Fatalf("callback: %v", err)
	}
}

// needsAuth calls whoami as user and returns the authorization URL the hub
// asks the user to open.
func needsAuth(t *testing.T, c *hub.Conn, user string) string {
	t.Helper()
	_, err := call(withUser(t.Context(), user), c, "whoami", nil)
	var ae *hub.AuthorizationError
	if !errors.As(err, &ae) {
		t.Fatalf("%s's first call: %v, want an AuthorizationError", user, err)
	}
	return ae.URL
}

func TestUpstreamOAuth(t *testing.T) {
	clk := &clock{}
	up := newOAuthUpstream(t, clk)
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	h, _ := newHub(t, &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback",
		AllowedDomains: []string{"localhost"}}, oauthServer(up))
	c := conn(t, h, "gh")
	ctx := t.Context()
	waitFor(t, 10*time.Second, "OAuth to be detected", func() bool { return c.UserScoped() })

	aliceURL := needsAuth(t, c, "alice")
	if st, _ := h.StatusFor(ctx, "alice", "gh"); st.Authorization != hub.AuthNeedsAuthorization || st.OAuthURL != aliceURL {
		t.Errorf("alice's status %s %q", st.Authorization, st.OAuthURL)
	}
	// Bob cannot complete alice's authorization.
	if _, err := h.HandleOAuthCallback(ctx, "bob", "http://sb.example/oauth/callback?code=x&state="+url.Values{"u": {aliceURL}}.Get("u")); !errors.Is(err, hub.ErrUnknownState) {
		t.Errorf("bob completing alice's flow: %v", err)
	}
	authorizeAs(t, h, "alice", aliceURL)
	alice := withUser(ctx, "alice")
	if who, err := call(alice, c, "whoami", nil); err != nil || who != "alice" {
		t.Fatalf("alice's call after authorizing: %q, %v", who, err)
	}
	if st, _ := h.StatusFor(ctx, "alice", "gh"); st.Authorization != hub.AuthAuthorized || st.State != hub.StateConnected {
		t.Errorf("alice's status after authorizing: %s %s", st.State, st.Authorization)
	}
	// Alice's token is hers only: bob still has to authorize.
	needsAuth(t, c, "bob")
	if st, _ := h.StatusFor(ctx, "bob", "gh"); st.Authorization != hub.AuthNeedsAuthorization {
		t.Errorf("bob's status %s", st.Authorization)
	}

	// Past the token's expiry the hub refreshes it without the user.
	clk.advance(2 * time.Hour)
	if who, err := call(alice, c, "whoami", nil); err != nil || who != "alice" {
		t.Fatalf("alice's call after expiry: %q, %v", who, err)
	}
	if n := up.refreshCount(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	// Reconnecting (a restart) uses the stored, rotated token.
	if err := c.Reinitialize(alice, callerOf(alice)); err != nil {
		t.Fatal(err)
	}
	if who, err := call(alice, c, "whoami", nil); err != nil || who != "alice" {
		t.Fatalf("after reinitialize: %q, %v", who, err)
	}

	// Disconnecting revokes the token at the authorization server.
	if err := h.DeleteCredentials(ctx, "alice", "gh"); err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	revoked := len(up.revoked)
	up.mu.Unlock()
	if revoked == 0 {
		t.Error("no token was revoked")
	}
	needsAuth(t, c, "alice")
}

// Two hubs sharing one store refresh one user's token at the same moment:
// the authorization server sees one refresh, and both calls succeed.
func TestUpstreamOAuthRefreshAcrossReplicas(t *testing.T) {
	stores := map[string]func(t *testing.T) (store.Store, store.Store){
		"sqlite": func(t *testing.T) (store.Store, store.Store) {
			p := filepath.Join(t.TempDir(), "shared.db")
			return openStore(t, p), openStore(t, p)
		},
		"postgres": func(t *testing.T) (store.Store, store.Store) {
			dsn := os.Getenv("SWITCHBOARD_TEST_POSTGRES_DSN")
			if dsn == "" {
				t.Skip("SWITCHBOARD_TEST_POSTGRES_DSN is not set")
			}
			keys, _ := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
			open := func() store.Store {
				s, err := postgres.Open(t.Context(), dsn, keys)
				if err != nil {
					t.Skipf("postgres: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), open()
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			clk := &clock{}
			up := newOAuthUpstream(t, clk)
			st1, st2 := open(t)
			user := fmt.Sprintf("carol-%d", time.Now().UnixNano())
			opts := func(st store.Store, id string) *hub.Options {
				return &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback",
					AllowedDomains: []string{"localhost"}, ReplicaID: id}
			}
			h1, _ := newHub(t, opts(st1, "one"), oauthServer(up))
			h2, _ := newHub(t, opts(st2, "two"), oauthServer(up))
			c1, c2 := conn(t, h1, "gh"), conn(t, h2, "gh")
			waitFor(t, 10*time.Second, "OAuth to be detected", func() bool { return c1.UserScoped() && c2.UserScoped() })
			authorizeAs(t, h1, user, needsAuth(t, c1, user))
			ctx := withUser(t.Context(), user)
			for _, c := range []*hub.Conn{c1, c2} {
				if who, err := call(ctx, c, "whoami", nil); err != nil || who != user {
					t.Fatalf("before expiry: %q, %v", who, err)
				}
			}
			clk.advance(2 * time.Hour)
			var wg sync.WaitGroup
			for _, c := range []*hub.Conn{c1, c2, c1, c2} {
				wg.Go(func() {
					if who, err := call(ctx, c, "whoami", nil); err != nil || who != user {
						t.Errorf("after expiry: %q, %v", who, err)
					}
				})
			}
			wg.Wait()
			if n := up.refreshCount(); n != 1 {
				t.Errorf("the authorization server saw %d refreshes, want exactly 1", n)
			}
		})
	}
}

// URLs learned from the upstream that point at private addresses are
// refused unless allow-listed; the admin's own server may be private.
func TestUpstreamOAuthSSRF(t *testing.T) {
	tests := []struct {
		name, as string
		allowed  []string
	}{
		{name: "name resolving to loopback", as: "http://localhost:%s"},
		{name: "loopback", as: "http://127.0.0.2:%s"},
		{name: "metadata address", as: "http://169.254.169.254"},
		{name: "hex loopback", as: "http://0x7f000001:%s"},
		{name: "mapped loopback", as: "http://[::ffff:127.0.0.1]:%s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{}
			up := newOAuthUpstream(t, clk)
			_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
			if strings.Contains(tt.as, "%s") {
				up.asURL = fmt.Sprintf(tt.as, port)
			} else {
				up.asURL = tt.as
			}
			st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
			h, _ := newHub(t, &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback"}, oauthServer(up))
			c := conn(t, h, "gh")
			waitFor(t, 10*time.Second, "the app-level attempt to end", func() bool {
				s := c.Status()
				return s.State != hub.StateConnecting && (s.State != hub.StateDisconnected || c.UserScoped())
			})
			if c.UserScoped() {
				t.Fatalf("discovery reached %s", up.asURL)
			}
			if s := c.Status(); !strings.Contains(s.LastError, "refused") && !strings.Contains(s.LastError, "no such host") {
				t.Errorf("last error %q does not say the address was refused", s.LastError)
			}
		})
	}
}

// The callback of an authorization started at one replica may reach
// another (one public callback URL behind a load balancer): the pending
// authorization lives in the shared store, so either replica completes it,
// once. The replica that started it notices and connects.
func TestUpstreamOAuthCallbackAtAnotherReplica(t *testing.T) {
	clk := &clock{}
	up := newOAuthUpstream(t, clk)
	p := filepath.Join(t.TempDir(), "shared.db")
	opts := func(st store.Store, id string) *hub.Options {
		return &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback",
			AllowedDomains: []string{"localhost"}, ReplicaID: id}
	}
	h1, _ := newHub(t, opts(openStore(t, p), "one"), oauthServer(up))
	h2, _ := newHub(t, opts(openStore(t, p), "two"), oauthServer(up))
	c1, c2 := conn(t, h1, "gh"), conn(t, h2, "gh")
	waitFor(t, 10*time.Second, "OAuth to be detected", func() bool { return c1.UserScoped() && c2.UserScoped() })
	ctx := t.Context()

	authURL := needsAuth(t, c1, "dave")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(authURL + "&login_hint=dave")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if _, err := h2.HandleOAuthCallback(ctx, "erin", callback); !errors.Is(err, hub.ErrForeignAuthorization) {
		t.Errorf("another user completing dave's authorization at replica two: %v, want ErrForeignAuthorization", err)
	}
	if server, err := h2.HandleOAuthCallback(ctx, "", callback); err != nil || server != "gh" {
		t.Fatalf("callback at replica two: %q, %v", server, err)
	}
	for _, h := range []*hub.Hub{h1, h2} {
		if _, err := h.HandleOAuthCallback(ctx, "", callback); !errors.Is(err, hub.ErrUnknownState) {
			t.Errorf("the same callback again: %v, want ErrUnknownState", err)
		}
	}
	// The replay did not disturb the authorization it repeated.
	if st, _ := h2.StatusFor(ctx, "dave", "gh"); st.Authorization != hub.AuthAuthorized {
		t.Errorf("replica two after the replay: %s, want %s", st.Authorization, hub.AuthAuthorized)
	}
	// Replica one, where dave started, reports him authorized and connects.
	waitFor(t, 10*time.Second, "replica one to see the authorization", func() bool {
		st, _ := h1.StatusFor(ctx, "dave", "gh")
		return st.Authorization == hub.AuthAuthorized && st.State == hub.StateConnected
	})
	dave := withUser(ctx, "dave")
	for _, c := range []*hub.Conn{c1, c2} {
		if who, err := call(dave, c, "whoami", nil); err != nil || who != "dave" {
			t.Fatalf("dave's call: %q, %v", who, err)
		}
	}
}

// oauth.authorization_url and token_url in the config replace discovery:
// the upstream's metadata names an authorization server that does not
// answer, and the flow still works through the configured endpoints.
func TestUpstreamOAuthConfiguredEndpoints(t *testing.T) {
	clk := &clock{}
	up := newOAuthUpstream(t, clk)
	up.asURL = "http://127.0.0.9:1" // nothing listens there
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	srv := oauthServer(up)
	srv.OAuth = &config.OAuth{
		AuthorizationURL: up.issuer + "/authorize", TokenURL: up.issuer + "/token", RevocationEndpoint: up.issuer + "/revoke",
		ClientID: "configured-client", TokenExchangeMethod: "default_post",
	}
	h, _ := newHub(t, &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback"}, srv)
	c := conn(t, h, "gh")
	authURL := needsAuth(t, c, "frank")
	if !strings.HasPrefix(authURL, up.issuer+"/authorize?") || !strings.Contains(authURL, "client_id=configured-client") {
		t.Fatalf("authorization URL %s: want the configured endpoint and client", authURL)
	}
	authorizeAs(t, h, "frank", authURL)
	frank := withUser(t.Context(), "frank")
	if who, err := call(frank, c, "whoami", nil); err != nil || who != "frank" {
		t.Fatalf("frank's call: %q, %v", who, err)
	}
	clk.advance(2 * time.Hour)
	if who, err := call(frank, c, "whoami", nil); err != nil || who != "frank" {
		t.Fatalf("frank's call after expiry: %q, %v", who, err)
	}
	if n := up.refreshCount(); n != 1 {
		t.Errorf("%d refreshes at the configured token endpoint, want 1", n)
	}
	if err := h.DeleteCredentials(t.Context(), "frank", "gh"); err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.revoked) == 0 {
		t.Error("nothing was revoked at the configured revocation endpoint")
	}
}
