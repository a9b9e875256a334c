package authserver

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// TestRestartAndNoPlaintextAtRest runs a flow, restarts on the same data
// directory (registrations, grants and tokens stay valid), then checks that
// the database files hold none of the secrets in plaintext.
func TestRestartAndNoPlaintextAtRest(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, nil)
	e.st.Close()
	e.st = openStore(t, dir)
	srv, err := New(context.Background(), &Options{Issuer: e.iss, Store: e.st, LocalLogin: true, Now: e.clock.Now,
		Resources: func() []string { return []string{e.iss + "/mcp"} }})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv

	status, reg := e.register(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "client_secret_post"})
	if status != 201 {
		t.Fatal(reg)
	}
	c := client{id: reg["client_id"].(string), secret: reg["client_secret"].(string), redirect: testRedirect}
	alice := e.user("alice")
	p := newPKCE()
	code := e.code(c, p, "alice")
	status, out, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect},
		"client_id": {c.id}, "client_secret": {c.secret}, "code_verifier": {p.verifier}})
	if status != 200 {
		t.Fatal(out)
	}
	at, rt := out["access_token"].(string), out["refresh_token"].(string)
	apiKey, _, err := e.srv.CreateAPIKey(context.Background(), alice.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	const canary = "CANARY-provider-token-8d1f"
	if err := e.st.SaveProviderToken(context.Background(), &store.ProviderToken{UserID: alice.ID, Provider: "naver", AccessToken: canary, RefreshToken: canary + "-r"}); err != nil {
		t.Fatal(err)
	}

	// Restart.
	e.st.Close()
	e.st = openStore(t, dir)
	srv, err = New(context.Background(), &Options{Issuer: e.iss, Store: e.st, LocalLogin: true, Now: e.clock.Now,
		Resources: func() []string { return []string{e.iss + "/mcp"} }})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	if s, _, body := e.call("/mcp", at); s != 200 {
		t.Fatalf("access token after restart: %d %s", s, body)
	}
	status, out, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}, "client_secret": {c.secret}})
	if status != 200 {
		t.Fatalf("refresh after restart: %d %v", status, out)
	}
	e.st.Close()

	secrets := []string{c.secret, rt, out["refresh_token"].(string), code, apiKey, canary, "correct horse battery"}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret in plaintext (%.8s…)", filepath.Base(f), s)
			}
		}
	}
}
