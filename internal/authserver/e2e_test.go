package authserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/ssrf"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/tools"
)

// gatewayEnv is Switchboard as cmd/switchboard wires it: the authorization
// server's routes plus Protect(gateway) over a hub with the built-in tools,
// signing in through a fake NAVER.
type gatewayEnv struct {
	srv   *Server
	st    store.Store
	ts    *httptest.Server
	iss   string
	naver *idptest.Naver
	cimd  *httptest.Server // serves Client ID Metadata Documents over TLS
}

func newGatewayEnv(t *testing.T) *gatewayEnv {
	t.Helper()
	ctx := context.Background()
	g := &gatewayEnv{naver: idptest.NewNaver(t, nil)}
	prov, err := idp.New(ctx, g.naver.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g.ts = httptest.NewServer(nil)
	t.Cleanup(g.ts.Close)
	g.iss = g.ts.URL

	g.cimd = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  "https://" + r.Host + r.URL.Path,
			"client_name":                "CIMD Test Client",
			"redirect_uris":              []string{"http://127.0.0.1:7777/callback"},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"token_endpoint_auth_method": "none",
		})
	}))
	t.Cleanup(g.cimd.Close)
	roots := x509.NewCertPool()
	roots.AddCert(g.cimd.Certificate())
	// The test-only allowance: exactly the CIMD server's address and port.
	hc := ssrf.NewClient(&ssrf.Policy{
		AllowedAddresses: []string{g.cimd.Listener.Addr().String()},
		TLSClientConfig:  &tls.Config{RootCAs: roots},
	})

	g.st = openStore(t, t.TempDir())
	g.srv, err = New(ctx, &Options{
		Issuer: g.iss, Store: g.st, Providers: []idp.Provider{prov}, HTTPClient: hc,
		Resources: func() []string { return []string{g.iss + "/mcp", g.iss + "/mcp/" + hub.BuiltinName} },
	})
	if err != nil {
		t.Fatal(err)
	}

	h := hub.New(nil, &hub.Options{Builtin: tools.NewServer(&tools.Options{})})
	gw := gateway.New(h, &gateway.Options{PublicURL: g.iss})
	t.Cleanup(func() { h.Close(); gw.Close() })
	h.Start()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h.WaitConnected(wctx)
	gw.Sync()

	mux := http.NewServeMux()
	mux.Handle("/", g.srv.Handler())
	protected := g.srv.Protect(gw.Handler())
	for _, p := range []string{"/mcp", "/mcp/{server}", "/sse", "/sse/{server}"} {
		mux.Handle(p, protected)
	}
	g.ts.Config.Handler = mux
	return g
}

var formActionRE = regexp.MustCompile(`<form method="post" action="(/login/naver)">`)

// headlessBrowser plays the user: it opens the authorization URL, presses
// "Allow and continue with NAVER" (the consent, before the upstream
// login), follows the fake NAVER's auto-approval back to Switchboard and
// stops at the client's redirect URI.
func headlessBrowser(t *testing.T, redirectURL string) auth.AuthorizationCodeFetcher {
	b := newBrowser()
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		next, method := args.URL, "GET"
		var form url.Values
		for range 10 {
			var resp *http.Response
			var err error
			if method == "POST" {
				resp, err = b.c.PostForm(next, form)
			} else {
				resp, err = b.c.Get(next)
			}
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusFound, http.StatusSeeOther:
				loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
				if err != nil {
					return nil, err
				}
				if strings.HasPrefix(loc.String(), redirectURL) {
					q := loc.Query()
					if q.Get("error") != "" {
						return nil, fmt.Errorf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
					}
					return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
				}
				next, method = loc.String(), "GET"
			case http.StatusOK:
				m := formActionRE.FindStringSubmatch(string(body))
				if m == nil {
					return nil, fmt.Errorf("page without the NAVER button: %s", body)
				}
				rid, csrf := formFields(t, string(body))
				base, _ := url.Parse(next)
				action, _ := base.Parse(m[1])
				next, method, form = action.String(), "POST", url.Values{"rid": {rid}, "csrf": {csrf}}
			default:
				return nil, fmt.Errorf("%s: HTTP %d: %s", next, resp.StatusCode, body)
			}
		}
		return nil, errors.New("too many steps")
	}
}

func jwtClaim(t *testing.T, tok, name string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	s, _ := m[name].(string)
	return s
}

func TestEndToEndSDKClient(t *testing.T) {
	for _, mode := range []string{"DCR", "CIMD"} {
		t.Run(mode, func(t *testing.T) {
			g := newGatewayEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			cfg := &auth.AuthorizationCodeHandlerConfig{}
			if mode == "DCR" {
				cfg.RedirectURL = "http://127.0.0.1:5555/callback"
				cfg.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
					RedirectURIs: []string{cfg.RedirectURL}, TokenEndpointAuthMethod: "none",
					GrantTypes: []string{"authorization_code", "refresh_token"}, ClientName: "SDK e2e",
				}}
			} else {
				cfg.RedirectURL = "http://127.0.0.1:7777/callback"
				cfg.ClientIDMetadataDocumentConfig = &auth.ClientIDMetadataDocumentConfig{URL: g.cimd.URL + "/client.json"}
			}
			cfg.AuthorizationCodeFetcher = headlessBrowser(t, cfg.RedirectURL)
			oh, err := auth.NewAuthorizationCodeHandler(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cl := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
			cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.iss + "/mcp", OAuthHandler: oh}, nil)
			if err != nil {
				t.Fatalf("connect (discovery from the 401, registration, sign-in, token): %v", err)
			}
			defer cs.Close()

			tl, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var name string
			for _, tool := range tl.Tools {
				if strings.HasSuffix(tool.Name, "get_current_time") {
					name = tool.Name
				}
			}
			if name == "" {
				t.Fatalf("no get_current_time among %d tools", len(tl.Tools))
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("call %s: %v %+v", name, err, res)
			}

			// The user came from NAVER; the provider token is stored for tools.
			ts, _ := oh.TokenSource(ctx)
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			sub := jwtClaim(t, tok.AccessToken, "sub")
			if pt, err := g.srv.ProviderToken(ctx, sub, "naver"); err != nil || pt.AccessToken == "" {
				t.Fatalf("provider token: %v", err)
			}
			clientID := jwtClaim(t, tok.AccessToken, "client_id")
			if mode == "CIMD" && clientID != g.cimd.URL+"/client.json" {
				t.Fatalf("client_id %q", clientID)
			}

			// Refresh (rotation), then the new token works through /mcp.
			resp, err := http.PostForm(g.iss+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {clientID}})
			if err != nil {
				t.Fatal(err)
			}
			var refreshed map[string]any
			json.NewDecoder(resp.Body).Decode(&refreshed)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("refresh: %d %v", resp.StatusCode, refreshed)
			}
			at := refreshed["access_token"].(string)
			if s := mcpInitialize(t, g.iss+"/mcp", at); s != 200 {
				t.Fatalf("initialize with refreshed token: %d", s)
			}
			// Revoke: refused afterwards.
			resp, _ = http.PostForm(g.iss+"/revoke", url.Values{"token": {refreshed["refresh_token"].(string)}, "client_id": {clientID}})
			resp.Body.Close()
			if s := mcpInitialize(t, g.iss+"/mcp", at); s != 401 {
				t.Fatalf("initialize after revocation: %d, want 401", s)
			}
		})
	}
}

func mcpInitialize(t *testing.T, endpoint, tok string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startUpstream registers a client, opens the authorization URL and presses
// the NAVER button; it returns the browser and the fake's authorize
// redirect back to Switchboard's callback.
func (g *gatewayEnv) startUpstream(t *testing.T) (*browser, *url.URL) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"})
	resp, err := http.Post(g.iss+"/register", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	e := &testEnv{t: t, iss: g.iss}
	br := newBrowser()
	_, page := br.get(t, e.authorizeURL(client{id: reg["client_id"].(string), redirect: testRedirect}, newPKCE(), nil))
	rid, csrf := formFields(t, page)
	r, _ := br.post(t, g.iss+"/login/naver", url.Values{"rid": {rid}, "csrf": {csrf}})
	if r.StatusCode != 302 || !strings.HasPrefix(r.Header.Get("Location"), g.naver.URL()) {
		t.Fatalf("provider button: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r, _ = br.get(t, r.Header.Get("Location"))
	cb, _ := url.Parse(r.Header.Get("Location"))
	if !strings.HasPrefix(cb.String(), g.iss+"/login/naver/callback") {
		t.Fatalf("fake NAVER redirected to %s", cb)
	}
	return br, cb
}

func TestUpstreamCallbackNegative(t *testing.T) {
	g := newGatewayEnv(t)
	noCode := func(t *testing.T, r *http.Response) {
		t.Helper()
		if strings.Contains(r.Header.Get("Location"), "code=") {
			t.Fatalf("a code was issued: %s", r.Header.Get("Location"))
		}
	}

	t.Run("bad state", func(t *testing.T) {
		br, cb := g.startUpstream(t)
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		r, _ := br.get(t, cb.String())
		if r.StatusCode != 400 {
			t.Fatalf("%d", r.StatusCode)
		}
		noCode(t, r)
	})
	t.Run("state replay", func(t *testing.T) {
		br, cb := g.startUpstream(t)
		if r, _ := br.get(t, cb.String()); r.StatusCode != 302 || !strings.Contains(r.Header.Get("Location"), "code=") {
			t.Fatalf("first callback: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		r, _ := br.get(t, cb.String())
		if r.StatusCode != 400 {
			t.Fatalf("replayed callback: %d", r.StatusCode)
		}
		noCode(t, r)
	})
	t.Run("another browser", func(t *testing.T) {
		_, cb := g.startUpstream(t)
		r, _ := newBrowser().get(t, cb.String())
		if r.StatusCode != 403 {
			t.Fatalf("%d", r.StatusCode)
		}
		noCode(t, r)
	})
	for _, tt := range []struct {
		name   string
		faults idptest.Faults
	}{
		{"bad nonce", idptest.Faults{Nonce: "someone-elses-nonce"}},
		{"bad iss parameter", idptest.Faults{IssParam: "https://evil.example"}},
		{"bad id_token issuer", idptest.Faults{IDTokenIssuer: "https://evil.example"}},
		{"id_token signed by an unknown key", idptest.Faults{UnknownSigningKey: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g.naver.SetFaults(tt.faults)
			defer g.naver.SetFaults(idptest.Faults{})
			br, cb := g.startUpstream(t)
			r, _ := br.get(t, cb.String())
			loc, _ := url.Parse(r.Header.Get("Location"))
			if r.StatusCode != 302 || loc.Query().Get("error") != "access_denied" || loc.Query().Get("iss") != g.iss {
				t.Fatalf("%d %s", r.StatusCode, loc)
			}
			noCode(t, r)
		})
	}
}

func TestCIMDPrivateAddressRefused(t *testing.T) {
	// A CIMD server on loopback, and a Switchboard with the default
	// (production) fetcher.
	cimd := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the CIMD document was fetched from a loopback address")
	}))
	defer cimd.Close()
	e := newEnv(t, nil)
	_, port, _ := strings.Cut(strings.TrimPrefix(cimd.URL, "https://"), ":")
	for _, id := range []string{cimd.URL + "/client.json", "https://localhost:" + port + "/client.json"} {
		resp, body := newBrowser().get(t, e.authorizeURL(client{id: id, redirect: "http://127.0.0.1:7777/callback"}, newPKCE(), nil))
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "could not be fetched") {
			t.Fatalf("%s: %d %q %s", id, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if _, err := e.st.ClientByID(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("client %s was stored: %v", id, err)
		}
	}
}

func TestProviderTokenRefreshSingleFlight(t *testing.T) {
	naver := idptest.NewNaver(t, &idptest.NaverOptions{RotateRefreshTokens: true})
	prov, err := idp.New(context.Background(), naver.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Providers = []idp.Provider{prov} })
	alice := e.user("alice")
	access, refresh := naver.IssueTokens(idptest.DefaultNaverUser().ID, "openid")
	ctx := context.Background()
	if err := e.st.SaveProviderToken(ctx, &store.ProviderToken{UserID: alice.ID, Provider: "naver", AccessToken: access,
		RefreshToken: refresh, TokenType: "bearer", Expiry: e.clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Two "replicas" on one store refresh concurrently.
	srv2, err := New(ctx, &Options{Issuer: e.iss, Store: e.st, Providers: []idp.Provider{prov}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		s := e.srv
		if i%2 == 1 {
			s = srv2
		}
		wg.Go(func() {
			tok, err := s.ProviderToken(ctx, alice.ID, "naver")
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = tok.AccessToken
		})
	}
	wg.Wait()
	if n := naver.Refreshes(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	for _, a := range got {
		if a == access || a != got[0] {
			t.Fatalf("callers got %v", got)
		}
	}
	if _, err := e.srv.ProviderToken(ctx, alice.ID, "google"); err == nil {
		t.Fatal("unknown provider")
	}
	if _, err := e.srv.ProviderToken(ctx, "nobody", "naver"); !errors.Is(err, ErrProviderLoginRequired) {
		t.Fatalf("no token: %v", err)
	}
}
