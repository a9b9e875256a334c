package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestLocalFlow(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	alice := e.user("alice")
	at, rt := e.tokens(c, "alice")

	status, _, body := e.call("/mcp", at)
	if status != 200 {
		t.Fatalf("/mcp: %d %s", status, body)
	}
	var p Principal
	json.Unmarshal([]byte(body), &p)
	if p.UserID != alice.ID || p.Username != "alice" || p.ClientID != c.id || p.Resource != e.iss+"/mcp" {
		t.Fatalf("principal %+v", p)
	}

	// Refresh rotates; the new access token works.
	status, out := e.refresh(c, rt)
	if status != 200 || out["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v", status, out)
	}
	if s, _, _ := e.call("/mcp", out["access_token"].(string)); s != 200 {
		t.Fatalf("refreshed token: %d", s)
	}

	// Revocation of the refresh token revokes the family and its access tokens.
	resp, err := http.PostForm(e.iss+"/revoke", url.Values{"token": {out["refresh_token"].(string)}, "client_id": {c.id}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if s, _, _ := e.call("/mcp", out["access_token"].(string)); s != 401 {
		t.Fatalf("access token after revocation: %d", s)
	}
	if s, out := e.refresh(c, out["refresh_token"].(string)); s != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("refresh after revocation: %d %v", s, out)
	}
	// RFC 7009 §2.2: unknown tokens are 200 too.
	resp, _ = http.PostForm(e.iss+"/revoke", url.Values{"token": {"nonsense"}, "client_id": {c.id}})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke unknown: %d", resp.StatusCode)
	}

	// Second sign-in from the same browser with remembered consent skips
	// every page.
	b := newBrowser()
	e.login(b, e.authorizeURL(c, newPKCE(), nil), "alice")
	resp2, _ := b.get(t, e.authorizeURL(c, newPKCE(), nil))
	if loc, _ := url.Parse(resp2.Header.Get("Location")); resp2.StatusCode != 302 || loc.Query().Get("code") == "" || loc.Query().Get("iss") != e.iss {
		t.Fatalf("remembered consent: %d %s", resp2.StatusCode, resp2.Header.Get("Location"))
	}
}

func TestAccessTokenRevocation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	at, rt := e.tokens(c, "alice")
	resp, _ := http.PostForm(e.iss+"/revoke", url.Values{"token": {at}, "client_id": {c.id}})
	resp.Body.Close()
	if s, _, _ := e.call("/mcp", at); s != 401 {
		t.Fatalf("revoked access token: %d", s)
	}
	if s, _ := e.refresh(c, rt); s != 200 {
		t.Fatalf("refresh token after access-token revocation: %d", s)
	}
}

func TestAuthorizeRedirectURIMismatch(t *testing.T) {
	e := newEnv(t, nil)
	status, out := e.register(map[string]any{"redirect_uris": []string{"https://app.example.com/callback", "http://127.0.0.1:8000/cb"}, "token_endpoint_auth_method": "none"})
	if status != 201 {
		t.Fatal(out)
	}
	c := client{id: out["client_id"].(string)}
	for _, tt := range []struct {
		name, uri string
		ok        bool
	}{
		{"trailing slash", "https://app.example.com/callback/", false},
		{"case", "https://app.example.com/CALLBACK", false},
		{"other port on non-loopback host", "https://app.example.com:444/callback", false},
		{"unregistered", "https://evil.example/callback", false},
		{"missing", "", false},
		{"loopback other port", "http://127.0.0.1:51000/cb", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.redirect = tt.uri
			extra := url.Values{}
			if tt.uri == "" {
				extra["redirect_uri"] = nil
			}
			resp, body := newBrowser().get(t, e.authorizeURL(c, newPKCE(), extra))
			if tt.ok {
				if resp.StatusCode != 200 || !strings.Contains(body, `name="csrf"`) {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				return
			}
			// Never a redirect to an unvalidated URI: an HTML error page.
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("got %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	resp, _ := newBrowser().get(t, e.authorizeURL(client{id: "no-such-client", redirect: testRedirect}, newPKCE(), nil))
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("unknown client: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuthorizeErrorsRedirect(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	for _, tt := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"PKCE missing", url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request"},
		{"PKCE plain", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"PKCE method missing", url.Values{"code_challenge_method": nil}, "invalid_request"},
		{"response type", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"resource unknown", url.Values{"resource": {"https://evil.example/mcp"}}, "invalid_target"},
		{"resource of another server", url.Values{"resource": {"http://127.0.0.1:1/mcp"}}, "invalid_target"},
		{"scope", url.Values{"scope": {"mcp admin"}}, "invalid_scope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := newBrowser().get(t, e.authorizeURL(c, newPKCE(), tt.extra))
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != 302 || !strings.HasPrefix(loc.String(), testRedirect) {
				t.Fatalf("%d %s", resp.StatusCode, loc)
			}
			q := loc.Query()
			if q.Get("error") != tt.code || q.Get("iss") != e.iss || q.Get("state") != "st-123" || q.Has("code") {
				t.Fatalf("redirect %s, want error=%s with iss and state and no code", loc, tt.code)
			}
		})
	}
	// RFC 8707 resource with a query string appended (ChatGPT) is the endpoint.
	resp, _ := newBrowser().get(t, e.authorizeURL(c, newPKCE(), url.Values{"resource": {e.iss + "/mcp?foo=bar"}}))
	if resp.StatusCode != 200 {
		t.Fatalf("resource with query: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPKCEWrongVerifier(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	p := newPKCE()
	code := e.code(c, p, "alice")
	status, out := e.redeem(c, code, newPKCE())
	wantOAuthError(t, status, out, 400, "invalid_grant")
	// The code is spent even so.
	status, out = e.redeem(c, code, p)
	wantOAuthError(t, status, out, 400, "invalid_grant")

	// Missing verifier.
	p = newPKCE()
	status, out = e.redeem(c, e.code(c, p, "alice"), pkce{})
	wantOAuthError(t, status, out, 400, "invalid_grant")
	// "plain": the challenge presented as the verifier.
	p = newPKCE()
	status, out = e.redeem(c, e.code(c, p, "alice"), pkce{verifier: p.challenge})
	wantOAuthError(t, status, out, 400, "invalid_grant")
}

func TestCodeBindings(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	other := e.publicClient()
	e.user("alice")

	p := newPKCE()
	status, out, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {e.code(c, p, "alice")},
		"redirect_uri": {"http://127.0.0.1:9999/other"}, "client_id": {c.id}, "code_verifier": {p.verifier}})
	wantOAuthError(t, status, out, 400, "invalid_grant")

	p = newPKCE()
	status, out, _ = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {e.code(c, p, "alice")},
		"redirect_uri": {c.redirect}, "client_id": {other.id}, "code_verifier": {p.verifier}})
	wantOAuthError(t, status, out, 400, "invalid_grant")

	p = newPKCE()
	status, out, _ = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {e.code(c, p, "alice")},
		"redirect_uri": {c.redirect}, "client_id": {c.id}, "code_verifier": {p.verifier}, "resource": {e.iss + "/mcp/x"}})
	wantOAuthError(t, status, out, 400, "invalid_target")

	p = newPKCE()
	code := e.code(c, p, "alice")
	e.clock.Advance(61 * time.Second)
	status, out = e.redeem(c, code, p)
	wantOAuthError(t, status, out, 400, "invalid_grant")
}

func TestCodeReplayRevokesFamily(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	p := newPKCE()
	code := e.code(c, p, "alice")
	status, first := e.redeem(c, code, p)
	if status != 200 {
		t.Fatal(first)
	}
	status, out := e.redeem(c, code, p)
	wantOAuthError(t, status, out, 400, "invalid_grant")
	if s, _, _ := e.call("/mcp", first["access_token"].(string)); s != 401 {
		t.Fatalf("first access token after replay: %d, want 401", s)
	}
	status, out = e.refresh(c, first["refresh_token"].(string))
	wantOAuthError(t, status, out, 400, "invalid_grant")
}

func TestConcurrentRedemption(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	p := newPKCE()
	code := e.code(c, p, "alice")
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() { statuses[i], _ = e.redeem(c, code, p) })
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case 200:
			won++
		case 400:
		default:
			t.Errorf("status %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("%d redemptions succeeded, want exactly 1 (%v)", won, statuses)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	_, rt1 := e.tokens(c, "alice")
	status, second := e.refresh(c, rt1)
	if status != 200 {
		t.Fatal(second)
	}
	rt2, at2 := second["refresh_token"].(string), second["access_token"].(string)

	// Past the grace window for retries (TestRefreshRetryWithinGrace).
	e.clock.Advance(rotationGrace + time.Second)
	status, out := e.refresh(c, rt1) // reuse
	wantOAuthError(t, status, out, 400, "invalid_grant")
	status, out = e.refresh(c, rt2) // the newest of the family is dead too
	wantOAuthError(t, status, out, 400, "invalid_grant")
	if s, _, _ := e.call("/mcp", at2); s != 401 {
		t.Fatalf("access token of the revoked family: %d", s)
	}
}

func TestRefreshNarrowing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Scopes = []string{"mcp", "extra"} })
	c := e.publicClient()
	e.user("alice")
	p := newPKCE()
	loc := e.login(newBrowser(), e.authorizeURL(c, p, url.Values{"scope": {"mcp extra"}}), "alice")
	status, out := e.redeem(c, loc.Query().Get("code"), p)
	if status != 200 || out["scope"] != "extra mcp" {
		t.Fatalf("%d %v", status, out)
	}
	rt := out["refresh_token"].(string)
	status, out, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}, "scope": {"mcp admin"}})
	wantOAuthError(t, status, out, 400, "invalid_scope")
	status, out, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}, "resource": {e.iss + "/mcp/x"}})
	wantOAuthError(t, status, out, 400, "invalid_target")
	status, out, _ = e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}, "scope": {"mcp"}})
	if status != 200 || out["scope"] != "mcp" {
		t.Fatalf("narrowed: %d %v", status, out)
	}
	// Narrowing the access token does not shrink the grant.
	status, out = e.refresh(c, out["refresh_token"].(string))
	if status != 200 || out["scope"] != "extra mcp" {
		t.Fatalf("after narrowing: %d %v", status, out)
	}
}

func TestClientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice")
	status, reg := e.register(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "client_secret_basic"})
	if status != 201 {
		t.Fatal(reg)
	}
	c := client{id: reg["client_id"].(string), secret: reg["client_secret"].(string), redirect: testRedirect}

	// Unknown client with Basic: 401 and a Basic challenge.
	req, _ := http.NewRequest("POST", e.iss+"/token", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("nobody", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 401 || out["error"] != "invalid_client" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("unknown client: %d %v %q", resp.StatusCode, out, resp.Header.Get("WWW-Authenticate"))
	}
	// Confidential client without its secret.
	p := newPKCE()
	code := e.code(c, p, "alice")
	s, out, _ := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}, "client_id": {c.id}, "code_verifier": {p.verifier}})
	wantOAuthError(t, s, out, 401, "invalid_client")
	// With it (client_secret_post works as well as Basic).
	s, out, _ = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}, "client_id": {c.id}, "client_secret": {c.secret}, "code_verifier": {p.verifier}})
	if s != 200 {
		t.Fatalf("%d %v", s, out)
	}
}

func TestConsentCSRF(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	b := newBrowser()
	// Sign in once (for another redirect-less consent the session is reused).
	e.login(b, e.authorizeURL(c, newPKCE(), nil), "alice")
	// prompt=consent forces the consent page for the signed-in user.
	resp, page := b.get(t, e.authorizeURL(c, newPKCE(), url.Values{"prompt": {"consent"}}))
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/authorize/consent"`) {
		t.Fatalf("consent page: %d %s", resp.StatusCode, page)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if v := resp.Header.Get(h); !strings.Contains(v, "frame-ancestors 'none'") && v != "DENY" {
			t.Errorf("%s = %q", h, v)
		}
	}
	rid, csrf := formFields(t, page)
	for _, tt := range []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"no CSRF token", b, url.Values{"rid": {rid}, "action": {"allow"}}},
		{"wrong CSRF token", b, url.Values{"rid": {rid}, "csrf": {"x" + csrf}, "action": {"allow"}}},
		{"another browser", newBrowser(), url.Values{"rid": {rid}, "csrf": {csrf}, "action": {"allow"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := tt.b.post(t, e.iss+"/authorize/consent", tt.form)
			if resp.StatusCode != 403 || resp.Header.Get("Location") != "" {
				t.Fatalf("%d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	// The real form still works, once.
	resp, _ = b.post(t, e.iss+"/authorize/consent", url.Values{"rid": {rid}, "csrf": {csrf}, "action": {"allow"}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != 302 || loc.Query().Get("code") == "" {
		t.Fatalf("allow: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.post(t, e.iss+"/authorize/consent", url.Values{"rid": {rid}, "csrf": {csrf}, "action": {"allow"}})
	if resp.StatusCode == 302 {
		t.Fatal("consent form accepted twice")
	}
	// Deny redirects with access_denied.
	_, page = b.get(t, e.authorizeURL(c, newPKCE(), url.Values{"prompt": {"consent"}}))
	rid, csrf = formFields(t, page)
	resp, _ = b.post(t, e.iss+"/authorize/consent", url.Values{"rid": {rid}, "csrf": {csrf}, "action": {"deny"}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc.Query().Get("error") != "access_denied" || loc.Query().Get("iss") != e.iss || loc.Query().Has("code") {
		t.Fatalf("deny: %s", loc)
	}
}

func TestLoginThrottleAndLanguage(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	b := newBrowser()
	req, _ := http.NewRequest("GET", e.authorizeURL(c, newPKCE(), nil), nil)
	req.Header.Set("Accept-Language", "ko-KR,ko;q=0.9,en;q=0.8")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	page := sb.String()
	if !strings.Contains(page, `lang="ko"`) || !strings.Contains(page, "로그인") || !strings.Contains(page, "Test Client") || !strings.Contains(page, "127.0.0.1:9999") {
		t.Fatalf("Korean sign-in page lacks language, client name or redirect host:\n%s", page)
	}
	rid, csrf := formFields(t, page)
	for i := range loginBackoff.Free + 2 {
		resp, _ := b.post(t, e.iss+"/login", url.Values{"rid": {rid}, "csrf": {csrf}, "username": {"alice"}, "password": {"wrong password"}})
		want := 401
		if i > loginBackoff.Free {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	resp, _ = b.post(t, e.iss+"/login", url.Values{"rid": {rid}, "csrf": {csrf}, "username": {"alice"}, "password": {"correct horse battery"}})
	if resp.StatusCode != 429 {
		t.Fatalf("throttled correct password: %d", resp.StatusCode)
	}
}

// sign makes a JWT with arbitrary header and claims, for the negative tests.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestProtectRefusesBadTokens(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	alice := e.user("alice")
	at, _ := e.tokens(c, "alice")

	sk, _ := e.srv.keys.signer(context.Background())
	now := e.clock.Now()
	claims := func(aud string, exp time.Time) accessClaims {
		return accessClaims{Claims: jwt.Claims{Issuer: e.iss, Subject: alice.ID, Audience: jwt.Audience{aud},
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), ID: "jti-" + aud}, ClientID: c.id, Scope: "mcp"}
	}
	good := sign(t, jose.ES256, sk.priv, sk.id, claims(e.iss+"/mcp", now.Add(time.Hour)))
	if s, _, body := e.call("/mcp", good); s != 200 {
		t.Fatalf("hand-made good token: %d %s", s, body)
	}
	parts := strings.Split(good, ".")
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+sk.id+`"}`)) + "." + parts[1] + "."
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hsKey := make([]byte, 32)

	cases := []struct {
		name, path, tok string
	}{
		{"/mcp token at /mcp/x", "/mcp/x", at},
		{"wrong aud", "/mcp", sign(t, jose.ES256, sk.priv, sk.id, claims("https://other.example/mcp", now.Add(time.Hour)))},
		{"expired", "/mcp", sign(t, jose.ES256, sk.priv, sk.id, claims(e.iss+"/mcp", now.Add(-time.Hour)))},
		{"alg none", "/mcp", noneTok},
		{"HS256", "/mcp", sign(t, jose.HS256, hsKey, sk.id, claims(e.iss+"/mcp", now.Add(time.Hour)))},
		{"wrong key, known kid", "/mcp", sign(t, jose.ES256, otherKey, sk.id, claims(e.iss+"/mcp", now.Add(time.Hour)))},
		{"unknown kid", "/mcp", sign(t, jose.ES256, otherKey, "nope", claims(e.iss+"/mcp", now.Add(time.Hour)))},
		{"upstream provider token", "/mcp", "AAAAOH-naver-access-token-xyz"},
		{"tampered signature", "/mcp", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			s, www, _ := e.call(tt.path, tt.tok)
			prm := e.iss + "/.well-known/oauth-protected-resource" + tt.path
			if s != 401 || !strings.Contains(www, `resource_metadata="`+prm+`"`) || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, `scope="mcp"`) {
				t.Fatalf("%d %q", s, www)
			}
		})
	}
	s, www, _ := e.call("/mcp/x", "")
	if s != 401 || www != `Bearer resource_metadata="`+e.iss+`/.well-known/oauth-protected-resource/mcp/x", scope="mcp"` {
		t.Fatalf("no token: %d %q", s, www)
	}
	// A token without the required scope: 403 insufficient_scope.
	cl := claims(e.iss+"/mcp", now.Add(time.Hour))
	cl.Scope = "other"
	s, www, _ = e.call("/mcp", sign(t, jose.ES256, sk.priv, sk.id, cl))
	if s != 403 || !strings.Contains(www, `error="insufficient_scope"`) {
		t.Fatalf("insufficient scope: %d %q", s, www)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.publicClient()
	e.user("alice")
	before, _ := e.tokens(c, "alice")
	if err := e.srv.RotateSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := e.tokens(c, "alice")
	for _, tok := range []string{before, after} {
		if s, _, _ := e.call("/mcp", tok); s != 200 {
			t.Fatalf("token after rotation: %d", s)
		}
	}
	_, m := getJSON(t, e.iss+"/jwks")
	if keys := m["keys"].([]any); len(keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(keys))
	}
	// A second server on the same store (a restart, another replica)
	// verifies both.
	srv2, err := New(context.Background(), &Options{Issuer: e.iss, Store: e.st, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{before, after} {
		if _, err := srv2.verify(context.Background(), tok, e.iss+"/mcp"); err != nil {
			t.Fatalf("replica: %v", err)
		}
	}
	// Once the retired key's tokens have expired, it leaves the JWKS.
	e.clock.Advance(2 * time.Hour)
	e.srv.keys.reload(context.Background())
	_, m = getJSON(t, e.iss+"/jwks")
	if keys := m["keys"].([]any); len(keys) != 1 {
		t.Fatalf("JWKS has %d keys after expiry, want 1", len(keys))
	}
}

func TestAPIKey(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice")
	plain, k, err := e.srv.CreateAPIKey(context.Background(), alice.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "sbk_") || strings.Contains(k.Hash, plain) {
		t.Fatalf("key %q %+v", plain, k)
	}
	for _, path := range []string{"/mcp", "/mcp/x"} {
		if s, _, body := e.call(path, plain); s != 200 || !strings.Contains(body, "apikey:") {
			t.Fatalf("%s: %d %s", path, s, body)
		}
	}
	if err := e.st.RevokeAPIKey(context.Background(), k.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := e.call("/mcp", plain); s != 401 {
		t.Fatalf("revoked key: %d", s)
	}
	if s, _, _ := e.call("/mcp", "sbk_guess"); s != 401 {
		t.Fatalf("unknown key: %d", s)
	}
}

func TestSetupLink(t *testing.T) {
	e := newEnv(t, nil)
	link, err := e.srv.SetupLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser()
	resp, page := b.get(t, link)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="token"`) {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	tok := strings.TrimPrefix(link, e.iss+"/setup?token=")
	resp, page = b.post(t, e.iss+"/setup", url.Values{"token": {tok}, "username": {"admin"}, "password": {"short"}})
	if resp.StatusCode != 400 {
		t.Fatalf("weak password: %d", resp.StatusCode)
	}
	resp, page = b.post(t, e.iss+"/setup", url.Values{"token": {tok}, "username": {"admin"}, "password": {"a long passphrase"}})
	if resp.StatusCode != 200 {
		t.Fatalf("setup: %d %s", resp.StatusCode, page)
	}
	u, err := e.st.UserByUsername(context.Background(), "admin")
	if err != nil || u.Role != "admin" {
		t.Fatalf("admin: %+v %v", u, err)
	}
	resp, _ = b.post(t, e.iss+"/setup", url.Values{"token": {tok}, "username": {"admin2"}, "password": {"a long passphrase"}})
	if resp.StatusCode == 200 {
		t.Fatal("setup link worked twice")
	}
	if _, err := e.srv.SetupLink(context.Background()); err == nil {
		t.Fatal("setup link with users present")
	}
}
