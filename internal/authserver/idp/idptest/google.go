package idptest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// GoogleUser is a Google account of the fake.
type GoogleUser struct {
	Sub                         string // e.g. "110169484474386276334"
	Email                       string
	EmailVerified               bool
	Name, GivenName, FamilyName string
	Picture, Locale             string
}

// DefaultGoogleUser is who logs in to a fake created without users.
func DefaultGoogleUser() GoogleUser {
	return GoogleUser{
		Sub: "110169484474386276334", Email: "user@gmail.com", EmailVerified: true,
		Name: "Test User", GivenName: "Test", FamilyName: "User",
		Picture: "https://lh3.googleusercontent.com/a/photo.jpg", Locale: "ko",
	}
}

// GoogleOptions configure NewGoogle. The zero value is Google as it behaves.
type GoogleOptions struct {
	// ClientID and ClientSecret. Zero: "google-client-id.apps.googleusercontent.com",
	// "google-client-secret".
	ClientID, ClientSecret string
	// Users; the first logs in without a login_hint (sub or email). Zero:
	// DefaultGoogleUser().
	Users []GoogleUser
	// IDTokenOmitEmail leaves email out of id_tokens, so clients need
	// userinfo. Zero: id_tokens carry email, name and picture.
	IDTokenOmitEmail bool
	// TokenTTL is the access token lifetime. Zero: one hour.
	TokenTTL time.Duration
}

// Google is a fake of Google sign-in: discovery, authorize (a refresh token
// only with access_type=offline), token (client_secret_basic or _post),
// JWKS, userinfo (OIDC /v1/userinfo and /oauth2/v2/userinfo) and tokeninfo.
type Google struct {
	*Server
	o     GoogleOptions
	users []GoogleUser // guarded by Server.mu
}

// NewGoogle starts a Google fake, closed when the test ends. opts may be nil.
func NewGoogle(t testing.TB, opts *GoogleOptions) *Google {
	t.Helper()
	var o GoogleOptions
	if opts != nil {
		o = *opts
	}
	o.ClientID = orDefault(o.ClientID, "google-client-id.apps.googleusercontent.com")
	o.ClientSecret = orDefault(o.ClientSecret, "google-client-secret")
	g := &Google{o: o, users: slices.Clone(o.Users)}
	if len(g.users) == 0 {
		g.users = []GoogleUser{DefaultGoogleUser()}
	}
	s := newServer(t, serverOptions{clientID: o.ClientID, clientSecret: o.ClientSecret, ttl: o.TokenTTL})
	g.Server = s
	s.findUserLocked = func(hint string) (string, bool) {
		for _, u := range g.users {
			if hint == "" || u.Sub == hint || strings.EqualFold(u.Email, hint) {
				return u.Sub, true
			}
		}
		return "", false
	}
	s.claimsLocked = func(sub string) map[string]any {
		u, ok := g.userLocked(sub)
		if !ok {
			return nil
		}
		c := map[string]any{"azp": g.clientID, "name": u.Name, "given_name": u.GivenName,
			"family_name": u.FamilyName, "picture": u.Picture, "locale": u.Locale}
		if !g.o.IDTokenOmitEmail {
			c["email"], c["email_verified"] = u.Email, u.EmailVerified
		}
		return c
	}
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery(map[string]string{
		"authorization_endpoint": "/o/oauth2/v2/auth",
		"token_endpoint":         "/token",
		"userinfo_endpoint":      "/v1/userinfo",
		"revocation_endpoint":    "/revoke",
		"jwks_uri":               "/oauth2/v3/certs",
	}, map[string]any{
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}))
	s.mux.HandleFunc("GET /o/oauth2/v2/auth", s.handleAuthorize(authorizeFlavor{}))
	s.mux.HandleFunc("POST /token", s.handleToken(tokenFlavor{
		basic: true, post: true, idToken: true, idTokenRefresh: true, needOffline: true,
		tokenType: "Bearer", scope: "space",
	}))
	s.mux.HandleFunc("GET /oauth2/v3/certs", s.handleJWKS)
	s.mux.HandleFunc("GET /v1/userinfo", g.handleUserInfo(false))
	s.mux.HandleFunc("GET /oauth2/v2/userinfo", g.handleUserInfo(true))
	s.mux.HandleFunc("GET /oauth2/v1/tokeninfo", g.handleTokenInfo)
	s.mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.access, r.Form.Get("token"))
		delete(g.refresh, r.Form.Get("token"))
		w.WriteHeader(http.StatusOK)
	})
	s.start(t)
	return g
}

// Config is an idp.Config for the fake.
func (g *Google) Config() idp.Config {
	return idp.Config{Type: "google", Name: "google", ClientID: g.clientID, ClientSecret: g.clientSecret, Issuer: g.URL()}
}

func (g *Google) userLocked(sub string) (GoogleUser, bool) {
	i := slices.IndexFunc(g.users, func(u GoogleUser) bool { return u.Sub == sub })
	if i < 0 {
		return GoogleUser{}, false
	}
	return g.users[i], true
}

func (g *Google) handleUserInfo(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.userInfoCalls++
		ses, _ := g.bearerLocked(r)
		u, ok := GoogleUser{}, false
		if ses != nil {
			u, ok = g.userLocked(ses.sub)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, "application/json; charset=UTF-8",
				map[string]any{"error": "invalid_request", "error_description": "Invalid Credentials"})
			return
		}
		body := map[string]any{"email": u.Email, "name": u.Name, "given_name": u.GivenName,
			"family_name": u.FamilyName, "picture": u.Picture, "locale": u.Locale}
		if v2 {
			body["id"], body["verified_email"] = u.Sub, u.EmailVerified
		} else {
			body["sub"], body["email_verified"] = u.Sub, u.EmailVerified
		}
		writeJSON(w, http.StatusOK, "application/json; charset=UTF-8", body)
	}
}

func (g *Google) handleTokenInfo(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ses := g.access[r.URL.Query().Get("access_token")]
	if ses == nil || time.Now().After(ses.expiry) {
		writeJSON(w, http.StatusBadRequest, "application/json; charset=UTF-8",
			map[string]any{"error": "invalid_token", "error_description": "Invalid Value"})
		return
	}
	u, _ := g.userLocked(ses.sub)
	writeJSON(w, http.StatusOK, "application/json; charset=UTF-8", map[string]any{
		"issued_to": g.clientID, "audience": g.clientID, "user_id": ses.sub, "scope": ses.scope,
		"expires_in": int(time.Until(ses.expiry) / time.Second), "email": u.Email,
		"verified_email": u.EmailVerified, "access_type": "offline",
	})
}
