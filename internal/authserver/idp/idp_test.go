package idp_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
)

const redirectURI = "https://switchboard.example/auth/callback"

// login is one browser round trip: AuthCodeURL, then the fake's authorize
// redirect, read without following it. extra is added to the authorize URL.
type login struct {
	state, nonce, verifier string
	params                 url.Values // the callback's query
}

func startLogin(t *testing.T, p idp.Provider, fake *idptest.Server, extra url.Values) login {
	t.Helper()
	l := login{state: random(t), nonce: random(t), verifier: random(t) + random(t)}
	sum := sha256.Sum256([]byte(l.verifier))
	u := p.AuthCodeURL(l.state, l.nonce, base64.RawURLEncoding.EncodeToString(sum[:]), redirectURI)
	if len(extra) > 0 {
		u += "&" + extra.Encode()
	}
	resp, err := fake.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: got %s, want 302", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("authorize redirected to %q, want %q", got, redirectURI)
	}
	l.params = loc.Query()
	return l
}

func (l login) exchange(t *testing.T, p idp.Provider) (*idp.Identity, *idp.Token, error) {
	t.Helper()
	if l.params.Get("state") != l.state && l.params.Get("error") == "" {
		t.Fatalf("callback state %q, want %q", l.params.Get("state"), l.state)
	}
	return p.Exchange(context.Background(), l.params, l.verifier, l.nonce, redirectURI)
}

func random(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newProvider(t *testing.T, cfg idp.Config) idp.Provider {
	t.Helper()
	p, err := idp.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// ignoreProfile leaves the raw JSON out of identity comparisons; tests that
// care decode it.
var ignoreProfile = cmpopts.IgnoreFields(idp.Identity{}, "Profile")

func TestFullFlow(t *testing.T) {
	naverUser := idptest.DefaultNaverUser()
	naverIdentity := &idp.Identity{
		Subject: naverUser.ID, Email: naverUser.Email, EmailVerified: true, Name: naverUser.Name,
		Username: naverUser.Nickname, Picture: naverUser.ProfileImage,
	}
	google := idptest.DefaultGoogleUser()
	gh := idptest.DefaultGitHubUser()
	corp := idptest.DefaultOIDCUser()
	kakaoUser := idptest.DefaultKakaoUser()
	worksUser := idptest.DefaultNaverWorksUser()

	tests := []struct {
		name  string
		start func(t *testing.T) (idp.Config, *idptest.Server)
		want  *idp.Identity
		// wantAuth are authorize parameters the provider must send.
		wantAuth url.Values
		// profileCalls is how many profile/userinfo calls the login takes.
		profileCalls int
		wantExpiry   bool
		wantRefresh  bool
		wantBasic    bool
		wantScopes   []string
	}{
		{
			name: "naver oidc, profile from /v1/nid/me",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewNaver(t, nil)
				return f.Config(), f.Server
			},
			want:         naverIdentity,
			wantAuth:     url.Values{"scope": {"openid"}, "code_challenge_method": {"S256"}},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
		},
		{
			name: "naver oidc, everything in the ES256 id_token",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewNaver(t, &idptest.NaverOptions{IDTokenProfile: true, ES256: true, ExpiresInNumber: true})
				return f.Config(), f.Server
			},
			want:       naverIdentity,
			wantExpiry: true, wantRefresh: true,
		},
		{
			name: "naver classic",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewNaver(t, nil)
				return f.ClassicConfig(), f.Server
			},
			want:         naverIdentity,
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
		},
		{
			name: "google",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewGoogle(t, nil)
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: google.Sub, Email: google.Email, EmailVerified: true, Name: google.Name, Picture: google.Picture},
			wantAuth: url.Values{"access_type": {"offline"}, "prompt": {"consent"}, "scope": {"openid email profile"},
				"code_challenge_method": {"S256"}},
			wantExpiry: true, wantRefresh: true, wantBasic: true,
			wantScopes: []string{"openid", "email", "profile"},
		},
		{
			name: "google, email from userinfo",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewGoogle(t, &idptest.GoogleOptions{IDTokenOmitEmail: true})
				return f.Config(), f.Server
			},
			want:         &idp.Identity{Subject: google.Sub, Email: google.Email, EmailVerified: true, Name: google.Name, Picture: google.Picture},
			profileCalls: 1, wantExpiry: true, wantRefresh: true, wantBasic: true,
			wantScopes: []string{"openid", "email", "profile"},
		},
		{
			name: "github",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewGitHub(t, nil)
				cfg := f.Config()
				cfg.Scopes = []string{"read:user", "user:email"}
				return cfg, f.Server
			},
			want:         &idp.Identity{Subject: "583231", Name: gh.Name, Username: gh.Login, Picture: gh.AvatarURL},
			wantAuth:     url.Values{"scope": {"read:user user:email"}},
			profileCalls: 1,
			wantScopes:   []string{"read:user", "user:email"},
		},
		{
			name: "github, the primary address when GitHub verified it",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				u := idptest.DefaultGitHubUser()
				u.Email = "public@example.com"
				u.Emails = []idptest.GitHubEmail{
					{Email: "other@example.com", Verified: true},
					{Email: "octo@example.com", Primary: true, Verified: true},
				}
				f := idptest.NewGitHub(t, &idptest.GitHubOptions{Users: []idptest.GitHubUser{u}})
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: "583231", Name: gh.Name, Username: gh.Login, Picture: gh.AvatarURL,
				Email: "octo@example.com", EmailVerified: true},
			wantAuth:     url.Values{"scope": {"read:user user:email"}},
			profileCalls: 1,
			wantScopes:   []string{"read:user", "user:email"},
		},
		{
			name: "github, an unverified primary address is not taken",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				u := idptest.DefaultGitHubUser()
				u.Email = "public@example.com"
				u.Emails = []idptest.GitHubEmail{{Email: "octo@example.com", Primary: true}}
				f := idptest.NewGitHub(t, &idptest.GitHubOptions{Users: []idptest.GitHubUser{u}})
				return f.Config(), f.Server
			},
			want:         &idp.Identity{Subject: "583231", Name: gh.Name, Username: gh.Login, Picture: gh.AvatarURL, Email: "public@example.com"},
			profileCalls: 1,
			wantScopes:   []string{"read:user", "user:email"},
		},
		{
			name: "github without scope user:email reads no addresses",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				u := idptest.DefaultGitHubUser()
				u.Emails = []idptest.GitHubEmail{{Email: "octo@example.com", Primary: true, Verified: true}}
				f := idptest.NewGitHub(t, &idptest.GitHubOptions{Users: []idptest.GitHubUser{u}})
				cfg := f.Config()
				cfg.Scopes = []string{"read:user"}
				return cfg, f.Server
			},
			want:         &idp.Identity{Subject: "583231", Name: gh.Name, Username: gh.Login, Picture: gh.AvatarURL},
			profileCalls: 1,
			wantScopes:   []string{"read:user"},
		},
		{
			name: "oidc",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewOIDC(t, &idptest.OIDCOptions{IssParam: true})
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: corp.Subject, Email: corp.Email, EmailVerified: true, Name: corp.Name,
				Username: corp.PreferredUsername},
			wantAuth:   url.Values{"scope": {"openid email profile"}, "code_challenge_method": {"S256"}},
			wantExpiry: true, wantRefresh: true, wantBasic: true,
			wantScopes: []string{"openid", "email", "profile"},
		},
		{
			name: "oidc, post auth, no PKCE, RS256, userinfo",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewOIDC(t, &idptest.OIDCOptions{PostAuthOnly: true, NoPKCE: true, RS256: true, IDTokenOmitEmail: true})
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: corp.Subject, Email: corp.Email, EmailVerified: true, Name: corp.Name,
				Username: corp.PreferredUsername},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
			wantScopes: []string{"openid", "email", "profile"},
		},
		{
			name: "kakao oidc, email_verified from userinfo",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewKakao(t, nil)
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: "3141592653", Email: kakaoUser.Email, EmailVerified: true, Name: kakaoUser.Nickname,
				Username: kakaoUser.Nickname, Picture: kakaoUser.Picture},
			wantAuth:     url.Values{"scope": nil, "code_challenge_method": {"S256"}},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
			wantScopes: []string{"account_email", "profile_nickname", "openid"},
		},
		{
			name: "kakao oidc with consent items and a client secret",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewKakao(t, &idptest.KakaoOptions{ClientSecret: "kakao-secret"})
				cfg := f.Config()
				cfg.Scopes = []string{"profile_nickname", "account_email"}
				return cfg, f.Server
			},
			want: &idp.Identity{Subject: "3141592653", Email: kakaoUser.Email, EmailVerified: true, Name: kakaoUser.Nickname,
				Username: kakaoUser.Nickname, Picture: kakaoUser.Picture},
			wantAuth:     url.Values{"scope": {"openid,profile_nickname,account_email"}},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
			wantScopes: []string{"openid", "profile_nickname", "account_email"},
		},
		{
			name: "kakao REST flow, /v2/user/me",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewKakao(t, &idptest.KakaoOptions{NoOIDC: true})
				return f.ClassicConfig(), f.Server
			},
			want: &idp.Identity{Subject: "3141592653", Email: kakaoUser.Email, EmailVerified: true, Name: kakaoUser.Nickname,
				Username: kakaoUser.Nickname, Picture: kakaoUser.Picture},
			wantAuth:     url.Values{"scope": nil, "nonce": nil, "code_challenge_method": {"S256"}},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
			wantScopes: []string{"account_email", "profile_nickname"},
		},
		{
			name: "naverworks",
			start: func(t *testing.T) (idp.Config, *idptest.Server) {
				f := idptest.NewNaverWorks(t, nil)
				return f.Config(), f.Server
			},
			want: &idp.Identity{Subject: worksUser.UserID, Email: worksUser.Email, EmailVerified: true, Name: "김민지",
				Username: "minji"},
			wantAuth:     url.Values{"scope": {"user.profile.read"}, "code_challenge": nil},
			profileCalls: 1, wantExpiry: true, wantRefresh: true,
			wantScopes: []string{"user.profile.read"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fake := tt.start(t)
			p := newProvider(t, cfg)
			l := startLogin(t, p, fake, nil)
			before := time.Now()
			id, tok, err := l.exchange(t, p)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if diff := cmp.Diff(tt.want, id, ignoreProfile); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
			if !json.Valid(id.Profile) {
				t.Errorf("Profile is not JSON: %q", id.Profile)
			}
			if tok.AccessToken == "" {
				t.Error("no access token")
			}
			if got := !tok.Expiry.IsZero(); got != tt.wantExpiry {
				t.Errorf("has expiry = %v, want %v", got, tt.wantExpiry)
			} else if tt.wantExpiry && (tok.Expiry.Before(before.Add(59*time.Minute)) || tok.Expiry.After(time.Now().Add(61*time.Minute))) {
				t.Errorf("expiry %v is not an hour from now", tok.Expiry)
			}
			if got := tok.RefreshToken != ""; got != tt.wantRefresh {
				t.Errorf("has refresh token = %v, want %v", got, tt.wantRefresh)
			}
			if diff := cmp.Diff(tt.wantScopes, tok.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			if got := fake.UserInfoCalls(); got != tt.profileCalls {
				t.Errorf("profile calls = %d, want %d", got, tt.profileCalls)
			}
			auth := fake.AuthorizeRequests()
			if len(auth) != 1 {
				t.Fatalf("%d authorize requests, want 1", len(auth))
			}
			for k, v := range tt.wantAuth {
				if diff := cmp.Diff(v, auth[0][k]); diff != "" {
					t.Errorf("authorize %s (-want +got):\n%s", k, diff)
				}
			}
			reqs := fake.TokenRequests()
			if len(reqs) != 1 {
				t.Fatalf("%d token requests, want 1", len(reqs))
			}
			if reqs[0].BasicAuth != tt.wantBasic {
				t.Errorf("token request used Basic auth = %v, want %v", reqs[0].BasicAuth, tt.wantBasic)
			}
			if !tt.wantBasic && reqs[0].Form.Get("client_secret") != cfg.ClientSecret {
				t.Error("client_secret missing from the token request body")
			}
			if tt.wantBasic && reqs[0].Form.Has("client_secret") {
				t.Error("client_secret in the body of a client_secret_basic request")
			}
		})
	}
}

func TestNaverTokenResponse(t *testing.T) {
	f := idptest.NewNaver(t, nil)
	// The fake's quirk is the point: check it is there.
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {f.ClientID()}, "client_secret": {f.ClientSecret()}}
	_, rt := f.IssueTokens(idptest.DefaultNaverUser().ID, "openid")
	form.Set("refresh_token", rt)
	resp, err := http.PostForm(f.URL()+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw["expires_in"] != "3600" {
		t.Fatalf("fake sent expires_in %#v, want the string \"3600\"", raw["expires_in"])
	}

	// And the provider reads it.
	p := newProvider(t, f.Config())
	for _, cfg := range []idp.Config{f.Config(), f.ClassicConfig()} {
		p = newProvider(t, cfg)
		_, tok, err := startLogin(t, p, f.Server, nil).exchange(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
			t.Errorf("classic=%v: expiry in %v, want an hour", cfg.Classic, d)
		}
	}
}

func TestClientSecretPostEnforced(t *testing.T) {
	f := idptest.NewNaver(t, nil)

	// The fake turns Basic away like NAVER…
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(f.ClientID(), f.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || body.Error != "invalid_client" {
		t.Fatalf("Basic auth: got %d %q, want 401 invalid_client", resp.StatusCode, body.Error)
	}

	// …so a client speaking client_secret_basic (Google's way) fails with a
	// clear error, while the naver provider gets through.
	cfg := f.Config()
	cfg.Type = "google"
	// Explicit endpoints: no discovery to talk it into client_secret_post.
	cfg.AuthURL, cfg.TokenURL, cfg.JWKSURL = f.URL()+"/oauth2/authorize", f.URL()+"/oauth2/token", f.URL()+"/oauth2/jwks"
	g := newProvider(t, cfg)
	_, _, err = startLogin(t, g, f.Server, nil).exchange(t, g)
	var e *idp.Error
	if !errors.As(err, &e) || e.Code != "invalid_client" || e.StatusCode != http.StatusUnauthorized {
		t.Fatalf("basic auth against NAVER: err = %v, want invalid_client", err)
	}
	if !strings.HasPrefix(err.Error(), "naver: token endpoint: invalid_client: ") {
		t.Errorf("error text %q", err)
	}
	if strings.Contains(err.Error(), f.ClientSecret()) {
		t.Errorf("error %q leaks the client secret", err)
	}

	n := newProvider(t, f.Config())
	if _, _, err := startLogin(t, n, f.Server, nil).exchange(t, n); err != nil {
		t.Fatalf("naver: %v", err)
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name   string
		rotate bool
		start  func(t *testing.T, rotate bool) (idp.Config, *idptest.Server)
	}{
		{"naver", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewNaver(t, &idptest.NaverOptions{RotateRefreshTokens: rotate})
			return f.Config(), f.Server
		}},
		{"naver rotating", true, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewNaver(t, &idptest.NaverOptions{RotateRefreshTokens: rotate})
			return f.Config(), f.Server
		}},
		{"naver classic", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewNaver(t, &idptest.NaverOptions{RotateRefreshTokens: rotate})
			return f.ClassicConfig(), f.Server
		}},
		{"google", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewGoogle(t, nil)
			return f.Config(), f.Server
		}},
		{"kakao", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewKakao(t, nil)
			return f.Config(), f.Server
		}},
		{"kakao REST", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewKakao(t, &idptest.KakaoOptions{NoOIDC: true})
			return f.ClassicConfig(), f.Server
		}},
		{"naverworks", false, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewNaverWorks(t, nil)
			return f.Config(), f.Server
		}},
		{"oidc rotating", true, func(t *testing.T, rotate bool) (idp.Config, *idptest.Server) {
			f := idptest.NewOIDC(t, &idptest.OIDCOptions{RotateRefreshTokens: rotate})
			return f.Config(), f.Server
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fake := tt.start(t, tt.rotate)
			p := newProvider(t, cfg)
			_, tok, err := startLogin(t, p, fake, nil).exchange(t, p)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			next, err := p.Refresh(ctx, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if next.AccessToken == "" || next.AccessToken == tok.AccessToken {
				t.Errorf("refresh gave access token %q", next.AccessToken)
			}
			if next.Expiry.IsZero() {
				t.Error("refreshed token has no expiry")
			}
			if rotated := next.RefreshToken != tok.RefreshToken; rotated != tt.rotate {
				t.Errorf("refresh token rotated = %v, want %v", rotated, tt.rotate)
			}
			// The refresh token Refresh hands back is the one to use next.
			if _, err := p.Refresh(ctx, next.RefreshToken); err != nil {
				t.Fatalf("second Refresh: %v", err)
			}
			if got := fake.Refreshes(); got != 2 {
				t.Errorf("fake saw %d refreshes, want 2", got)
			}
			if tt.rotate {
				_, err := p.Refresh(ctx, tok.RefreshToken)
				var e *idp.Error
				if !errors.As(err, &e) || e.Code != "invalid_grant" {
					t.Errorf("refresh with a rotated-out token: err = %v, want invalid_grant", err)
				}
			}
			if reqs := fake.TokenRequests(); reqs[1].Form.Get("grant_type") != "refresh_token" {
				t.Errorf("refresh request form %v", reqs[1].Form)
			}
		})
	}
}

func TestGitHubNoRefresh(t *testing.T) {
	f := idptest.NewGitHub(t, nil)
	p := newProvider(t, f.Config())
	_, tok, err := startLogin(t, p, f.Server, nil).exchange(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || !tok.Expiry.IsZero() {
		t.Errorf("GitHub OAuth app token has refresh %q, expiry %v; want neither", tok.RefreshToken, tok.Expiry)
	}
	if _, err := p.Refresh(context.Background(), tok.RefreshToken); !errors.Is(err, idp.ErrNoRefresh) {
		t.Errorf("Refresh: err = %v, want ErrNoRefresh", err)
	}
	if n := len(f.TokenRequests()); n != 1 {
		t.Errorf("Refresh called the token endpoint (%d calls)", n)
	}
}

func TestGitHubUser(t *testing.T) {
	f := idptest.NewGitHub(t, &idptest.GitHubOptions{Users: []idptest.GitHubUser{
		{ID: 9007199254740993, Login: "big", Email: "big@example.com"}, // beyond float64 precision
		{ID: 2, Login: "other"},
	}})
	p := newProvider(t, f.Config())
	id, _, err := startLogin(t, p, f.Server, nil).exchange(t, p)
	if err != nil {
		t.Fatal(err)
	}
	want := &idp.Identity{Subject: "9007199254740993", Username: "big", Email: "big@example.com"}
	if diff := cmp.Diff(want, id, ignoreProfile); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	id, _, err = startLogin(t, p, f.Server, url.Values{"login": {"other"}}).exchange(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "2" || id.Email != "" {
		t.Errorf("second user: subject %q email %q", id.Subject, id.Email)
	}

	// A spent code: GitHub answers 200 with an error.
	l := startLogin(t, p, f.Server, nil)
	if _, _, err := l.exchange(t, p); err != nil {
		t.Fatal(err)
	}
	_, _, err = l.exchange(t, p)
	var e *idp.Error
	if !errors.As(err, &e) || e.Code != "bad_verification_code" {
		t.Fatalf("reused code: err = %v, want bad_verification_code", err)
	}
}

func TestGitHubFormEncodedWithoutAccept(t *testing.T) {
	f := idptest.NewGitHub(t, nil)
	resp, err := http.PostForm(f.URL()+"/login/oauth/access_token", url.Values{
		"client_id": {f.ClientID()}, "client_secret": {f.ClientSecret()}, "code": {"nope"}, "grant_type": {"authorization_code"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		t.Errorf("Content-Type %q, want form-encoded", ct)
	}
}

// TestRefused covers answers that must not log anyone in.
func TestRefused(t *testing.T) {
	type fakeMaker func(t *testing.T) (idp.Config, *idptest.Server)
	naver := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewNaver(t, nil)
		return f.Config(), f.Server
	}
	naverClassic := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewNaver(t, nil)
		return f.ClassicConfig(), f.Server
	}
	google := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewGoogle(t, nil)
		return f.Config(), f.Server
	}
	github := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewGitHub(t, nil)
		return f.Config(), f.Server
	}
	corp := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewOIDC(t, nil)
		return f.Config(), f.Server
	}
	corpIss := func(t *testing.T) (idp.Config, *idptest.Server) {
		f := idptest.NewOIDC(t, &idptest.OIDCOptions{IssParam: true})
		return f.Config(), f.Server
	}
	const evil = "https://evil.example"

	tests := []struct {
		name   string
		start  fakeMaker
		faults idptest.Faults
		// tamper edits the callback's query before Exchange.
		tamper  func(url.Values)
		wantIs  error
		wantErr string // for *idp.Error: its Code
	}{
		{"naver nonce mismatch", naver, idptest.Faults{Nonce: "other"}, nil, idp.ErrInvalidIDToken, ""},
		{"google nonce mismatch", google, idptest.Faults{Nonce: "other"}, nil, idp.ErrInvalidIDToken, ""},
		{"oidc nonce mismatch", corp, idptest.Faults{Nonce: "other"}, nil, idp.ErrInvalidIDToken, ""},
		{"naver id_token iss", naver, idptest.Faults{IDTokenIssuer: evil}, nil, idp.ErrInvalidIDToken, ""},
		{"google id_token iss", google, idptest.Faults{IDTokenIssuer: evil}, nil, idp.ErrInvalidIDToken, ""},
		{"oidc id_token iss", corp, idptest.Faults{IDTokenIssuer: evil}, nil, idp.ErrInvalidIDToken, ""},
		{"naver iss parameter", naver, idptest.Faults{IssParam: evil}, nil, idp.ErrIssuerMismatch, ""},
		{"naver classic iss parameter", naverClassic, idptest.Faults{IssParam: evil}, nil, idp.ErrIssuerMismatch, ""},
		{"google iss parameter", google, idptest.Faults{IssParam: evil}, nil, idp.ErrIssuerMismatch, ""},
		{"oidc iss parameter", corp, idptest.Faults{IssParam: evil}, nil, idp.ErrIssuerMismatch, ""},
		{"oidc advertised iss parameter wrong", corpIss, idptest.Faults{IssParam: evil}, nil, idp.ErrIssuerMismatch, ""},
		{"oidc advertised iss parameter missing", corpIss, idptest.Faults{}, func(q url.Values) { q.Del("iss") }, idp.ErrIssuerMismatch, ""},
		{"oidc audience", corp, idptest.Faults{IDTokenAudience: "someone-else"}, nil, idp.ErrInvalidIDToken, ""},
		{"oidc expired id_token", corp, idptest.Faults{ExpiredIDToken: true}, nil, idp.ErrInvalidIDToken, ""},
		{"naver unknown signing key", naver, idptest.Faults{UnknownSigningKey: true}, nil, idp.ErrInvalidIDToken, ""},
		{"oidc unknown signing key", corp, idptest.Faults{UnknownSigningKey: true}, nil, idp.ErrInvalidIDToken, ""},
		{"naver user cancels", naver, idptest.Faults{DenyConsent: true}, nil, nil, "access_denied"},
		{"github user cancels", github, idptest.Faults{DenyConsent: true}, nil, nil, "access_denied"},
		{"naver wrong verifier", naver, idptest.Faults{}, nil, nil, "invalid_grant"},
		{"naver classic wrong state", naverClassic, idptest.Faults{}, func(q url.Values) { q.Set("state", "forged") }, nil, "invalid_request"},
		{"naver profile 024", naver, idptest.Faults{ProfileResultCode: "024"}, nil, nil, "024"},
		{"naver profile 028", naverClassic, idptest.Faults{ProfileResultCode: "028"}, nil, nil, "028"},
		{"naver profile 200 with resultcode 500", naverClassic, idptest.Faults{ProfileResultCode: "500"}, nil, nil, "500"},
		{"missing code", corp, idptest.Faults{}, func(q url.Values) { q.Del("code") }, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fake := tt.start(t)
			fake.SetFaults(tt.faults)
			p := newProvider(t, cfg)
			l := startLogin(t, p, fake, nil)
			if tt.tamper != nil {
				tt.tamper(l.params)
			}
			if strings.Contains(tt.name, "wrong verifier") {
				l.verifier = random(t) + random(t)
			}
			id, tok, err := p.Exchange(context.Background(), l.params, l.verifier, l.nonce, redirectURI)
			if err == nil {
				t.Fatalf("Exchange succeeded: %+v, %+v", id, tok)
			}
			if id != nil || tok != nil {
				t.Errorf("Exchange returned %v, %v with an error", id, tok)
			}
			t.Logf("error: %v", err)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
			if tt.wantErr != "" {
				var e *idp.Error
				if !errors.As(err, &e) || e.Code != tt.wantErr {
					t.Errorf("err = %v, want *idp.Error with code %q", err, tt.wantErr)
				}
			}
			if !strings.HasPrefix(err.Error(), cfg.Name+": ") {
				t.Errorf("error %q does not name the provider", err)
			}
			for _, secret := range []string{cfg.ClientSecret, l.params.Get("code"), l.verifier} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestNaverProfileErrorText(t *testing.T) {
	tests := []struct {
		code, want string
	}{
		{"024", "naver: profile endpoint: 024: authentication failed: access token invalid or expired"},
		{"028", "naver: profile endpoint: 028: no access token in the Authorization header"},
		{"999", "naver: profile endpoint: 999: fault injected by idptest"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			f := idptest.NewNaver(t, nil)
			f.SetFaults(idptest.Faults{ProfileResultCode: tt.code})
			p := newProvider(t, f.ClassicConfig())
			_, _, err := startLogin(t, p, f.Server, nil).exchange(t, p)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestLoginHintPicksUser(t *testing.T) {
	f := idptest.NewNaver(t, &idptest.NaverOptions{Users: []idptest.NaverUser{
		{ID: "1", Email: "a@naver.com", Name: "A"},
		{ID: "2", Email: "b@naver.com", Name: "B"},
	}})
	p := newProvider(t, f.Config())
	for _, tt := range []struct{ hint, want string }{{"", "1"}, {"2", "2"}, {"b@naver.com", "2"}} {
		id, _, err := startLogin(t, p, f.Server, url.Values{"login_hint": {tt.hint}}).exchange(t, p)
		if err != nil {
			t.Fatal(err)
		}
		if id.Subject != tt.want {
			t.Errorf("login_hint %q: subject %q, want %q", tt.hint, id.Subject, tt.want)
		}
	}
	f.SetUser(idptest.NaverUser{ID: "3", Email: "c@naver.com", Name: "C"})
	id, _, err := startLogin(t, p, f.Server, nil).exchange(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "3" || id.Name != "C" {
		t.Errorf("after SetUser: %+v", id)
	}
}

func TestNew(t *testing.T) {
	ctx := context.Background()
	corp := idptest.NewOIDC(t, nil)

	t.Run("defaults need no network", func(t *testing.T) {
		for _, typ := range []string{"naver", "google", "github"} {
			// A client that fails every request proves New made none.
			c := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				return nil, errors.New("no network")
			})}
			p, err := idp.New(ctx, idp.Config{Type: typ, ClientID: "id", ClientSecret: "secret"}, c)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			u, _ := url.Parse(p.AuthCodeURL("s", "n", "c", redirectURI))
			want := map[string]string{
				"naver":  "https://nid.naver.com/oauth2/authorize",
				"google": "https://accounts.google.com/o/oauth2/v2/auth",
				"github": "https://github.com/login/oauth/authorize",
			}[typ]
			if got := u.Scheme + "://" + u.Host + u.Path; got != want {
				t.Errorf("%s authorize URL %q, want %q", typ, got, want)
			}
			if p.Name() != typ {
				t.Errorf("Name() = %q, want %q", p.Name(), typ)
			}
		}
	})
	t.Run("display names", func(t *testing.T) {
		got := map[string]string{}
		for _, cfg := range []idp.Config{
			{Type: "naver", ClientID: "id", ClientSecret: "s"},
			{Type: "naver", ClientID: "id", ClientSecret: "s", Classic: true, Name: "naver-classic"},
			{Type: "google", ClientID: "id"},
			{Type: "github", ClientID: "id", ClientSecret: "s"},
			corp.Config(),
		} {
			got[newProvider(t, cfg).Name()] = newProvider(t, cfg).DisplayName()
		}
		want := map[string]string{"naver": "NAVER", "naver-classic": "NAVER", "google": "Google", "github": "GitHub", "corp": "Corp SSO"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("naver classic URL", func(t *testing.T) {
		p := newProvider(t, idp.Config{Type: "naver", Classic: true, ClientID: "id", ClientSecret: "s"})
		u, _ := url.Parse(p.AuthCodeURL("st", "n", "chal", redirectURI))
		if u.Host+u.Path != "nid.naver.com/oauth2.0/authorize" {
			t.Errorf("classic authorize URL %s", u)
		}
		q := u.Query()
		if q.Get("state") != "st" || q.Has("code_challenge") || q.Has("nonce") {
			t.Errorf("classic authorize query %v: want state, no PKCE, no nonce", q)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, cfg := range []idp.Config{
			{Type: "naver"},
			{Type: "saml", ClientID: "id"},
			{Type: "oidc", ClientID: "id"},
			{Type: "github", ClientID: "id"},
		} {
			if _, err := idp.New(ctx, cfg, nil); err == nil {
				t.Errorf("New(%+v) succeeded", cfg)
			}
		}
	})
	t.Run("issuer mismatch in discovery", func(t *testing.T) {
		cfg := corp.Config()
		cfg.Issuer = corp.URL() + "/"
		if _, err := idp.New(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "names issuer") {
			t.Errorf("err = %v, want issuer mismatch", err)
		}
	})
	t.Run("discovery is bounded by ctx", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		hang := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			select {
			case <-r.Context().Done():
				return nil, r.Context().Err()
			case <-block:
				return nil, errors.New("unblocked")
			}
		})}
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := idp.New(ctx, idp.Config{Type: "oidc", Issuer: "https://hangs.example", ClientID: "id"}, hang)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("New took %v", d)
		}
	})
	t.Run("endpoint overrides skip discovery", func(t *testing.T) {
		cfg := corp.Config()
		cfg.Issuer = "https://login.corp.example"
		cfg.AuthURL, cfg.TokenURL, cfg.JWKSURL = "https://proxy.example/a", "https://proxy.example/t", "https://proxy.example/k"
		p, err := idp.New(ctx, cfg, &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("no network")
		})})
		if err != nil {
			t.Fatal(err)
		}
		if u := p.AuthCodeURL("s", "n", "c", redirectURI); !strings.HasPrefix(u, "https://proxy.example/a?") {
			t.Errorf("AuthCodeURL %q", u)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
