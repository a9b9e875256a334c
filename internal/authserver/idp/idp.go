// Package idp signs users in with external identity providers — NAVER login,
// Kakao Login, NAVER WORKS, Google, GitHub and any OpenID Connect issuer — on behalf of the
// authorization server. It owns the provider side of the login: the authorize
// URL, the code exchange, id_token verification and profile lookups, each
// speaking the provider's real wire format (shared/WIRE.md), quirks included.
//
// Only internal/authserver imports it. Tests use the fakes in idptest.
package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Provider is an external identity provider users sign in with.
type Provider interface {
	Name() string        // config name, e.g. "naver", "google", "github", "corp"
	Type() string        // Config.Type, e.g. "naver", "kakao", "naverworks", "oidc"
	DisplayName() string // e.g. "NAVER", "Google", "GitHub"
	// AuthCodeURL returns where to send the browser. pkceChallenge is the
	// S256 challenge of a verifier the caller keeps (ignored by providers
	// without PKCE); nonce is checked in the id_token where there is one.
	// Empty arguments are left out of the URL.
	AuthCodeURL(state, nonce, pkceChallenge, redirectURI string) string
	// Exchange redeems the code in the callback's query values params and
	// identifies the user. It verifies the id_token (signature via JWKS, iss,
	// aud, exp, nonce) where the provider has one, and otherwise calls the
	// provider's profile endpoint once. The caller has already compared
	// params' state with the one it sent.
	//
	// RFC 9207: when the provider advertises
	// authorization_response_iss_parameter_supported, or params carry iss,
	// iss must equal the issuer (ErrIssuerMismatch otherwise).
	Exchange(ctx context.Context, params url.Values, pkceVerifier, nonce, redirectURI string) (*Identity, *Token, error)
	// Refresh gets a new token. It returns ErrNoRefresh for providers
	// without refresh (GitHub OAuth apps) and for an empty refreshToken.
	Refresh(ctx context.Context, refreshToken string) (*Token, error)
}

// Identity is who signed in, as the provider tells it.
type Identity struct {
	// Subject is the provider's stable user id: the id_token's sub, NAVER's
	// response.id (classic mode), GitHub's numeric id in decimal.
	Subject string
	Email   string
	// EmailVerified is true when the provider says so explicitly
	// (email_verified / verified_email) and for NAVER, whose profile
	// e-mail is the account's own address (NAVER's profile API has no flag;
	// the address is the naver.com mailbox or the one confirmed at sign-up).
	// For GitHub it is the primary address of /user/emails when GitHub has
	// verified it (scope user:email); the user API's public address is not.
	EmailVerified bool
	Name          string
	Username      string // preferred_username, NAVER nickname, GitHub login
	Picture       string
	// Profile is the raw JSON the identity was read from: the profile or
	// userinfo response's user object when one was fetched, the id_token's
	// claims otherwise.
	Profile []byte
}

// Token is what the provider's token endpoint issued.
type Token struct {
	AccessToken  string
	RefreshToken string // after Refresh, the old one when the provider did not rotate it
	TokenType    string
	IDToken      string    // raw JWT, verified only by Exchange
	Expiry       time.Time // zero: the provider gave no expiry
	Scopes       []string  // nil: the provider did not report them
}

var (
	// ErrNoRefresh means the provider cannot refresh this token.
	ErrNoRefresh = errors.New("provider does not support token refresh")
	// ErrIssuerMismatch means the authorization response's iss parameter is
	// missing or names another issuer (RFC 9207 mix-up defence).
	ErrIssuerMismatch = errors.New("authorization response issuer mismatch")
	// ErrInvalidIDToken means the id_token failed verification: signature,
	// iss, aud, exp or nonce.
	ErrInvalidIDToken = errors.New("invalid id_token")
)

// Error is an error answer from a provider: an OAuth error in the
// authorization response or from the token endpoint, or a failed profile or
// userinfo call. Its text carries the provider's own code and description and
// never a secret or token.
type Error struct {
	Provider string // Config.Name
	// Endpoint is "authorization response", "token endpoint",
	// "profile endpoint" or "userinfo endpoint".
	Endpoint   string
	StatusCode int    // HTTP status; 0 for the authorization response
	Code       string // OAuth error code or NAVER resultcode, e.g. "invalid_grant", "024"
	// ProviderCode is the provider's own code next to the OAuth one, e.g.
	// Kakao's error_code "KOE320"; "" for most providers.
	ProviderCode string
	Description  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider + ": " + e.Endpoint)
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.ProviderCode != "" {
		b.WriteString(" (" + e.ProviderCode + ")")
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.Code == "" && e.Description == "" && e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return b.String()
}

// Config is one provider's configuration.
type Config struct {
	Type        string // "naver" | "kakao" | "naverworks" | "google" | "github" | "oidc"
	Name        string // zero: Type
	DisplayName string // zero: "NAVER", "Google", "GitHub", or Name for "oidc"
	ClientID    string // required
	// ClientSecret is required except for public OIDC clients.
	ClientSecret string
	// Scopes to request. Zero: naver "openid" (none in classic mode), google
	// and oidc "openid email profile", github "read:user user:email". OIDC types always
	// request openid.
	Scopes []string
	// Issuer is the OIDC issuer, the base of discovery. Zero: naver
	// https://nid.naver.com, google https://accounts.google.com; required for
	// oidc. With the default issuer, naver and google use their well-known
	// endpoints without discovery.
	Issuer string
	// Classic selects NAVER's classic OAuth 2.0 endpoints (no PKCE, no
	// id_token; identity from the profile API) instead of OIDC; for kakao,
	// Kakao Login's REST flow without OpenID Connect (identity from
	// /v2/user/me).
	Classic bool
	// Domains (naverworks, required) are the NAVER WORKS domains whose
	// users may sign in: a domain id ("10000001") or a mail domain
	// ("example.co.kr"). Others are refused with ErrDomainNotAllowed.
	Domains []string
	// Endpoint overrides (NAVER government cloud, a corporate proxy, a local
	// fake). Zero: discovered, or the provider's well-known endpoint.
	// RevokeURL is accepted for configuration but not used yet: Provider has
	// no Revoke.
	AuthURL, TokenURL, UserInfoURL, JWKSURL, RevokeURL string
	// ProfileURL is NAVER's profile API (zero: the issuer's advertised
	// userinfo endpoint, else https://openapi.naver.com/v1/nid/me) or
	// GitHub's user API (zero: https://api.github.com/user).
	ProfileURL string
}

// discoveryTimeout bounds New's discovery request when ctx has no sooner
// deadline, so a provider that never answers cannot stall startup.
const discoveryTimeout = 10 * time.Second

// New returns the provider cfg describes. It fetches the issuer's discovery
// document when an OIDC endpoint is neither configured nor well known
// (generic OIDC, or naver/google with a non-default Issuer), bounded by ctx
// and at most 10 seconds. A nil httpClient means a client with a 30 second
// timeout.
func New(ctx context.Context, cfg Config, httpClient *http.Client) (Provider, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.Type
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("identity provider %q: client id is required", cfg.Name)
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	var (
		p   *provider
		err error
	)
	switch cfg.Type {
	case "naver":
		p, err = newNaver(ctx, cfg, httpClient)
	case "kakao":
		p, err = newKakao(ctx, cfg, httpClient)
	case "naverworks":
		p, err = newNaverWorks(cfg, httpClient)
	case "google":
		p, err = newGoogle(ctx, cfg, httpClient)
	case "github":
		p, err = newGitHub(cfg, httpClient)
	case "oidc":
		p, err = newOIDC(ctx, cfg, httpClient)
	default:
		return nil, fmt.Errorf("identity provider %q: unknown type %q (want naver, kakao, naverworks, google, github or oidc)", cfg.Name, cfg.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("identity provider %q: %w", cfg.Name, err)
	}
	p.typ = cfg.Type
	return p, nil
}

// sanitize makes provider-supplied text fit for an error message: no control
// characters, bounded length, none of the given secrets.
func sanitize(s string, secrets ...string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	for _, sec := range secrets {
		// Short values would redact ordinary words.
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	const limit = 300
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return strings.TrimSpace(s)
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
