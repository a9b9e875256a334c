package oauthclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

const redirect = "http://127.0.0.1:9999/callback"

func TestAuthorizationCodeFlow(t *testing.T) {
	f := newFakeServer(t)
	f.prmScopes = []string{"read", "write"}
	c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect, Authorize: browser})
	if err != nil {
		t.Fatal(err)
	}
	body, err := get(t, c, f.url())
	if err != nil {
		t.Fatal(err)
	}
	if body != "ok token-1" {
		t.Errorf("body = %q, want the answer to token-1", body)
	}

	if len(f.registers) != 1 {
		t.Fatalf("%d registrations, want 1", len(f.registers))
	}
	reg := f.registers[0]
	if diff := cmp.Diff(map[string]any{
		"client_name":                "Switchboard",
		"redirect_uris":              []any{redirect},
		"grant_types":                []any{"authorization_code", "refresh_token"},
		"response_types":             []any{"code"},
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
	}, reg); diff != "" {
		t.Errorf("registration (-want +got):\n%s", diff)
	}

	a := f.authorize[0]
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "dyn-client",
		"redirect_uri":          redirect,
		"code_challenge_method": "S256",
		"resource":              f.url(),
		"scope":                 "read write",
	} {
		if got := a.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	if len(a.Get("state")) < 32 || len(a.Get("code_challenge")) != 43 {
		t.Errorf("state %q / code_challenge %q too short", a.Get("state"), a.Get("code_challenge"))
	}
	tr := f.tokens[0]
	if tr.Get("resource") != f.url() || tr.Get("code_verifier") == "" || tr.Get("client_id") != "dyn-client" {
		t.Errorf("token request = %v", tr)
	}

	// A second request reuses the token: no new authorization.
	if _, err := get(t, c, f.url()); err != nil {
		t.Fatal(err)
	}
	if len(f.authorize) != 1 || len(f.tokens) != 1 {
		t.Errorf("%d authorizations, %d token requests after a second call; want 1, 1", len(f.authorize), len(f.tokens))
	}
}

func TestRegistrationReusedPerIssuer(t *testing.T) {
	f := newFakeServer(t)
	regs := NewMemoryRegistrations()
	for range 2 {
		c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect, Authorize: browser, Registrations: regs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, c, f.url()); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.registers) != 1 {
		t.Errorf("%d registrations for one issuer, want 1", len(f.registers))
	}
	if r, _ := regs.Registration(t.Context(), f.srv.URL); r == nil || r.ClientID != "dyn-client" {
		t.Errorf("stored registration = %+v", r)
	}
}

func TestRefreshRetriesWithoutScope(t *testing.T) {
	f := newFakeServer(t)
	f.prmScopes = []string{"read"}
	f.expiresIn = 60
	f.rejectRefreshSc = true
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect, Authorize: browser, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, f.url()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	body, err := get(t, c, f.url())
	if err != nil {
		t.Fatal(err)
	}
	if body != "ok token-2" {
		t.Errorf("body = %q, want the refreshed token-2", body)
	}
	var got []string
	for _, v := range f.tokens {
		got = append(got, fmt.Sprintf("%s scope=%q refresh=%q", v.Get("grant_type"), v.Get("scope"), v.Get("refresh_token")))
	}
	want := []string{
		`authorization_code scope="" refresh=""`,
		`refresh_token scope="read" refresh="refresh-1"`,
		`refresh_token scope="" refresh="refresh-1"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}
	if len(f.authorize) != 1 {
		t.Errorf("%d authorizations, want 1 (refresh needs no user)", len(f.authorize))
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fakeServer)
		opts    Options
		wantErr error
	}{
		{"no S256", func(f *fakeServer) { f.noS256 = true }, Options{}, ErrNoPKCE},
		{"resource mismatch", func(f *fakeServer) { f.prmResource = "https://evil.example.com/mcp" }, Options{}, ErrResourceMismatch},
		{"no registration method", func(f *fakeServer) { f.noRegistration = true }, Options{}, ErrNoRegistration},
		{"non-http authorization server", func(f *fakeServer) { f.asServers = []string{"file:///etc/passwd"} }, Options{}, ErrUnsafeURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			tt.setup(f)
			o := tt.opts
			o.SSRF, o.RedirectURL, o.Authorize = loopback, redirect, browser
			c, err := New(f.url(), &o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = get(t, c, f.url())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(f.authorize) != 0 {
				t.Errorf("the client went on to authorize")
			}
		})
	}
}

func TestSkipCodeChallengeCheck(t *testing.T) {
	f := newFakeServer(t)
	f.noS256 = true
	c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect, Authorize: browser, SkipCodeChallengeCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, f.url()); err != nil {
		t.Fatal(err)
	}
	if f.authorize[0].Get("code_challenge_method") != "S256" {
		t.Errorf("PKCE S256 not sent although the check was skipped")
	}
}

func TestAuthorizationRequiredThenCallback(t *testing.T) {
	f := newFakeServer(t)
	c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, c, f.url())
	var are *AuthorizationRequiredError
	if !errors.As(err, &are) {
		t.Fatalf("err = %v, want *AuthorizationRequiredError", err)
	}
	state := mustQuery(t, are.URL).Get("state")
	if !c.OwnsState(state) {
		t.Errorf("OwnsState(%q) = false", state)
	}
	if err := c.HandleCallback(t.Context(), redirect+"?state=forged&code=x"); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("forged state: err = %v, want ErrStateMismatch", err)
	}
	cb, err := browser(t.Context(), are.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HandleCallback(t.Context(), cb); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, f.url()); err != nil {
		t.Fatalf("after the callback: %v", err)
	}
}

func TestIssuerInCallback(t *testing.T) {
	tests := []struct {
		name, iss string
		omit      bool
		ok        bool
	}{
		{name: "exact", iss: "ISSUER", ok: true},
		{name: "trailing slash", iss: "ISSUER/"},
		{name: "other", iss: "https://evil.example.com"},
		{name: "missing although advertised", omit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, err := New(f.url(), &Options{SSRF: loopback, RedirectURL: redirect})
			if err != nil {
				t.Fatal(err)
			}
			_, err = get(t, c, f.url())
			var are *AuthorizationRequiredError
			if !errors.As(err, &are) {
				t.Fatal(err)
			}
			cb, err := browser(t.Context(), are.URL)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(cb)
			q := u.Query()
			if tt.omit {
				q.Del("iss")
			} else {
				q.Set("iss", strings.Replace(tt.iss, "ISSUER", f.srv.URL, 1))
			}
			u.RawQuery = q.Encode()
			err = c.HandleCallback(t.Context(), u.String())
			if tt.ok != (err == nil) {
				t.Fatalf("HandleCallback err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, ErrIssuerMismatch) {
				t.Errorf("err = %v, want ErrIssuerMismatch", err)
			}
			if !tt.ok && len(f.tokens) != 0 {
				t.Errorf("the code was sent to the token endpoint after an iss mismatch")
			}
		})
	}
}

// TestDiscoveryOrder checks the well-known URLs tried, in order, for
// resource metadata (RFC 9728 §3.1) and authorization server metadata
// (MCP: RFC 8414 path-inserted, OIDC path-inserted, OIDC path-appended).
func TestDiscoveryOrder(t *testing.T) {
	tests := []struct {
		name      string
		issuerSfx string // appended to the server URL to form the issuer
		serveAt   string // where the metadata lives
		want      []string
	}{
		{"path issuer, RFC 8414", "/tenant1", "/.well-known/oauth-authorization-server/tenant1",
			[]string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server/tenant1"}},
		{"path issuer, OIDC inserted", "/tenant1", "/.well-known/openid-configuration/tenant1",
			[]string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1"}},
		{"path issuer, OIDC appended", "/tenant1", "/tenant1/.well-known/openid-configuration",
			[]string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server/tenant1", "/.well-known/openid-configuration/tenant1", "/tenant1/.well-known/openid-configuration"}},
		{"root issuer, OIDC", "", "/.well-known/openid-configuration",
			[]string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				switch r.URL.Path {
				case "/.well-known/oauth-protected-resource/mcp":
					writeJSON(w, map[string]any{"resource": srv.URL + "/mcp", "authorization_servers": []string{srv.URL + tt.issuerSfx}})
				case tt.serveAt:
					writeJSON(w, map[string]any{"issuer": srv.URL + tt.issuerSfx, "authorization_endpoint": srv.URL + "/a", "token_endpoint": srv.URL + "/t"})
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			c, err := New(srv.URL+"/mcp", &Options{SSRF: loopback, RedirectURL: redirect})
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.discover(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.as.TokenEndpoint != srv.URL+"/t" || d.resource != srv.URL+"/mcp" {
				t.Errorf("discovered %+v", d.as)
			}
			if diff := cmp.Diff(tt.want, paths); diff != "" {
				t.Errorf("requested paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResourceMetadataRootFallback(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource":
			writeJSON(w, map[string]any{"resource": srv.URL, "authorization_servers": []string{srv.URL}})
		case "/.well-known/oauth-authorization-server":
			writeJSON(w, map[string]any{"issuer": srv.URL, "token_endpoint": srv.URL + "/t"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/mcp", &Options{SSRF: loopback, RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.discover(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8707: the resource exactly as published, not the server URL.
	if d.resource != srv.URL {
		t.Errorf("resource = %q, want %q", d.resource, srv.URL)
	}
}

func TestMetadataIssuerMismatch(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			writeJSON(w, map[string]any{"resource": srv.URL + "/mcp", "authorization_servers": []string{srv.URL}})
		case "/.well-known/oauth-authorization-server":
			writeJSON(w, map[string]any{"issuer": "https://attacker.example.com", "token_endpoint": "https://attacker.example.com/t"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/mcp", &Options{SSRF: loopback, RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.discover(t.Context(), nil); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
}

// TestSSRF: an authorization server named by a server's metadata is
// fetched through the SSRF guard, whatever spelling the address takes.
func TestSSRF(t *testing.T) {
	// The target counts hits: a refused address must see none.
	var hits int
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		writeJSON(w, map[string]any{"issuer": "http://" + r.Host, "token_endpoint": "http://" + r.Host + "/t"})
	}))
	defer target.Close()
	port := target.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]

	tests := []struct {
		name    string
		as      string
		allow   bool // allow-list loopback for discovered URLs
		refused bool
	}{
		{"loopback", "http://127.0.0.1:" + port, false, true},
		{"cloud metadata", "http://169.254.169.254", false, true},
		{"hex loopback", "http://0x7f000001:" + port, false, true},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port, false, true},
		{"loopback allowed", "http://127.0.0.1:" + port, true, false},
		{"IPv4-mapped loopback allowed", "http://[::ffff:127.0.0.1]:" + port, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs *httptest.Server
			rs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/.well-known/oauth-protected-resource/mcp" {
					writeJSON(w, map[string]any{"resource": rs.URL + "/mcp", "authorization_servers": []string{tt.as}})
					return
				}
				http.NotFound(w, r)
			}))
			defer rs.Close()
			// Only the resource server itself is reachable, by exact ip:port.
			pol := &ssrf.Policy{AllowedAddresses: []string{rs.Listener.Addr().String()}, Timeout: 2 * time.Second}
			if tt.allow {
				pol.AllowedAddresses = append(pol.AllowedAddresses, "127.0.0.0/8")
			}
			c, err := New(rs.URL+"/mcp", &Options{SSRF: pol, RedirectURL: redirect})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			before := hits
			mu.Unlock()
			_, err = c.discover(t.Context(), nil)
			mu.Lock()
			reached := hits > before
			mu.Unlock()
			if tt.refused {
				if err == nil || reached {
					t.Fatalf("discovery of %s: err = %v, target reached = %v; want refused", tt.as, err, reached)
				}
				var re *ssrf.RefusedError
				if !strings.Contains(tt.as, "0x") && !errors.As(err, &re) {
					t.Errorf("err = %v, want an *ssrf.RefusedError", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil || !reached {
				t.Fatalf("discovery of %s: err = %v, target reached = %v; want allowed", tt.as, err, reached)
			}
		})
	}
}

func TestDPoPProofShape(t *testing.T) {
	k, err := newDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	p1, err := k.proof("POST", "https://mcp.example.com/mcp?x=1#frag", "n-1", "the-token", now)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := k.proof("POST", "https://mcp.example.com/mcp", "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(p1, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.Algorithm != "ES256" {
		t.Errorf("header typ %v alg %v, want dpop+jwt ES256", h.ExtraHeaders["typ"], h.Algorithm)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatalf("jwk header %v: want a public key", h.JSONWebKey)
	}
	var claims map[string]any
	if err := tok.Claims(h.JSONWebKey.Key, &claims); err != nil {
		t.Fatalf("proof does not verify with its own jwk: %v", err)
	}
	ath := sha256.Sum256([]byte("the-token"))
	want := map[string]any{
		"htm":   "POST",
		"htu":   "https://mcp.example.com/mcp",
		"iat":   float64(now.Unix()),
		"nonce": "n-1",
		"ath":   base64.RawURLEncoding.EncodeToString(ath[:]),
	}
	jti := claims["jti"]
	delete(claims, "jti")
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	tok2, _ := jwt.ParseSigned(p2, []jose.SignatureAlgorithm{jose.ES256})
	var c2 map[string]any
	tok2.UnsafeClaimsWithoutVerification(&c2)
	if jti == nil || jti == c2["jti"] {
		t.Errorf("jti %v reused in the next proof", jti)
	}
	if _, ok := c2["ath"]; ok {
		t.Errorf("ath in a proof without a token")
	}
}

func TestBearerOn403WithoutStepUp(t *testing.T) {
	// A 403 that is not insufficient_scope passes through untouched.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/mcp", &Options{SSRF: loopback, RedirectURL: redirect, Authorize: func(context.Context, string) (string, error) {
		t.Error("Authorize called for a plain 403")
		return "", errors.New("no")
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, srv.URL+"/mcp"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("err = %v, want the 403", err)
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
