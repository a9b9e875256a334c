package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// discovery is the part of an OpenID Provider's metadata (OIDC Discovery §3,
// RFC 8414 §2) this package uses.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthURL               string   `json:"authorization_endpoint"`
	TokenURL              string   `json:"token_endpoint"`
	UserInfoURL           string   `json:"userinfo_endpoint"`
	JWKSURL               string   `json:"jwks_uri"`
	RevocationURL         string   `json:"revocation_endpoint"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	IssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// discover fetches issuer's discovery document.
func discover(ctx context.Context, client *http.Client, issuer string) (*discovery, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: GET %s: %s", u, resp.Status)
	}
	var d discovery
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxBody)).Decode(&d); err != nil {
		return nil, fmt.Errorf("discovery: decode %s: %w", u, err)
	}
	// OIDC Discovery §4.3: the document must be the issuer's own.
	if d.Issuer != issuer {
		return nil, fmt.Errorf("discovery: document at %s names issuer %q, want %q", u, sanitize(d.Issuer), issuer)
	}
	return &d, nil
}

// endpoints are an OIDC provider's endpoints and capabilities after config
// overrides, discovery and built-in defaults are combined.
type endpoints struct {
	issuer                                  string
	authURL, tokenURL, userInfoURL, jwksURL string
	pkce, issRequired                       bool
	basicAuth                               bool
	algs                                    []string
}

// resolve combines cfg's overrides with builtin (used as is when cfg keeps
// the default issuer) or with the issuer's discovery document.
func resolve(ctx context.Context, cfg Config, client *http.Client, defaultIssuer string, builtin endpoints) (endpoints, error) {
	e := builtin
	e.issuer = orDefault(cfg.Issuer, defaultIssuer)
	if e.issuer == "" {
		return e, errors.New("issuer is required")
	}
	configured := cfg.AuthURL != "" && cfg.TokenURL != "" && cfg.JWKSURL != ""
	if e.issuer != defaultIssuer || defaultIssuer == "" {
		e = endpoints{issuer: e.issuer, pkce: true, basicAuth: builtin.basicAuth}
		if !configured {
			d, err := discover(ctx, client, e.issuer)
			if err != nil {
				return e, err
			}
			e.authURL, e.tokenURL, e.userInfoURL, e.jwksURL = d.AuthURL, d.TokenURL, d.UserInfoURL, d.JWKSURL
			// Absent methods means unknown, and servers ignore unknown
			// parameters, so PKCE is left off only when S256 is plainly missing.
			e.pkce = len(d.CodeChallengeMethods) == 0 || slices.Contains(d.CodeChallengeMethods, "S256")
			e.issRequired = d.IssParameterSupported
			e.algs = d.SigningAlgs
			// Keep the type's method (OIDC Discovery §3 default: basic) unless
			// the issuer advertises only the other one.
			if m := d.TokenAuthMethods; len(m) > 0 {
				if e.basicAuth && !slices.Contains(m, "client_secret_basic") && slices.Contains(m, "client_secret_post") {
					e.basicAuth = false
				} else if !e.basicAuth && !slices.Contains(m, "client_secret_post") && slices.Contains(m, "client_secret_basic") {
					e.basicAuth = true
				}
			}
		}
	}
	e.authURL = orDefault(cfg.AuthURL, e.authURL)
	e.tokenURL = orDefault(cfg.TokenURL, e.tokenURL)
	e.jwksURL = orDefault(cfg.JWKSURL, e.jwksURL)
	e.userInfoURL = orDefault(cfg.UserInfoURL, e.userInfoURL)
	switch {
	case e.authURL == "":
		return e, errors.New("no authorization endpoint")
	case e.tokenURL == "":
		return e, errors.New("no token endpoint")
	case e.jwksURL == "":
		return e, errors.New("no jwks_uri")
	}
	return e, nil
}

// signingAlgs are the id_token algorithms accepted: asymmetric only, so a
// published key can never double as an HMAC secret.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

func (p *provider) setVerifier(e endpoints) {
	var algs []string
	for _, a := range signingAlgs {
		if len(e.algs) == 0 || slices.Contains(e.algs, string(a)) {
			algs = append(algs, string(a))
		}
	}
	if len(algs) == 0 { // only symmetric or unknown algorithms advertised
		algs = []string{string(jose.RS256)}
	}
	ks := &keySet{url: e.jwksURL, client: p.client}
	p.verifier = oidc.NewVerifier(e.issuer, ks, &oidc.Config{ClientID: p.clientID, SupportedSigningAlgs: algs})
}

// idClaims are the id_token claims mapped onto an Identity.
type idClaims struct {
	Subject           string   `json:"sub"`
	Email             string   `json:"email"`
	EmailVerified     flexBool `json:"email_verified"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Nickname          string   `json:"nickname"`
	Picture           string   `json:"picture"`
	AuthorizedParty   string   `json:"azp"`
}

func (p *provider) verifyIDToken(ctx context.Context, raw, nonce string) (*Identity, error) {
	t, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", p.name, ErrInvalidIDToken, err)
	}
	if t.Nonce != nonce {
		return nil, fmt.Errorf("%s: %w: nonce mismatch", p.name, ErrInvalidIDToken)
	}
	var c idClaims
	var rawClaims json.RawMessage
	if err := t.Claims(&c); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", p.name, ErrInvalidIDToken, err)
	}
	if err := t.Claims(&rawClaims); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", p.name, ErrInvalidIDToken, err)
	}
	// OIDC Core §3.1.3.7 (4–5): with several audiences, azp must be us.
	if len(t.Audience) > 1 && c.AuthorizedParty != "" && c.AuthorizedParty != p.clientID {
		return nil, fmt.Errorf("%s: %w: azp %q is not this client", p.name, ErrInvalidIDToken, sanitize(c.AuthorizedParty))
	}
	if t.Subject == "" {
		return nil, fmt.Errorf("%s: %w: no sub", p.name, ErrInvalidIDToken)
	}
	return &Identity{
		Subject:       t.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		Name:          c.Name,
		Username:      orDefault(c.PreferredUsername, c.Nickname),
		Picture:       c.Picture,
		Profile:       rawClaims,
	}, nil
}

// flexBool accepts true, "true" and their false forms: some providers send
// email_verified as a string.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.Trim(string(data), `"`) {
	case "true":
		*b = true
	default:
		*b = false
	}
	return nil
}

// userInfo calls an OIDC userinfo endpoint (OIDC Core §5.3); it also reads
// Google's v2 format (id, verified_email).
func (p *provider) userInfo(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: userinfo endpoint: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			_ = json.Unmarshal(body, &e)
			return nil, &Error{Provider: p.name, Endpoint: "userinfo endpoint", StatusCode: resp.StatusCode,
				Code: sanitize(e.Error), Description: sanitize(e.Description, tok.AccessToken)}
		}
		var u struct {
			idClaims
			ID            string   `json:"id"`
			VerifiedEmail flexBool `json:"verified_email"`
		}
		if err := json.Unmarshal(body, &u); err != nil {
			return nil, fmt.Errorf("%s: userinfo endpoint: decode: %w", p.name, err)
		}
		id := &Identity{
			Subject:       orDefault(u.Subject, u.ID),
			Email:         u.Email,
			EmailVerified: bool(u.EmailVerified || u.VerifiedEmail),
			Name:          u.Name,
			Username:      orDefault(u.PreferredUsername, u.Nickname),
			Picture:       u.Picture,
			Profile:       body,
		}
		if id.Subject == "" {
			return nil, fmt.Errorf("%s: userinfo endpoint: response has no sub", p.name)
		}
		return id, nil
	}
}

// keySet is a JWKS fetched on first use and again when a token names a key
// it does not hold, for key rotation.
type keySet struct {
	url    string
	client *http.Client

	mu      sync.Mutex // guards the fields below
	keys    []jose.JSONWebKey
	fetched time.Time
}

var _ oidc.KeySet = (*keySet)(nil)

// refetchEvery limits JWKS fetches caused by unknown key ids.
const refetchEvery = 10 * time.Second

// VerifySignature implements oidc.KeySet.
func (s *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, signingAlgs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	s.mu.Lock()
	keys, fetched := s.keys, s.fetched
	s.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if !fetched.IsZero() && (hasKey(keys, kid) || time.Since(fetched) < refetchEvery) {
		return nil, errors.New("signature does not verify with any JWKS key")
	}
	keys, err = s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("signature does not verify with any JWKS key")
}

func hasKey(keys []jose.JSONWebKey, kid string) bool {
	return kid != "" && slices.ContainsFunc(keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid })
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, k := range keys {
		if (kid != "" && k.KeyID != kid) || k.Use == "enc" || !k.IsPublic() {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (s *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: GET %s: %s", s.url, resp.Status)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, maxBody)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		// RFC 7517 §5: skip keys of types not understood.
		if err := k.UnmarshalJSON(r); err == nil {
			keys = append(keys, k)
		}
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, time.Now()
	s.mu.Unlock()
	return keys, nil
}

// newOIDC is a generic OpenID Connect provider.
func newOIDC(ctx context.Context, cfg Config, client *http.Client) (*provider, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer is required for type oidc")
	}
	e, err := resolve(ctx, cfg, client, "", endpoints{basicAuth: true})
	if err != nil {
		return nil, err
	}
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, cfg.Name),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scopes:       withOpenID(cfg.Scopes, []string{"openid", "email", "profile"}),
		authURL:      e.authURL,
		tokenURL:     e.tokenURL,
		basicAuth:    e.basicAuth,
		pkce:         e.pkce,
		issuer:       e.issuer,
		issRequired:  e.issRequired,
		needProfile:  func(id *Identity) bool { return id.Email == "" },
		sameSubject:  true,
		refresh:      true,
	}
	if e.userInfoURL != "" {
		p.profile = p.userInfo(e.userInfoURL)
	}
	p.setVerifier(e)
	return p, nil
}

// withOpenID returns scopes (def when empty) with openid first.
func withOpenID(scopes, def []string) []string {
	if len(scopes) == 0 {
		scopes = def
	}
	if slices.Contains(scopes, "openid") {
		return slices.Clone(scopes)
	}
	return append([]string{"openid"}, scopes...)
}
