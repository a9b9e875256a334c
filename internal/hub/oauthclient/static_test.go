package oauthclient

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// staticAS is a resource server whose authorization server publishes no
// metadata at all: its endpoints live at paths discovery would not guess,
// and only configuration can name them.
type staticAS struct {
	srv *httptest.Server

	mu      sync.Mutex // guards the fields below
	paths   []string
	tokens  []url.Values
	revoked []string
	code    string
	chal    string
	access  string
}

func newStaticAS(t *testing.T) *staticAS {
	a := &staticAS{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.paths = append(a.paths, r.URL.Path)
		switch r.URL.Path {
		case "/mcp":
			if a.access == "" || r.Header.Get("Authorization") != "Bearer "+a.access {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte("ok"))
		case "/login/oauth/authorize":
			q := r.URL.Query()
			a.code, a.chal = "static-code", q.Get("code_challenge")
			http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {a.code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
		case "/login/oauth/access_token":
			r.ParseForm()
			a.tokens = append(a.tokens, r.PostForm)
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if id, secret, _ := r.BasicAuth(); id != "static-client" || secret != "static-secret" ||
				r.PostForm.Get("code") != a.code || base64.RawURLEncoding.EncodeToString(sum[:]) != a.chal {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			a.access = "static-access"
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": a.access, "token_type": "bearer", "refresh_token": "static-refresh", "expires_in": 3600})
		case "/applications/revoke":
			r.ParseForm()
			a.revoked = append(a.revoked, r.PostForm.Get("token"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// LibreChat's oauth.authorization_url and token_url: configured endpoints
// replace discovery entirely, and the configured revocation endpoint is
// used on disconnect.
func TestStaticEndpoints(t *testing.T) {
	a := newStaticAS(t)
	base := a.srv.URL
	c, err := New(base+"/mcp", &Options{
		SSRF: loopback, RedirectURL: redirect,
		AuthorizationURL: base + "/login/oauth/authorize",
		TokenURL:         base + "/login/oauth/access_token",
		RevocationURL:    base + "/applications/revoke",
		Client:           &ClientIdentity{ClientID: "static-client", ClientSecret: "static-secret", AuthMethod: AuthClientSecretBasic},
		Scopes:           []string{"repo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, c, base+"/mcp")
	var are *AuthorizationRequiredError
	if !errors.As(err, &are) {
		t.Fatalf("first request: %v, want *AuthorizationRequiredError", err)
	}
	if !strings.HasPrefix(are.URL, base+"/login/oauth/authorize?") {
		t.Errorf("authorization URL %s is not the configured endpoint", are.URL)
	}
	q := mustQuery(t, are.URL)
	for k, want := range map[string]string{
		"client_id": "static-client", "redirect_uri": redirect, "code_challenge_method": "S256",
		"resource": base + "/mcp", "scope": "repo", "response_type": "code",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	cb, err := browser(t.Context(), are.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HandleCallback(t.Context(), cb); err != nil {
		t.Fatalf("callback: %v", err)
	}
	if body, err := get(t, c, base+"/mcp"); err != nil || body != "ok" {
		t.Fatalf("after authorizing: %q, %v", body, err)
	}
	if err := c.Revoke(t.Context(), ""); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if i := slices.IndexFunc(a.paths, func(p string) bool { return strings.HasPrefix(p, "/.well-known/") }); i >= 0 {
		t.Errorf("the client looked for metadata at %s although the endpoints are configured", a.paths[i])
	}
	if diff := cmp.Diff([]string{"static-refresh", "static-access"}, a.revoked); diff != "" {
		t.Errorf("revoked at the configured endpoint (-want +got):\n%s", diff)
	}
	if len(a.tokens) != 1 || a.tokens[0].Get("grant_type") != "authorization_code" {
		t.Errorf("token requests: %v", a.tokens)
	}
}

func TestStaticEndpointsNeedEachOther(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"authorization without token", Options{RedirectURL: redirect, AuthorizationURL: "https://as.example/authorize"}},
		{"token without authorization", Options{RedirectURL: redirect, TokenURL: "https://as.example/token"}},
		{"not http", Options{RedirectURL: redirect, AuthorizationURL: "javascript:alert(1)", TokenURL: "https://as.example/token"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New("https://mcp.example/mcp", &tt.o); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
