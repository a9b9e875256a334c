package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/web"
)

// protectedUpstream is an MCP server behind an OAuth authorization server
// of its own (RFC 9728 metadata, RFC 8414 metadata, dynamic registration,
// authorization code and refresh grants). The authorization endpoint
// approves at once as the user named by login_hint. The resource is at
// 127.0.0.1, the authorization server is named "localhost".
type protectedUpstream struct {
	*httptest.Server
	issuer string

	mu      sync.Mutex        // guards the fields below
	codes   map[string]string // code -> user
	access  map[string]string // access token -> user
	refresh map[string]string // refresh token -> user
	n       int
}

func newProtectedUpstream(t *testing.T) *protectedUpstream {
	t.Helper()
	u := &protectedUpstream{codes: map[string]string{}, access: map[string]string{}, refresh: map[string]string{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "protected", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "you are " + req.Extra.Header.Get("X-Upstream-User")}}}, nil, nil
	})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
	})
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"resource": u.URL + "/mcp", "authorization_servers": []string{u.issuer}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": u.issuer, "authorization_endpoint": u.issuer + "/authorize", "token_endpoint": u.issuer + "/token",
			"registration_endpoint":            u.issuer + "/register",
			"code_challenge_methods_supported": []string{"S256"}, "response_types_supported": []string{"code"},
		})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			RedirectURIs []string `json:"redirect_uris"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]any{"client_id": "registered-client", "token_endpoint_auth_method": "none", "redirect_uris": req.RedirectURIs})
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
			delete(u.refresh, r.Form.Get("refresh_token"))
		}
		u.mu.Unlock()
		if user == "" {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]any{"error": "invalid_grant"})
			return
		}
		at, rt := u.next("at"), u.next("rt")
		u.mu.Lock()
		u.access[at] = user
		u.refresh[rt] = user
		u.mu.Unlock()
		writeJSON(w, map[string]any{"access_token": at, "token_type": "Bearer", "refresh_token": rt, "expires_in": 3600})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		user, ok := u.access[tok]
		u.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+u.URL+`/.well-known/oauth-protected-resource/mcp"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Set("X-Upstream-User", user)
		mcpHandler.ServeHTTP(w, r)
	})
	u.Server = httptest.NewServer(mux)
	_, port, _ := net.SplitHostPort(u.Listener.Addr().String())
	u.issuer = "http://localhost:" + port
	t.Cleanup(u.Close)
	return u
}

func (u *protectedUpstream) next(prefix string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return fmt.Sprintf("%s-%d", prefix, u.n)
}

// forget drops every grant, as when the user revokes Switchboard's access
// at the provider: access and refresh tokens stop working.
func (u *protectedUpstream) forget() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.access)
	clear(u.refresh)
}

// signIn plays user's browser at an authorization URL: the authorization
// server approves and redirects to Switchboard's callback page, which
// must report success.
func signIn(ctx context.Context, user, authURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL+"&login_hint="+url.QueryEscape(user), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/oauth/callback") {
		return fmt.Errorf("sign-in ended at %s with %s", resp.Request.URL.Redacted(), resp.Status)
	}
	return nil
}

// A user whose grant at the upstream's authorization server is gone calls
// one of its tools through the gateway: the gateway asks their client,
// which declared URL-mode elicitation, to open the authorization URL; once
// the user has signed in (Switchboard's callback completed), the same
// tools/call returns the tool's result.
//
// The user signed in once before: a per-user server's tools are listed
// only once the user's connection has a catalog. The client speaks
// 2025-11-25, whose sessions let the gateway send elicitation/create while
// the call is in flight. A 2026-07-28 client is not asked yet: its requests
// are stateless, so the hub would have to return the elicitation as an
// input request instead.
func TestGatewayElicitsAuthorization(t *testing.T) {
	// A 2025-11-25 client is sent elicitation/create during the call; a
	// 2026-07-28 client, whose sessions are stateless, gets the request in
	// an input-required result and answers it when it retries.
	for _, pv := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(pv, func(t *testing.T) { gatewayElicitsAuthorization(t, pv) })
	}
}

func gatewayElicitsAuthorization(t *testing.T, protocol string) {
	const user = "alice"
	up := newProtectedUpstream(t)

	// Short idle timeout, so that the user's connection is closed for
	// idleness (keeping its tools listed) within the test.
	h, srv := newOAuthGateway(t, &config.Server{Name: "gh", Type: config.StreamableHTTP, URL: up.URL + "/mcp", Startup: true}, 200*time.Millisecond)

	gh, err := h.Conn("gh")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "OAuth to be detected", gh.UserScoped)
	alice, err := gh.ForUser(user)
	if err != nil {
		t.Fatal(err)
	}

	// Earlier, alice signed in from the server's status page; her tools are
	// listed since.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = alice.Session(ctx)
	var ae *hub.AuthorizationError
	if !errors.As(err, &ae) {
		t.Fatalf("alice's first connect: %v, want an AuthorizationError", err)
	}
	if err := signIn(ctx, user, ae.URL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "alice's connection to connect", alice.Connected)

	var (
		mu    sync.Mutex // guards asked
		asked []*mcp.ElicitParams
	)
	client := mcp.NewClient(&mcp.Implementation{Name: "elicit-test", Version: "1"}, &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			asked = append(asked, req.Params)
			mu.Unlock()
			if req.Params.Mode != "url" || !strings.HasPrefix(req.Params.URL, up.issuer+"/authorize?") {
				return &mcp.ElicitResult{Action: "decline"}, nil
			}
			// The user signs in in their browser; the client reports that
			// they agreed to open the page.
			if err := signIn(ctx, user, req.Params.URL); err != nil {
				t.Errorf("signing in: %v", err)
				return &mcp.ElicitResult{Action: "cancel"}, nil
			}
			return &mcp.ElicitResult{Action: "accept"}, nil
		},
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: &asUser{user, tr}}}, &mcp.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })

	var tool string
	waitUntil(t, "gh's whoami to be listed", func() bool {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range res.Tools {
			if strings.Contains(tl.Name, "whoami") {
				tool = tl.Name
				return true
			}
		}
		return false
	})

	// The connection closes for idleness, and alice revokes Switchboard's
	// access at the provider: the next use needs her to sign in again.
	waitUntil(t, "alice's connection to be closed for idleness", alice.Idle)
	up.forget()

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	if got := resultText(res); res.IsError || got != "you are alice" {
		t.Fatalf("tools/call %s: isError %v, %q; want the tool's result", tool, res.IsError, got)
	}
	mu.Lock()
	n := len(asked)
	mu.Unlock()
	if n != 1 {
		t.Errorf("the client was asked %d times, want once", n)
	}
	if s, err := h.StatusFor(t.Context(), user, "gh"); err != nil || s.Authorization != hub.AuthAuthorized {
		t.Errorf("alice's status: %s, %v; want %s", s.Authorization, err, hub.AuthAuthorized)
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newOAuthGateway wires a hub with a real SQLite store and the shared
// upstream-OAuth callback (served as cmd/switchboard serves it), and a
// gateway naming users by the userHeader header, over one server; it returns
// the hub and the gateway's HTTP server.
func newOAuthGateway(t *testing.T, server *config.Server, idle time.Duration) (*hub.Hub, *httptest.Server) {
	t.Helper()
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The callback's handler needs the hub, which needs the callback's URL.
	cb := httptest.NewUnstartedServer(nil)
	t.Cleanup(cb.Close)
	var gw *gateway.Gateway
	h := hub.New(&config.Config{Servers: []*config.Server{server}}, &hub.Options{
		Store: st, OAuthRedirectURL: "http://" + cb.Listener.Addr().String() + "/oauth/callback",
		AllowedDomains: []string{"localhost"}, IdleTimeout: idle,
	})
	gw = gateway.New(h, &gateway.Options{Verify: testVerify})
	t.Cleanup(func() {
		h.Close()
		gw.Close()
	})
	mux := http.NewServeMux()
	mux.Handle("GET /oauth/callback", web.NewAPI(h, nil).OAuthCallback())
	cb.Config.Handler = mux
	cb.Start()
	h.Start()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return h, srv
}
