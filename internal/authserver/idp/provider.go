package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// provider is the one implementation of Provider; the per-type constructors
// (naver.go, google.go, github.go, oidc.go) set its knobs.
type provider struct {
	typ, name, displayName string
	client                 *http.Client
	clientID, clientSecret string
	scopes                 []string

	authURL, tokenURL string
	// basicAuth selects client_secret_basic; otherwise client_secret_post.
	basicAuth  bool
	pkce       bool       // send S256 code_challenge / code_verifier
	authParams url.Values // fixed extra authorize parameters
	// stateToToken sends the callback's state to the token endpoint too
	// (NAVER classic requires it).
	stateToToken bool

	issuer      string // expected RFC 9207 iss; "" when the provider has none
	issRequired bool   // authorization_response_iss_parameter_supported

	// verifier checks id_tokens; nil for providers without one.
	verifier *oidc.IDTokenVerifier
	// profile identifies the user from the access token: the only source
	// without an id_token, a supplement (needProfile) with one. It may fill
	// tok.Scopes.
	profile     func(ctx context.Context, tok *Token) (*Identity, error)
	needProfile func(*Identity) bool
	// sameSubject requires the profile's subject to equal the id_token's
	// (OIDC Core §5.3.2 for userinfo).
	sameSubject bool
	// ownEmail marks a provider whose profile e-mail is the address of the
	// account itself, confirmed by the provider though not flagged so
	// (NAVER): it counts as verified.
	ownEmail bool

	refresh bool

	// scopeSep joins scopes in the authorize URL; "" is a space (RFC 6749
	// §3.3). Kakao wants commas.
	scopeSep string
	// formCharset labels token requests
	// application/x-www-form-urlencoded;charset=utf-8, as Kakao documents.
	formCharset bool
	// allow, when set, decides after identification whether the user may
	// sign in (NAVER WORKS domains); its error is returned by Exchange.
	allow func(*Identity) error
}

var _ Provider = (*provider)(nil)

func (p *provider) Name() string        { return p.name }
func (p *provider) DisplayName() string { return p.displayName }
func (p *provider) Type() string        { return p.typ }

func (p *provider) AuthCodeURL(state, nonce, pkceChallenge, redirectURI string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {p.clientID}}
	if redirectURI != "" {
		v.Set("redirect_uri", redirectURI)
	}
	if len(p.scopes) > 0 {
		v.Set("scope", strings.Join(p.scopes, orDefault(p.scopeSep, " ")))
	}
	if state != "" {
		v.Set("state", state)
	}
	if nonce != "" && p.verifier != nil {
		v.Set("nonce", nonce)
	}
	if pkceChallenge != "" && p.pkce {
		v.Set("code_challenge", pkceChallenge)
		v.Set("code_challenge_method", "S256")
	}
	for k, vs := range p.authParams {
		v[k] = vs
	}
	sep := "?"
	if strings.Contains(p.authURL, "?") {
		sep = "&"
	}
	return p.authURL + sep + v.Encode()
}

func (p *provider) Exchange(ctx context.Context, params url.Values, pkceVerifier, nonce, redirectURI string) (*Identity, *Token, error) {
	if err := p.checkCallback(params); err != nil {
		return nil, nil, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {params.Get("code")}}
	if redirectURI != "" {
		form.Set("redirect_uri", redirectURI)
	}
	if pkceVerifier != "" && p.pkce {
		form.Set("code_verifier", pkceVerifier)
	}
	if p.stateToToken {
		form.Set("state", params.Get("state"))
	}
	tok, err := p.token(ctx, form)
	if err != nil {
		return nil, nil, err
	}
	id, err := p.identify(ctx, tok, nonce)
	if err != nil {
		return nil, nil, err
	}
	if p.ownEmail && id.Email != "" {
		id.EmailVerified = true
	}
	if p.allow != nil {
		if err := p.allow(id); err != nil {
			return nil, nil, err
		}
	}
	return id, tok, nil
}

// checkCallback checks the authorization response before the code is spent.
func (p *provider) checkCallback(params url.Values) error {
	// RFC 9207 §2.4: compare iss before anything else, error responses included.
	if _, present := params["iss"]; p.issuer != "" && (present || p.issRequired) {
		if got := params.Get("iss"); got != p.issuer {
			if !present {
				return fmt.Errorf("%s: %w: no iss parameter, but the issuer advertises it", p.name, ErrIssuerMismatch)
			}
			return fmt.Errorf("%s: %w: got %q, want %q", p.name, ErrIssuerMismatch, sanitize(got), p.issuer)
		}
	}
	if code := params.Get("error"); code != "" {
		return &Error{
			Provider:    p.name,
			Endpoint:    "authorization response",
			Code:        sanitize(code),
			Description: sanitize(params.Get("error_description")),
		}
	}
	if params.Get("code") == "" {
		return fmt.Errorf("%s: authorization response has no code", p.name)
	}
	return nil
}

func (p *provider) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	if !p.refresh || refreshToken == "" {
		return nil, fmt.Errorf("%s: %w", p.name, ErrNoRefresh)
	}
	tok, err := p.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// identify verifies the id_token, if the provider has one, and fills in the
// rest from the profile endpoint.
func (p *provider) identify(ctx context.Context, tok *Token, nonce string) (*Identity, error) {
	if p.verifier == nil {
		return p.profile(ctx, tok)
	}
	if tok.IDToken == "" {
		return nil, fmt.Errorf("%s: %w: token response has no id_token", p.name, ErrInvalidIDToken)
	}
	id, err := p.verifyIDToken(ctx, tok.IDToken, nonce)
	if err != nil {
		return nil, err
	}
	if p.profile == nil || !p.needProfile(id) {
		return id, nil
	}
	prof, err := p.profile(ctx, tok)
	if err != nil {
		return nil, err
	}
	if p.sameSubject && prof.Subject != id.Subject {
		return nil, fmt.Errorf("%s: userinfo subject %q differs from id_token subject %q", p.name, sanitize(prof.Subject), id.Subject)
	}
	merged := *id
	merged.Profile = prof.Profile
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&merged.Name, prof.Name)
	fill(&merged.Username, prof.Username)
	fill(&merged.Picture, prof.Picture)
	if merged.Email == "" || (!merged.EmailVerified && prof.EmailVerified && strings.EqualFold(prof.Email, merged.Email)) {
		merged.Email, merged.EmailVerified = prof.Email, prof.EmailVerified
	}
	return &merged, nil
}

// maxBody bounds what is read from a provider.
const maxBody = 1 << 20

// token calls the token endpoint with form plus client authentication.
func (p *provider) token(ctx context.Context, form url.Values) (*Token, error) {
	var user, pass string
	if p.basicAuth && p.clientSecret != "" {
		// RFC 6749 §2.3.1: form-encode before Basic.
		user, pass = url.QueryEscape(p.clientID), url.QueryEscape(p.clientSecret)
	} else {
		form.Set("client_id", p.clientID)
		if p.clientSecret != "" {
			form.Set("client_secret", p.clientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s: token endpoint: %w", p.name, err)
	}
	if p.formCharset {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// GitHub answers form-encoded without it; harmless elsewhere.
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: token endpoint: %w", p.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s: token endpoint: read response: %w", p.name, err)
	}
	fields, perr := parseTokenResponse(body)
	failed := resp.StatusCode < 200 || resp.StatusCode > 299
	if code := fields.get("error"); failed || code != "" {
		// Some providers (NAVER classic, GitHub) answer errors with 200.
		return nil, &Error{
			Provider:   p.name,
			Endpoint:   "token endpoint",
			StatusCode: resp.StatusCode,
			Code:       sanitize(code, p.clientSecret),
			// Kakao adds its own code (KOE320) next to the OAuth one.
			ProviderCode: sanitize(fields.get("error_code"), p.clientSecret),
			Description:  sanitize(fields.get("error_description"), p.clientSecret, form.Get("code"), form.Get("refresh_token")),
		}
	}
	if perr != nil {
		return nil, fmt.Errorf("%s: token endpoint: %w", p.name, perr)
	}
	tok := &Token{
		AccessToken:  fields.get("access_token"),
		RefreshToken: fields.get("refresh_token"),
		TokenType:    fields.get("token_type"),
		IDToken:      fields.get("id_token"),
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%s: token endpoint: response has no access_token", p.name)
	}
	if secs, err := fields.seconds("expires_in"); err != nil {
		return nil, fmt.Errorf("%s: token endpoint: %w", p.name, err)
	} else if secs > 0 {
		// Capped: a lifetime beyond time.Duration's range (292 years) would
		// wrap around into the past.
		tok.Expiry = time.Now().Add(time.Duration(min(secs, maxLifetime)) * time.Second)
	}
	if s, ok := fields["scope"]; ok {
		tok.Scopes = splitScopes(s)
	}
	return tok, nil
}

// maxLifetime caps a token's expires_in, in seconds (ten years).
const maxLifetime = 10 * 365 * 24 * 60 * 60

// tokenFields is a token response flattened to strings: JSON strings and
// numbers both arrive as their text, so expires_in may be 3600 or "3600".
type tokenFields map[string]string

func (f tokenFields) get(k string) string { return f[k] }

func (f tokenFields) seconds(k string) (int64, error) {
	s, ok := f[k]
	if !ok || s == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, fmt.Errorf("bad %s %q", k, sanitize(s))
	}
	return int64(n), nil
}

// parseTokenResponse reads a token endpoint answer: JSON (RFC 6749 §5.1), or
// form-encoded as GitHub sends without Accept: application/json. The
// Content-Type is not trusted; the body decides.
func parseTokenResponse(body []byte) (tokenFields, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return tokenFields{}, errors.New("empty response")
	}
	if body[0] != '{' {
		v, err := url.ParseQuery(string(body))
		if err != nil || (v.Get("access_token") == "" && v.Get("error") == "") {
			return tokenFields{}, errors.New("response is neither JSON nor form-encoded")
		}
		f := tokenFields{}
		for k := range v {
			f[k] = v.Get(k)
		}
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return tokenFields{}, fmt.Errorf("decode response: %w", err)
	}
	f := tokenFields{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			f[k] = v
		case json.Number:
			f[k] = v.String()
		}
	}
	return f, nil
}

// splitScopes splits a scope string: space-separated per RFC 6749 §3.3,
// comma-separated from GitHub.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// getJSON GETs url with the access token as a Bearer credential and returns
// the response; the caller closes nothing (the body is read here).
func (p *provider) getJSON(ctx context.Context, endpoint, accessToken string, hdr http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}
