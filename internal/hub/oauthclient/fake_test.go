package oauthclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// fakeServer is an MCP resource server and its authorization server in one
// httptest server, speaking the real wire format.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	// Knobs, set before use.
	prmResource     string   // "": srv.URL+"/mcp"
	prmScopes       []string // scopes_supported in the resource metadata
	asServers       []string // "": srv.URL
	noS256          bool
	noRegistration  bool
	rejectRefreshSc bool // refresh requests carrying scope get invalid_scope
	expiresIn       int  // 0: 3600

	mu        sync.Mutex // guards the fields below
	paths     []string   // every request path, in order
	registers []map[string]any
	authorize []url.Values
	tokens    []url.Values
	challenge string // code_challenge of the last authorization
	issued    map[string]bool
	n         int
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, issued: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) url() string { return f.srv.URL + "/mcp" }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	base := f.srv.URL
	switch r.URL.Path {
	case "/mcp":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		valid := ok && f.issued[tok]
		f.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", resource_metadata="%s/.well-known/oauth-protected-resource/mcp"`, base))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok "+tok)
	case "/.well-known/oauth-protected-resource/mcp":
		res := f.prmResource
		if res == "" {
			res = base + "/mcp"
		}
		as := f.asServers
		if as == nil {
			as = []string{base}
		}
		writeJSON(w, map[string]any{"resource": res, "authorization_servers": as, "scopes_supported": f.prmScopes})
	case "/.well-known/oauth-authorization-server":
		m := map[string]any{
			"issuer":                 base,
			"authorization_endpoint": base + "/authorize",
			"token_endpoint":         base + "/token",
			"authorization_response_iss_parameter_supported": true,
		}
		if !f.noS256 {
			m["code_challenge_methods_supported"] = []string{"S256"}
		}
		if !f.noRegistration {
			m["registration_endpoint"] = base + "/register"
		}
		writeJSON(w, m)
	case "/register":
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.registers = append(f.registers, body)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]any{"client_id": "dyn-client", "token_endpoint_auth_method": "none"})
	case "/authorize":
		q := r.URL.Query()
		f.mu.Lock()
		f.authorize = append(f.authorize, q)
		f.challenge = q.Get("code_challenge")
		f.mu.Unlock()
		cb, _ := url.Parse(q.Get("redirect_uri"))
		v := cb.Query()
		v.Set("code", "the-code")
		v.Set("state", q.Get("state"))
		v.Set("iss", base)
		cb.RawQuery = v.Encode()
		http.Redirect(w, r, cb.String(), http.StatusFound)
	case "/token":
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tokens = append(f.tokens, r.PostForm)
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			if s256(r.PostForm.Get("code_verifier")) != f.challenge || r.PostForm.Get("code") != "the-code" {
				w.WriteHeader(http.StatusBadRequest)
				writeJSON(w, map[string]any{"error": "invalid_grant"})
				return
			}
		case "refresh_token":
			if f.rejectRefreshSc && r.PostForm.Has("scope") {
				w.WriteHeader(http.StatusBadRequest)
				writeJSON(w, map[string]any{"error": "invalid_scope"})
				return
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]any{"error": "unsupported_grant_type"})
			return
		}
		f.n++
		tok := fmt.Sprintf("token-%d", f.n)
		f.issued[tok] = true
		exp := f.expiresIn
		if exp == 0 {
			exp = 3600
		}
		writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": exp, "refresh_token": fmt.Sprintf("refresh-%d", f.n)})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) requestedPaths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

// loopback lets the client reach httptest servers.
var loopback = &ssrf.Policy{AllowedAddresses: []string{"127.0.0.0/8", "::1/128"}}

// browser plays the user agent: it opens the authorization URL and returns
// the redirect without following it.
func browser(ctx context.Context, authURL string) (string, error) {
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("authorize: %s", resp.Status)
	}
	return resp.Header.Get("Location"), nil
}

// get sends one request to the MCP endpoint through the client's transport
// and returns the body.
func get(t *testing.T, c *Client, u string) (string, error) {
	t.Helper()
	hc := &http.Client{Transport: c.Transport(nil)}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(`{"jsonrpc":"2.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}
