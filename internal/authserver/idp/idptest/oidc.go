package idptest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// OIDCUser is an account of the generic OIDC fake.
type OIDCUser struct {
	Subject           string
	Email             string
	EmailVerified     bool
	Name              string
	PreferredUsername string
	Picture           string
}

// DefaultOIDCUser is who logs in to a fake created without users.
func DefaultOIDCUser() OIDCUser {
	return OIDCUser{Subject: "u-1001", Email: "alice@corp.example", EmailVerified: true, Name: "Alice Kim", PreferredUsername: "alice"}
}

// OIDCOptions configure NewOIDC.
type OIDCOptions struct {
	// ClientID and ClientSecret. Zero: "oidc-client-id", "oidc-client-secret".
	ClientID, ClientSecret string
	// Users; the first logs in without a login_hint (subject, email or
	// preferred_username). Zero: DefaultOIDCUser().
	Users []OIDCUser
	// IssParam advertises authorization_response_iss_parameter_supported and
	// adds iss to authorize redirects (RFC 9207).
	IssParam bool
	// RotateRefreshTokens issues a new refresh token on every refresh,
	// invalidating the old one. Zero: refresh tokens are reused.
	RotateRefreshTokens bool
	// RS256 signs id_tokens with RS256. Zero: ES256.
	RS256 bool
	// PostAuthOnly advertises and accepts only client_secret_post. Zero:
	// only client_secret_basic, the OIDC default.
	PostAuthOnly bool
	// NoPKCE advertises no PKCE support (code_challenge_methods_supported
	// ["plain"]). Zero: S256.
	NoPKCE bool
	// IDTokenOmitEmail leaves email out of id_tokens. Zero: id_tokens carry
	// email, name, preferred_username and picture.
	IDTokenOmitEmail bool
	// TokenTTL is the access token lifetime. Zero: one hour.
	TokenTTL time.Duration
}

// OIDC is a generic OpenID Connect issuer: discovery, /authorize, /token,
// /jwks and /userinfo.
type OIDC struct {
	*Server
	o     OIDCOptions
	users []OIDCUser // guarded by Server.mu
}

// NewOIDC starts a generic OIDC fake, closed when the test ends. opts may be nil.
func NewOIDC(t testing.TB, opts *OIDCOptions) *OIDC {
	t.Helper()
	var o OIDCOptions
	if opts != nil {
		o = *opts
	}
	o.ClientID = orDefault(o.ClientID, "oidc-client-id")
	o.ClientSecret = orDefault(o.ClientSecret, "oidc-client-secret")
	f := &OIDC{o: o, users: slices.Clone(o.Users)}
	if len(f.users) == 0 {
		f.users = []OIDCUser{DefaultOIDCUser()}
	}
	s := newServer(t, serverOptions{
		clientID: o.ClientID, clientSecret: o.ClientSecret, es256: !o.RS256,
		issParam: o.IssParam, ttl: o.TokenTTL, rotate: o.RotateRefreshTokens,
	})
	f.Server = s
	s.findUserLocked = func(hint string) (string, bool) {
		for _, u := range f.users {
			if hint == "" || u.Subject == hint || strings.EqualFold(u.Email, hint) || u.PreferredUsername == hint {
				return u.Subject, true
			}
		}
		return "", false
	}
	s.claimsLocked = func(sub string) map[string]any {
		u, ok := f.userLocked(sub)
		if !ok {
			return nil
		}
		c := map[string]any{"name": u.Name, "preferred_username": u.PreferredUsername, "picture": u.Picture}
		if !o.IDTokenOmitEmail {
			c["email"], c["email_verified"] = u.Email, u.EmailVerified
		}
		return c
	}
	methods := []string{"S256"}
	if o.NoPKCE {
		methods = []string{"plain"}
	}
	auth := []string{"client_secret_basic"}
	if o.PostAuthOnly {
		auth = []string{"client_secret_post"}
	}
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery(map[string]string{
		"authorization_endpoint": "/authorize",
		"token_endpoint":         "/token",
		"userinfo_endpoint":      "/userinfo",
		"jwks_uri":               "/jwks",
	}, map[string]any{
		"scopes_supported":                      []string{"openid", "email", "profile", "offline_access"},
		"code_challenge_methods_supported":      methods,
		"token_endpoint_auth_methods_supported": auth,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}))
	s.mux.HandleFunc("GET /authorize", s.handleAuthorize(authorizeFlavor{}))
	s.mux.HandleFunc("POST /token", s.handleToken(tokenFlavor{
		basic: !o.PostAuthOnly, post: o.PostAuthOnly, idToken: true, tokenType: "Bearer", scope: "space",
	}))
	s.mux.HandleFunc("GET /jwks", s.handleJWKS)
	s.mux.HandleFunc("GET /userinfo", f.handleUserInfo)
	s.start(t)
	return f
}

// Config is an idp.Config for the fake, named "corp".
func (f *OIDC) Config() idp.Config {
	return idp.Config{Type: "oidc", Name: "corp", DisplayName: "Corp SSO", ClientID: f.clientID, ClientSecret: f.clientSecret, Issuer: f.URL()}
}

func (f *OIDC) userLocked(sub string) (OIDCUser, bool) {
	i := slices.IndexFunc(f.users, func(u OIDCUser) bool { return u.Subject == sub })
	if i < 0 {
		return OIDCUser{}, false
	}
	return f.users[i], true
}

func (f *OIDC) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userInfoCalls++
	ses, _ := f.bearerLocked(r)
	u, ok := OIDCUser{}, false
	if ses != nil {
		u, ok = f.userLocked(ses.sub)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]any{"error": "invalid_token", "error_description": "access token invalid or expired"})
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"sub": u.Subject, "email": u.Email, "email_verified": u.EmailVerified, "name": u.Name,
		"preferred_username": u.PreferredUsername, "picture": u.Picture,
	})
}
