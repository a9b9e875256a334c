package authserver

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// signInWith runs a browser sign-in at provider (hint picks the fake's
// account) and returns the callback's response page. lang is the
// callback's Accept-Language.
func (e *testEnv) signInWith(t *testing.T, provider, hint, lang string) (*http.Response, string) {
	t.Helper()
	b := newBrowser()
	_, page := b.get(t, e.iss+"/login?next=/")
	rid, csrf := formFields(t, page)
	r, _ := b.post(t, e.iss+"/login/"+provider, url.Values{"rid": {rid}, "csrf": {csrf}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("provider button: %d", r.StatusCode)
	}
	r, _ = b.get(t, r.Header.Get("Location")+"&login_hint="+url.QueryEscape(hint))
	cb := r.Header.Get("Location")
	if !strings.HasPrefix(cb, e.iss+"/login/"+provider+"/callback") {
		t.Fatalf("the provider redirected to %q", cb)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, cb, nil)
	req.Header.Set("Accept-Language", lang)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = io.Copy(&sb, resp.Body)
	return resp, sb.String()
}

// The Kakao and NAVER WORKS tokens of a signed-in user are stored under the
// provider names kakao and naverworks and served, refreshed when due, by
// ProviderToken, for the calendar tools; they work at the provider's APIs.
func TestKoreanProviderTokens(t *testing.T) {
	kakao := idptest.NewKakao(t, nil)
	works := idptest.NewNaverWorks(t, &idptest.NaverWorksOptions{Users: []idptest.NaverWorksUser{
		idptest.DefaultNaverWorksUser(),
		{UserID: "u-out", Email: "eve@other.example", LastName: "Doe", FirstName: "Eve", DomainID: 20000002},
	}})
	var provs []idp.Provider
	worksCfg := works.Config()
	worksCfg.Name = "works" // asked for by type
	for _, c := range []idp.Config{kakao.Config(), worksCfg} {
		p, err := idp.New(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		provs = append(provs, p)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		provider, ask, subject string // config name, the name the tools ask by
		fake                   *idptest.Server
		api                    string // a user API that takes the token
	}{
		{"kakao", "kakao", "3141592653", kakao.Server, kakao.URL() + "/v2/user/me"},
		{"works", "naverworks", idptest.DefaultNaverWorksUser().UserID, works.Server, works.URL() + "/v1.0/users/me"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Providers = provs }) // its own clock
			if resp, page := e.signInWith(t, tc.provider, "", "en"); resp.StatusCode >= 400 {
				t.Fatalf("sign-in: %d %s", resp.StatusCode, page)
			}
			ident, err := e.st.IdentityBySubject(ctx, tc.provider, tc.subject)
			if err != nil {
				t.Fatalf("identity %s:%s: %v", tc.provider, tc.subject, err)
			}
			works := func(tok string) bool {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tc.api, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}
			first, err := e.srv.ProviderToken(ctx, ident.UserID, tc.ask)
			if err != nil || !works(first.AccessToken) {
				t.Fatalf("ProviderToken after sign-in: %v, %v", first, err)
			}
			e.clock.Advance(2 * time.Hour) // past the token's expiry, as the server sees it
			next, err := e.srv.ProviderToken(ctx, ident.UserID, tc.ask)
			if err != nil || next.AccessToken == first.AccessToken || !works(next.AccessToken) || tc.fake.Refreshes() != 1 {
				t.Fatalf("ProviderToken after expiry: %v, %v; %d refreshes, want a new working token from 1", next, err, tc.fake.Refreshes())
			}
			stored, err := e.st.ProviderToken(ctx, ident.UserID, tc.provider)
			if err != nil || stored.AccessToken != next.AccessToken || stored.RefreshToken == "" {
				t.Errorf("stored token after refresh: %+v, %v", stored, err)
			}
		})
	}

	// A NAVER WORKS user of another domain sees why, in their language,
	// and no user is made.
	e := newEnv(t, func(o *Options) { o.Providers = provs })
	for _, tc := range []struct{ lang, want string }{
		{"ko-KR,ko;q=0.9", "이 NAVER WORKS 계정이 속한 조직은 여기에 로그인할 수 없습니다"},
		{"en", "Your NAVER WORKS account belongs to an organization that may not sign in here"},
	} {
		resp, page := e.signInWith(t, "works", "u-out", tc.lang)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, tc.want) {
			t.Errorf("refused sign-in (%s): %d %s", tc.lang, resp.StatusCode, page)
		}
	}
	if _, err := e.st.IdentityBySubject(ctx, "works", "u-out"); err == nil {
		t.Error("the refused user was linked")
	}
}

// auth.admins: a matching provider:subject or vouched-for address makes
// the user admin at sign-in (an existing user too); an unverified
// address does not. The setup link stays valid until an admin exists.
func TestAdminRules(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Admins = []AdminRule{{Provider: "kakao", Subject: "42"}, {Email: "Boss@Example.com"}}
	})
	ctx := t.Context()
	if _, err := e.srv.SetupLink(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		provider string
		id       idp.Identity
		want     store.Role
		admin    bool // an admin exists afterwards
	}{
		{"unlisted user", "kakao", idp.Identity{Subject: "7", Username: "muzi"}, store.RoleUser, false},
		{"listed address, not verified", "oidc", idp.Identity{Subject: "o1", Email: "boss@example.com"}, store.RoleUser, false},
		{"listed address, verified", "google", idp.Identity{Subject: "g1", Email: "boss@example.com", EmailVerified: true}, store.RoleAdmin, true},
		{"listed subject, existing user promoted", "kakao", idp.Identity{Subject: "42", Username: "ryan"}, store.RoleAdmin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.provider == "kakao" && tc.id.Subject == "42" {
				// Signed in once before the rule existed.
				u := &store.User{Username: "ryan", Role: store.RoleUser}
				if err := e.st.CreateUser(ctx, u); err != nil {
					t.Fatal(err)
				}
				if err := e.st.LinkIdentity(ctx, &store.Identity{Provider: "kakao", Subject: "42", UserID: u.ID}); err != nil {
					t.Fatal(err)
				}
			}
			u, err := e.srv.linkUser(ctx, tc.provider, &tc.id)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.st.UserByID(ctx, u.ID)
			if err != nil || stored.Role != tc.want {
				t.Errorf("role = %v, %v; want %s", stored.Role, err, tc.want)
			}
			_, err = e.srv.SetupLink(ctx)
			if got := err == ErrUsersExist; got != tc.admin {
				t.Errorf("SetupLink: %v; want ErrUsersExist %v", err, tc.admin)
			}
		})
	}
}

// Asking by type works only when one provider has the type.
func TestProviderTokenByTypeAmbiguous(t *testing.T) {
	var provs []idp.Provider
	for _, name := range []string{"kakao-a", "kakao-b"} {
		c := idptest.NewKakao(t, nil).Config()
		c.Name = name
		p, err := idp.New(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		provs = append(provs, p)
	}
	e := newEnv(t, func(o *Options) { o.Providers = provs })
	u := e.user("alice")
	if err := e.st.SaveProviderToken(t.Context(), &store.ProviderToken{UserID: u.ID, Provider: "kakao-b", AccessToken: "at", UpdatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.ProviderToken(t.Context(), u.ID, "kakao"); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("by an ambiguous type: %v, want not configured", err)
	}
	if tok, err := e.srv.ProviderToken(t.Context(), u.ID, "kakao-b"); err != nil || tok.AccessToken != "at" {
		t.Errorf("by name: %v, %v", tok, err)
	}
}
