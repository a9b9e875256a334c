package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
)

// idpSignIn runs a browser sign-in at Switchboard through the provider
// named provider (its authorize URL under fakeURL, the account chosen by
// login_hint) and returns the response to the provider's callback.
func idpSignIn(t *testing.T, in *instance, b *browser, provider, fakeURL, hint string) (*http.Response, string) {
	t.Helper()
	resp, page := b.visit(t, in.base+"/login?next=/chat", "")
	rid, csrf := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || rid == nil || csrf == nil || !strings.Contains(page, `action="/login/`+provider+`"`) {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
	resp, _ = b.do(t, http.MethodPost, in.base+"/login/"+provider, url.Values{"rid": {html.UnescapeString(rid[1])}, "csrf": {html.UnescapeString(csrf[1])}})
	authz := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authz, fakeURL) {
		t.Fatalf("to %s: %d %q", provider, resp.StatusCode, authz)
	}
	resp, page = b.do(t, http.MethodGet, authz+"&login_hint="+url.QueryEscape(hint), nil)
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, in.base+"/login/"+provider+"/callback?") {
		t.Fatalf("%s's redirect back: %d %q %s", provider, resp.StatusCode, cb, page)
	}
	return b.visit(t, cb, "")
}

// userRow returns the `users list` row of username, split into fields
// (USERNAME EMAIL ROLE ID CREATED), or nil.
func userRow(t *testing.T, cfg, username string) []string {
	t.Helper()
	for _, line := range strings.Split(sb(t, "", "users", "list", "--config", cfg), "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[0] == username {
			return f
		}
	}
	return nil
}

// Issue 16, acceptance 1 (sign-in) and 2: Kakao with OpenID Connect and
// with the REST flow, NAVER WORKS with a domain restriction; each user
// gets a username and e-mail from the profile; auth.admins makes the
// REST-flow Kakao user admin at sign-in; the setup link, logged at start
// with no users, survives the first (non-admin) identity-provider sign-in
// and ends once an admin exists.
func TestKoreanIdentityProviders(t *testing.T) {
	kakao := idptest.NewKakao(t, &idptest.KakaoOptions{ClientSecret: "kakao-secret", Users: []idptest.KakaoUser{
		{ID: 3141592653, Nickname: "라이언", Email: "ryan@kakao.com", EmailVerified: true},
	}})
	kakaoREST := idptest.NewKakao(t, &idptest.KakaoOptions{NoOIDC: true, Users: []idptest.KakaoUser{
		{ID: 271828, Nickname: "apeach", Email: "apeach@kakao.com", EmailVerified: true},
	}})
	works := idptest.NewNaverWorks(t, &idptest.NaverWorksOptions{Users: []idptest.NaverWorksUser{
		{UserID: "user-minji", Email: "minji@works.example", LastName: "김", FirstName: "민지", DomainID: 10000001},
		{UserID: "user-out", Email: "eve@other.example", LastName: "Doe", FirstName: "Eve", DomainID: 20000002},
	}})
	addr := freeAddr(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf(`auth:
  admins:
    - kakao-rest:271828
  providers:
    kakao:
      type: kakao
      issuer: %q
      clientId: %s
      clientSecret: %s
    kakao-rest:
      type: kakao
      oidc: false
      issuer: %q
      clientId: %s
      scopes: [profile_nickname, account_email]
    naverworks:
      type: naverworks
      issuer: %q
      clientId: %s
      clientSecret: %s
      domains: ["10000001"]
`, kakao.URL(), kakao.ClientID(), kakao.ClientSecret(), kakaoREST.URL(), kakaoREST.ClientID(),
		works.URL(), works.ClientID(), works.ClientSecret()))
	in := serve(t, "switchboard", cfg, addr)

	var link string
	for deadline := time.Now().Add(10 * time.Second); link == ""; time.Sleep(50 * time.Millisecond) {
		if m := setupLinkRE.FindStringSubmatch(in.log.String()); m != nil {
			link = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no setup link in the log:\n%s", in.log.String())
		}
	}
	setupTok := strings.TrimPrefix(link, in.base+"/setup?token=")

	for _, tc := range []struct {
		name, provider, fake, hint string
		username, email, role      string
	}{
		{"Kakao OpenID Connect", "kakao", kakao.URL(), "ryan@kakao.com", "라이언", "ryan@kakao.com", "user"},
		{"NAVER WORKS", "naverworks", works.URL(), "minji@works.example", "minji", "minji@works.example", "user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser()
			if resp, page := idpSignIn(t, in, b, tc.provider, tc.fake, tc.hint); resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-in: %d %s", resp.StatusCode, page)
			}
			if resp, _ := b.do(t, http.MethodGet, in.base+"/chat", nil); resp.StatusCode != http.StatusOK {
				t.Errorf("/chat after sign-in: %d", resp.StatusCode)
			}
			row := userRow(t, cfg, tc.username)
			if row == nil || row[1] != tc.email || row[2] != tc.role {
				t.Errorf("users list row of %s: %q, want email %s role %s", tc.username, row, tc.email, tc.role)
			}
		})
	}
	var kakaoToken idptest.TokenRequest
	for _, r := range kakao.TokenRequests() {
		kakaoToken = r
	}
	if kakaoToken.ContentType != "application/x-www-form-urlencoded;charset=utf-8" || kakaoToken.Form.Get("client_secret") != "kakao-secret" ||
		kakaoToken.Form.Get("code_verifier") == "" {
		t.Errorf("Kakao token request: Content-Type %q, form keys %v", kakaoToken.ContentType, keys(kakaoToken.Form))
	}
	if az := kakao.AuthorizeRequests(); len(az) == 0 || az[0].Get("nonce") == "" || az[0].Get("code_challenge") == "" || az[0].Has("scope") {
		t.Errorf("Kakao authorize request: %v (want nonce, code_challenge and no scope)", az)
	}

	t.Run("NAVER WORKS user of another domain", func(t *testing.T) {
		b := newBrowser()
		resp, page := idpSignIn(t, in, b, "naverworks", works.URL(), "eve@other.example")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "belongs to an organization that may not sign in here") {
			t.Errorf("refused sign-in: %d %s", resp.StatusCode, page)
		}
		if resp, _ := b.do(t, http.MethodGet, in.base+"/chat", nil); resp.StatusCode == http.StatusOK {
			t.Error("the refused user is signed in")
		}
		if row := userRow(t, cfg, "eve"); row != nil {
			t.Errorf("a user was created for the refused account: %q", row)
		}
	})

	t.Run("setup link survives identity-provider sign-ins", func(t *testing.T) {
		b := newBrowser()
		resp, page := b.do(t, http.MethodGet, link, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/setup"`) || strings.Contains(page, "exists already") {
			t.Fatalf("setup page after two sign-ins: %d %s", resp.StatusCode, page)
		}
	})

	t.Run("auth.admins", func(t *testing.T) {
		b := newBrowser()
		if resp, page := idpSignIn(t, in, b, "kakao-rest", kakaoREST.URL(), "271828"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, page)
		}
		if row := userRow(t, cfg, "apeach"); row == nil || row[1] != "apeach@kakao.com" || row[2] != "admin" {
			t.Errorf("users list row of apeach: %q, want apeach@kakao.com admin", row)
		}
		if az := kakaoREST.AuthorizeRequests(); len(az) == 0 || az[0].Get("scope") != "profile_nickname,account_email" || az[0].Has("nonce") {
			t.Errorf("Kakao REST authorize request: %v (want comma-joined scope, no nonce)", az)
		}
		if tr := kakaoREST.TokenRequests(); len(tr) == 0 || tr[0].Form.Has("client_secret") {
			t.Errorf("Kakao REST token request sent a client secret the app does not have: %v", tr)
		}
	})

	t.Run("setup link ends once an admin exists", func(t *testing.T) {
		b := newBrowser()
		resp, page := b.do(t, http.MethodPost, in.base+"/setup", url.Values{"token": {setupTok}, "username": {"root"}, "password": {password}})
		if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "admin account exists already") {
			t.Errorf("setup after an admin signed in: %d %s, want 409", resp.StatusCode, page)
		}
	})
}

func keys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	return out
}
