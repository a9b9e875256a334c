package authserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAuthorizationServerMetadata(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		status, m := getJSON(t, e.iss+path)
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		want := map[string]any{
			"issuer":                                         e.iss,
			"authorization_endpoint":                         e.iss + "/authorize",
			"token_endpoint":                                 e.iss + "/token",
			"registration_endpoint":                          e.iss + "/register",
			"revocation_endpoint":                            e.iss + "/revoke",
			"jwks_uri":                                       e.iss + "/jwks",
			"response_types_supported":                       []any{"code"},
			"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
			"code_challenge_methods_supported":               []any{"S256"},
			"token_endpoint_auth_methods_supported":          []any{"none", "client_secret_post", "client_secret_basic"},
			"scopes_supported":                               []any{"mcp"},
			"authorization_response_iss_parameter_supported": true,
			"client_id_metadata_document_supported":          true,
		}
		for k, v := range want {
			if diff := cmp.Diff(v, m[k]); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", path, k, diff)
			}
		}
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	e := newEnv(t, nil)
	// A server that is not configured (unknown) gets the same answer as
	// one that is (x): the metadata does not tell which servers exist.
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource/mcp":           e.iss + "/mcp",
		"/.well-known/oauth-protected-resource/mcp/x":         e.iss + "/mcp/x",
		"/.well-known/oauth-protected-resource/mcp/x/":        e.iss + "/mcp/x",
		"/.well-known/oauth-protected-resource":               e.iss + "/mcp",
		"/.well-known/oauth-protected-resource/mcp/unknown":   e.iss + "/mcp/unknown",
		"/.well-known/oauth-protected-resource/mcp/%EB%A9%94": e.iss + "/mcp/메",
	} {
		status, m := getJSON(t, e.iss+path)
		want := map[string]any{
			"resource": resource, "authorization_servers": []any{e.iss}, "scopes_supported": []any{"mcp"},
			"bearer_methods_supported": []any{"header"}, "resource_name": "Switchboard",
		}
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
	// Paths that cannot be an MCP endpoint are not found.
	for _, p := range []string{"/mcp/a/b", "/mcp/%2E%2E", "/mcp/a%20b", "/other", "/mcpx"} {
		if status, _ := getJSON(t, e.iss+"/.well-known/oauth-protected-resource"+p); status != 404 {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
	status, m := getJSON(t, e.iss+"/jwks")
	if keys, _ := m["keys"].([]any); status != 200 || len(keys) != 1 || keys[0].(map[string]any)["alg"] != "ES256" {
		t.Errorf("jwks: %d %v", status, m)
	}
	if _, ok := m["keys"].([]any)[0].(map[string]any)["d"]; ok {
		t.Fatal("JWKS publishes the private key")
	}
}

func TestRegister(t *testing.T) {
	e := newEnv(t, nil)
	status, out := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1:33418/cb"}, "token_endpoint_auth_method": "none", "client_name": "Claude"})
	if status != 201 || out["client_id"] == "" || out["client_secret"] != nil || out["application_type"] != "native" {
		t.Fatalf("public: %d %v", status, out)
	}
	status, out = e.register(map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}, "token_endpoint_auth_method": "client_secret_post"})
	if status != 201 || out["client_secret"] == nil || out["application_type"] != "web" {
		t.Fatalf("confidential: %d %v", status, out)
	}
	many := make([]string, 11)
	for i := range many {
		many[i] = "https://app.example.com/cb" + strings.Repeat("x", i)
	}
	for _, tt := range []struct {
		name string
		meta map[string]any
		code string
	}{
		{"javascript", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"data", map[string]any{"redirect_uris": []string{"data:text/html,x"}}, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://a.example/cb#f"}}, "invalid_redirect_uri"},
		{"http non-loopback", map[string]any{"redirect_uris": []string{"http://a.example/cb"}}, "invalid_redirect_uri"},
		{"none", map[string]any{}, "invalid_redirect_uri"},
		{"too many", map[string]any{"redirect_uris": many}, "invalid_redirect_uri"},
		{"grant type", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"password"}}, "invalid_client_metadata"},
		{"auth method", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{"scope", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "scope": "admin"}, "invalid_client_metadata"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, out := e.register(tt.meta)
			if status != 400 || out["error"] != tt.code || out["client_id"] != nil {
				t.Fatalf("got %d %v, want 400 %s", status, out, tt.code)
			}
		})
	}
	resp, err := http.Post(e.iss+"/register", "application/json", bytes.NewReader(bytes.Repeat([]byte(" "), 70<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", resp.StatusCode)
	}
	// The bucket holds 20; the requests above used 13.
	limited := false
	for range 10 {
		if status, _ := e.register(map[string]any{"redirect_uris": []string{"https://a.example/cb"}}); status == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited {
		t.Error("registration is not rate limited")
	}
}

// Issue 10, finding 7 (PRM enumeration): without signing in, an
// authorization request for a server that does not exist looks like one for
// a server that does (the sign-in page); the refusal (invalid_target) comes
// only to a signed-in user, and no code is issued for it.
func TestUnknownServerNotRevealedBeforeSignIn(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	for _, res := range []string{"/mcp/x", "/mcp/unknown"} {
		resp, page := newBrowser().get(t, e.authorizeURL(c, newPKCE(), url.Values{"resource": {e.iss + res}}))
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login"`) {
			t.Fatalf("%s before sign-in: %d Location=%q, want the sign-in page", res, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Signing in through it ends in invalid_target, without a code.
	b := newBrowser()
	loc := e.login(b, e.authorizeURL(c, newPKCE(), url.Values{"resource": {e.iss + "/mcp/unknown"}}), "alice")
	if loc.Query().Get("error") != "invalid_target" || loc.Query().Has("code") {
		t.Fatalf("after sign-in for an unknown server: %s, want invalid_target", loc)
	}
	// Signed in, the answer comes at once.
	resp, _ := b.get(t, e.authorizeURL(c, newPKCE(), url.Values{"resource": {e.iss + "/mcp/unknown"}}))
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_target" {
		t.Fatalf("signed in, unknown server: %d %s, want invalid_target", resp.StatusCode, loc)
	}
	// What is not an endpoint's shape is refused before sign-in, as before.
	resp, _ = newBrowser().get(t, e.authorizeURL(c, newPKCE(), url.Values{"resource": {"https://elsewhere.example/mcp"}}))
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_target" {
		t.Fatalf("foreign resource: %d %s, want invalid_target", resp.StatusCode, loc)
	}
}
