package authserver

import (
	"bytes"
	"encoding/json"
	"net/http"
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
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource/mcp":   e.iss + "/mcp",
		"/.well-known/oauth-protected-resource/mcp/x": e.iss + "/mcp/x",
		"/.well-known/oauth-protected-resource":       e.iss + "/mcp",
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
	if status, _ := getJSON(t, e.iss+"/.well-known/oauth-protected-resource/mcp/unknown"); status != 404 {
		t.Errorf("unknown resource: %d, want 404", status)
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
