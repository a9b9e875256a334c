package idptest

// Kakao Login as the fake speaks it (Kakao Developers, "카카오 로그인 >
// REST API" and "OpenID Connect", and "문제 해결" for error codes):
//
//   - Authorize: GET https://kauth.kakao.com/oauth/authorize with
//     response_type=code, client_id (the app's REST API key), redirect_uri,
//     state, and optionally scope (consent item ids joined by commas, e.g.
//     "openid,profile_nickname,account_email"), nonce, code_challenge and
//     code_challenge_method=S256. Without scope Kakao asks for the consent
//     items set up for the app; an app with OpenID Connect enabled then
//     gets an id_token too, but when scope is given it must include openid.
//     Consent refused: redirect with error=access_denied,
//     error_description=User denied access.
//   - Token: POST https://kauth.kakao.com/oauth/token, Content-Type
//     application/x-www-form-urlencoded;charset=utf-8, grant_type,
//     client_id, redirect_uri, code, code_verifier and client_secret (only
//     when the app enabled it; then it is required). Answer:
//     {"token_type":"bearer","access_token":...,"id_token":...,
//     "expires_in":21599,"refresh_token":...,"refresh_token_expires_in":5183999,
//     "scope":"account_email profile_nickname openid"} — scope comes back
//     space-separated. Errors are HTTP 400/401 with
//     {"error":"invalid_grant","error_description":"authorization code not
//     found for code=...","error_code":"KOE320"} (KOE010 invalid_client:
//     bad client secret). The description may quote the code.
//   - Refresh: grant_type=refresh_token, client_id, refresh_token
//     (client_secret when enabled); refresh_token is in the answer only when
//     Kakao renewed it (less than a month left), so the old one stays.
//   - ID token: RS256, iss https://kauth.kakao.com, aud the REST API key,
//     sub the user number as a string, nonce, and nickname, picture, email
//     per consent; no email_verified. JWKS at
//     https://kauth.kakao.com/.well-known/jwks.json; discovery at
//     https://kauth.kakao.com/.well-known/openid-configuration.
//   - OIDC userinfo: GET https://kapi.kakao.com/v1/oidc/userinfo with
//     Authorization: Bearer: {"sub":"1234567890","nickname":"홍길동",
//     "picture":...,"email":"...","email_verified":true}.
//   - REST profile: GET https://kapi.kakao.com/v2/user/me:
//     {"id":1234567890,"connected_at":"...","properties":{"nickname":...},
//     "kakao_account":{"profile_nickname_needs_agreement":false,
//     "profile":{"nickname":"홍길동","profile_image_url":...},
//     "email_needs_agreement":false,"is_email_valid":true,
//     "is_email_verified":true,"email":"..."}}. id is a JSON number.
//   - kapi errors: {"msg":"this access token does not exist","code":-401}
//     with HTTP 401; -402 (403) when a consent item is missing.
//
// The fake serves kauth and kapi on one host.

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// KakaoUser is an account of the Kakao fake.
type KakaoUser struct {
	ID            int64 // 회원번호, the id_token's sub in decimal
	Nickname      string
	Email         string
	EmailVerified bool // is_email_verified (and is_email_valid)
	Picture       string
}

// DefaultKakaoUser is who logs in to a fake created without users.
func DefaultKakaoUser() KakaoUser {
	return KakaoUser{ID: 3141592653, Nickname: "라이언", Email: "ryan@kakao.com", EmailVerified: true,
		Picture: "http://k.kakaocdn.net/dn/profile.jpg"}
}

// KakaoOptions configure NewKakao.
type KakaoOptions struct {
	// ClientID is the REST API key. Zero: "kakao-rest-api-key".
	ClientID string
	// ClientSecret, when set, is enabled for the app and required at the
	// token endpoint. Zero: the app has no client secret.
	ClientSecret string
	// Users; the first logs in without a login_hint (id, email or
	// nickname). Zero: DefaultKakaoUser().
	Users []KakaoUser
	// NoOIDC is an app without OpenID Connect: no id_token is issued.
	NoOIDC bool
	// TokenTTL is the access token lifetime. Zero: one hour.
	TokenTTL time.Duration
}

// Kakao fakes Kakao Login (kauth.kakao.com) and the user APIs of
// kapi.kakao.com.
type Kakao struct {
	*Server
	o     KakaoOptions
	users []KakaoUser // guarded by Server.mu
}

// NewKakao starts a Kakao fake, closed when the test ends. opts may be nil.
func NewKakao(t testing.TB, opts *KakaoOptions) *Kakao {
	t.Helper()
	var o KakaoOptions
	if opts != nil {
		o = *opts
	}
	o.ClientID = orDefault(o.ClientID, "kakao-rest-api-key")
	k := &Kakao{o: o, users: slices.Clone(o.Users)}
	if len(k.users) == 0 {
		k.users = []KakaoUser{DefaultKakaoUser()}
	}
	s := newServer(t, serverOptions{clientID: o.ClientID, clientSecret: o.ClientSecret, ttl: o.TokenTTL})
	k.Server = s
	s.findUserLocked = func(hint string) (string, bool) {
		for _, u := range k.users {
			id := strconv.FormatInt(u.ID, 10)
			if hint == "" || hint == id || hint == u.Email || hint == u.Nickname {
				return id, true
			}
		}
		return "", false
	}
	s.claimsLocked = func(sub string) map[string]any {
		u, ok := k.userLocked(sub)
		if !ok {
			return nil
		}
		return map[string]any{"nickname": u.Nickname, "picture": u.Picture, "email": u.Email}
	}
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery(map[string]string{
		"authorization_endpoint": "/oauth/authorize",
		"token_endpoint":         "/oauth/token",
		"userinfo_endpoint":      "/v1/oidc/userinfo",
		"jwks_uri":               "/.well-known/jwks.json",
	}, map[string]any{
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}))
	s.mux.HandleFunc("GET /oauth/authorize", s.handleAuthorize(authorizeFlavor{}))
	s.mux.HandleFunc("/oauth/token", s.handleToken(tokenFlavor{
		post: true, kakao: true, kakaoOIDC: !o.NoOIDC, tokenType: "bearer", scope: "space",
	}))
	s.mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	s.mux.HandleFunc("GET /v1/oidc/userinfo", k.handleUserInfo)
	s.mux.HandleFunc("/v2/user/me", k.handleUserMe)
	s.start(t)
	return k
}

// Config is an idp.Config for the fake with OpenID Connect, named "kakao".
func (k *Kakao) Config() idp.Config {
	return idp.Config{Type: "kakao", Name: "kakao", ClientID: k.clientID, ClientSecret: k.clientSecret, Issuer: k.URL()}
}

// ClassicConfig is an idp.Config for the fake's REST flow without OIDC.
func (k *Kakao) ClassicConfig() idp.Config {
	c := k.Config()
	c.Classic = true
	return c
}

func (k *Kakao) userLocked(sub string) (KakaoUser, bool) {
	i := slices.IndexFunc(k.users, func(u KakaoUser) bool { return strconv.FormatInt(u.ID, 10) == sub })
	if i < 0 {
		return KakaoUser{}, false
	}
	return k.users[i], true
}

// bearerUserLocked answers kapi's -401 and returns false when the request
// has no valid access token.
func (k *Kakao) bearerUserLocked(w http.ResponseWriter, r *http.Request) (KakaoUser, bool) {
	k.userInfoCalls++
	ses, missing := k.bearerLocked(r)
	var u KakaoUser
	ok := false
	if ses != nil {
		u, ok = k.userLocked(ses.sub)
	}
	if !ok {
		msg := "this access token does not exist"
		if missing {
			msg = "no authentication key!"
		}
		writeJSON(w, http.StatusUnauthorized, "application/json;charset=UTF-8", map[string]any{"msg": msg, "code": -401})
	}
	return u, ok
}

func (k *Kakao) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	u, ok := k.bearerUserLocked(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, "application/json;charset=UTF-8", map[string]any{
		"sub": strconv.FormatInt(u.ID, 10), "nickname": u.Nickname, "picture": u.Picture,
		"email": u.Email, "email_verified": u.EmailVerified,
	})
}

func (k *Kakao) handleUserMe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	u, ok := k.bearerUserLocked(w, r)
	if !ok {
		return
	}
	// The number is written as a JSON number, as Kakao does.
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	fmt.Fprintf(w, `{"id":%d,"connected_at":"2026-01-02T03:04:05Z","properties":{"nickname":%q},`+
		`"kakao_account":{"profile_nickname_needs_agreement":false,"profile":{"nickname":%q,"profile_image_url":%q,"is_default_image":false},`+
		`"email_needs_agreement":false,"is_email_valid":%t,"is_email_verified":%t,"email":%q}}`,
		u.ID, u.Nickname, u.Nickname, u.Picture, u.EmailVerified, u.EmailVerified, u.Email)
}
