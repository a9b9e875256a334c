package oauthclient

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Grant types and token types (RFC 6749, RFC 7523, RFC 8693, SEP-990).
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeIDJAG         = "urn:ietf:params:oauth:token-type:id-jag"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// pendingAuth is an authorization code flow waiting for its callback.
type pendingAuth struct {
	state    string
	verifier string
	d        *discovery
	id       *identity
	scopes   []string
	created  time.Time
}

// PendingAuthorization is an authorization code flow waiting for its
// callback, as a PendingStore keeps it: everything needed to redeem the
// code, so that any process sharing the store can complete the flow. It
// holds the PKCE verifier, so the store must keep it secret.
type PendingAuthorization struct {
	State       string            `json:"state"`
	Verifier    string            `json:"verifier"`
	RedirectURL string            `json:"redirect_url"`
	Resource    string            `json:"resource"`
	Server      *ServerMetadata   `json:"server"`
	ResourceMD  *ResourceMetadata `json:"resource_metadata,omitempty"`
	Legacy      bool              `json:"legacy,omitempty"`
	Static      bool              `json:"static,omitempty"`
	ClientID    string            `json:"client_id"`
	Scopes      []string          `json:"scopes,omitempty"`
	Created     time.Time         `json:"created"`
}

// PendingStore keeps authorizations that wait for their callback, by
// state, so that the callback may reach any process sharing the store.
type PendingStore interface {
	// SavePending stores p until expires.
	SavePending(ctx context.Context, p *PendingAuthorization, expires time.Time) error
	// TakePending returns and deletes the authorization of state; nil if
	// there is none (unknown, expired, or taken by another caller).
	TakePending(ctx context.Context, state string) (*PendingAuthorization, error)
}

func (pa *pendingAuth) export(redirect string) *PendingAuthorization {
	return &PendingAuthorization{
		State: pa.state, Verifier: pa.verifier, RedirectURL: redirect, Resource: pa.d.resource,
		Server: pa.d.as, ResourceMD: pa.d.prm, Legacy: pa.d.legacy, Static: pa.d.static,
		ClientID: pa.id.clientID, Scopes: pa.scopes, Created: pa.created,
	}
}

// importPending rebuilds a pending authorization another process (or this
// one) stored. The client identity is resolved again, as it holds secrets
// the record does not; it must be the one the flow started with.
func (c *Client) importPending(ctx context.Context, p *PendingAuthorization) (*pendingAuth, error) {
	if p.Server == nil || p.RedirectURL != c.opts.RedirectURL {
		return nil, ErrStateMismatch
	}
	d := &discovery{prm: p.ResourceMD, resource: p.Resource, as: p.Server, legacy: p.Legacy, static: p.Static}
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	if id.clientID != p.ClientID {
		return nil, fmt.Errorf("the client registration changed during the authorization: %w", ErrStateMismatch)
	}
	return &pendingAuth{state: p.State, verifier: p.Verifier, d: d, id: id, scopes: p.Scopes, created: p.Created}, nil
}

// pendingTTL bounds how long an authorization URL stays usable.
const pendingTTL = 10 * time.Minute

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// authorizationCode runs the authorization code grant with PKCE
// (OAuth 2.1 §4.1, MCP 2025-11-25 §Authorization Code Protection).
func (c *Client) authorizationCode(ctx context.Context, d *discovery, scopes []string) (*Token, error) {
	if d.as.AuthorizationEndpoint == "" {
		return nil, fmt.Errorf("authorization server %s has no authorization_endpoint", d.as.Issuer)
	}
	if !d.legacy && !supportsS256(d.as) && !c.opts.SkipCodeChallengeCheck {
		return nil, fmt.Errorf("%s: %w", d.as.Issuer, ErrNoPKCE)
	}
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	pa := &pendingAuth{state: randomString(), verifier: randomString(), d: d, id: id, scopes: scopes, created: c.now()}
	authURL, err := c.authURL(pa)
	if err != nil {
		return nil, err
	}
	if c.opts.Authorize == nil && c.opts.Pending != nil {
		if err := c.opts.Pending.SavePending(ctx, pa.export(c.opts.RedirectURL), pa.created.Add(pendingTTL)); err != nil {
			return nil, fmt.Errorf("save pending authorization: %w", err)
		}
		return nil, &AuthorizationRequiredError{URL: authURL}
	}
	if c.opts.Authorize == nil {
		c.mu.Lock()
		for s, p := range c.pending {
			if c.now().Sub(p.created) > pendingTTL {
				delete(c.pending, s)
			}
		}
		c.pending[pa.state] = pa
		c.mu.Unlock()
		return nil, &AuthorizationRequiredError{URL: authURL}
	}
	cb, err := c.opts.Authorize(ctx, authURL)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	return c.finishAuthorization(ctx, pa, cb)
}

func (c *Client) authURL(pa *pendingAuth) (string, error) {
	u, err := url.Parse(pa.d.as.AuthorizationEndpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", pa.id.clientID)
	q.Set("redirect_uri", c.opts.RedirectURL)
	q.Set("state", pa.state)
	q.Set("code_challenge", s256(pa.verifier))
	q.Set("code_challenge_method", "S256")
	// RFC 8707 §2: the resource exactly as the server published it.
	q.Set("resource", pa.d.resource)
	if len(pa.scopes) > 0 {
		q.Set("scope", strings.Join(pa.scopes, " "))
	}
	if c.opts.Audience != "" {
		q.Set("audience", c.opts.Audience)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// HandleCallback completes an authorization that failed with
// *AuthorizationRequiredError, given the URL the authorization server
// redirected the browser to. It returns ErrStateMismatch if the state is not
// this client's.
func (c *Client) HandleCallback(ctx context.Context, callbackURL string) error {
	u, err := url.Parse(callbackURL)
	if err != nil {
		return fmt.Errorf("callback: %w", err)
	}
	pa, err := c.takePending(ctx, u.Query().Get("state"))
	if err != nil {
		return err
	}
	if pa == nil || c.now().Sub(pa.created) > pendingTTL {
		return ErrStateMismatch
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	t, err := c.finishAuthorization(ctx, pa, callbackURL)
	if err != nil {
		return err
	}
	return c.setToken(ctx, t)
}

// takePending returns and forgets the authorization of state, from
// Options.Pending when set, else from memory; nil if there is none.
func (c *Client) takePending(ctx context.Context, state string) (*pendingAuth, error) {
	if state == "" {
		return nil, nil
	}
	if c.opts.Pending == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		pa := c.pending[state]
		delete(c.pending, state)
		return pa, nil
	}
	p, err := c.opts.Pending.TakePending(ctx, state)
	if err != nil {
		return nil, fmt.Errorf("load pending authorization: %w", err)
	}
	if p == nil || p.State != state {
		return nil, nil
	}
	return c.importPending(ctx, p)
}

// OwnsState reports whether state belongs to an authorization this client
// started and has not completed, for routing a shared callback URL. With
// Options.Pending set the store routes callbacks, and it reports false.
func (c *Client) OwnsState(state string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[state]
	return ok
}

func (c *Client) finishAuthorization(ctx context.Context, pa *pendingAuth, callbackURL string) (*Token, error) {
	u, err := url.Parse(callbackURL)
	if err != nil {
		return nil, fmt.Errorf("callback: %w", err)
	}
	q := u.Query()
	if q.Get("state") != pa.state {
		return nil, ErrStateMismatch
	}
	// RFC 9207 §2.4: compare iss by simple string comparison with the
	// recorded issuer; required when the server advertises it.
	iss, hasIss := q["iss"]
	switch {
	case pa.d.static:
		// Configured endpoints: no issuer to compare with.
	case hasIss && iss[0] != pa.d.as.Issuer:
		return nil, fmt.Errorf("%w: authorization response iss %q, want %q", ErrIssuerMismatch, iss[0], pa.d.as.Issuer)
	case !hasIss && pa.d.as.AuthorizationResponseIssParamSupported:
		return nil, fmt.Errorf("%w: authorization response lacks the iss the server advertises", ErrIssuerMismatch)
	}
	if e := q.Get("error"); e != "" {
		return nil, &TokenError{Endpoint: "authorization", Code: e, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("authorization response has no code")
	}
	form := url.Values{
		"grant_type":    {grantAuthorizationCode},
		"code":          {code},
		"redirect_uri":  {c.opts.RedirectURL},
		"code_verifier": {pa.verifier},
		"resource":      {pa.d.resource},
	}
	t, err := c.tokenRequest(ctx, pa.d, pa.id, form)
	if err != nil {
		return nil, err
	}
	if len(t.Scopes) == 0 {
		t.Scopes = pa.scopes
	}
	return t, nil
}

// refresh renews a token (OAuth 2.1 §4.3). Some servers reject the scope
// parameter on refresh; the request is then repeated without it.
func (c *Client) refresh(ctx context.Context, d *discovery, old *Token) (*Token, error) {
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":    {grantRefreshToken},
		"refresh_token": {old.RefreshToken},
		"resource":      {d.resource},
	}
	if len(old.Scopes) > 0 {
		form.Set("scope", strings.Join(old.Scopes, " "))
	}
	t, err := c.tokenRequest(ctx, d, id, form)
	var te *TokenError
	if err != nil && form.Has("scope") && errors.As(err, &te) && te.Status < 500 {
		form.Del("scope")
		t, err = c.tokenRequest(ctx, d, id, form)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if t.RefreshToken == "" {
		t.RefreshToken = old.RefreshToken
	}
	if len(t.Scopes) == 0 {
		t.Scopes = old.Scopes
	}
	if err := c.setToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// clientCredentials runs the client credentials grant (OAuth 2.1 §4.2, SEP-1046).
func (c *Client) clientCredentials(ctx context.Context, d *discovery, scopes []string) (*Token, error) {
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {grantClientCredentials}, "resource": {d.resource}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.grantToken(ctx, d, id, form, scopes)
}

// jwtBearer presents Options.Assertion as an authorization grant
// (RFC 7523 §2.1; workload identity federation, SEP-1933). A rejected
// assertion is reported, never retried with another grant.
func (c *Client) jwtBearer(ctx context.Context, d *discovery, scopes []string) (*Token, error) {
	assertion, err := c.opts.Assertion(ctx)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {grantJWTBearer}, "assertion": {assertion}, "resource": {d.resource}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.grantToken(ctx, d, id, form, scopes)
}

// enterprise runs enterprise-managed authorization (SEP-990): the user's ID
// token is exchanged at the IdP for an Identity Assertion JWT Authorization
// Grant (RFC 8693), which the authorization server accepts as a JWT bearer
// grant (RFC 7523).
func (c *Client) enterprise(ctx context.Context, d *discovery, scopes []string) (*Token, error) {
	e := c.opts.Enterprise
	idToken, err := e.IDToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity assertion: %w", err)
	}
	if err := checkURL(e.TokenEndpoint); err != nil {
		return nil, fmt.Errorf("IdP token endpoint: %w", err)
	}
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"requested_token_type": {tokenTypeIDJAG},
		"subject_token":        {idToken},
		"subject_token_type":   {tokenTypeIDToken},
		"audience":             {d.audience()},
		"resource":             {d.resource},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	idp := &identity{clientID: e.ClientID, secret: e.ClientSecret, authMethod: AuthNone}
	if e.ClientSecret != "" {
		idp.authMethod = AuthClientSecretBasic
	}
	resp, err := c.postToken(ctx, e.TokenEndpoint, "", idp, form, false)
	if err != nil {
		return nil, fmt.Errorf("token exchange at IdP: %w", err)
	}
	if resp.IssuedTokenType != "" && resp.IssuedTokenType != tokenTypeIDJAG {
		return nil, fmt.Errorf("token exchange at IdP: issued_token_type %q, want %q", resp.IssuedTokenType, tokenTypeIDJAG)
	}
	id, err := c.identityFor(ctx, d)
	if err != nil {
		return nil, err
	}
	grant := url.Values{"grant_type": {grantJWTBearer}, "assertion": {resp.AccessToken}, "resource": {d.resource}}
	if len(scopes) > 0 {
		grant.Set("scope", strings.Join(scopes, " "))
	}
	return c.grantToken(ctx, d, id, grant, scopes)
}

func (c *Client) grantToken(ctx context.Context, d *discovery, id *identity, form url.Values, scopes []string) (*Token, error) {
	t, err := c.tokenRequest(ctx, d, id, form)
	if err != nil {
		return nil, err
	}
	if len(t.Scopes) == 0 {
		t.Scopes = scopes
	}
	return t, nil
}

// tokenResponse is RFC 6749 §5.1 (and RFC 8693 §2.2.1).
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	RefreshToken    string `json:"refresh_token"`
	ExpiresIn       any    `json:"expires_in"` // some servers send a string
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type"`
}

// tokenRequest posts to the authorization server's token endpoint, with a
// DPoP proof where tokens are DPoP-bound.
func (c *Client) tokenRequest(ctx context.Context, d *discovery, id *identity, form url.Values) (*Token, error) {
	dpop := c.dpopFor(d)
	resp, err := c.postToken(ctx, d.as.TokenEndpoint, d.audience(), id, form, dpop)
	if err != nil {
		return nil, err
	}
	t := &Token{
		AccessToken:  resp.AccessToken,
		TokenType:    "Bearer",
		RefreshToken: resp.RefreshToken,
		Scopes:       strings.Fields(resp.Scope),
		Issuer:       d.as.Issuer,
		Resource:     d.resource,
	}
	if strings.EqualFold(resp.TokenType, "DPoP") {
		if !dpop {
			return nil, errors.New("token endpoint issued a DPoP-bound token without a proof")
		}
		t.TokenType = "DPoP"
	}
	if s := expiresIn(resp.ExpiresIn); s > 0 {
		t.Expiry = c.now().Add(time.Duration(s) * time.Second)
	}
	return t, nil
}

// maxExpiresIn caps a token lifetime: a larger expires_in (some servers
// send "never" as a huge number) would overflow time.Duration and put the
// expiry in the past.
const maxExpiresIn = 10 * 365 * 24 * 60 * 60

// expiresIn reads expires_in in seconds, a JSON number or a string;
// 0 when absent, not positive or unreadable.
func expiresIn(v any) int64 {
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0
		}
		n = f
	}
	switch {
	case !(n >= 1): // also NaN
		return 0
	case n > maxExpiresIn:
		return maxExpiresIn
	}
	return int64(n)
}

// maxTokenResponse bounds a token endpoint response.
const maxTokenResponse = 64 << 10

// postToken sends one token request, authenticating the client as id says.
// issuer is the audience of private_key_jwt assertions.
func (c *Client) postToken(ctx context.Context, endpoint, issuer string, id *identity, form url.Values, dpop bool) (*tokenResponse, error) {
	if err := checkURL(endpoint); err != nil {
		return nil, err
	}
	form = cloneValues(form)
	var basic [2]string
	switch id.authMethod {
	case AuthClientSecretBasic:
		basic = [2]string{id.clientID, id.secret}
	case AuthClientSecretPost:
		form.Set("client_id", id.clientID)
		form.Set("client_secret", id.secret)
	case AuthPrivateKeyJWT:
		if id.key == nil {
			return nil, errors.New("private_key_jwt without a private key")
		}
		a, err := clientAssertion(id.key, issuer, c.now())
		if err != nil {
			return nil, err
		}
		form.Set("client_id", id.clientID)
		form.Set("client_assertion_type", assertionTypeJWTBearer)
		form.Set("client_assertion", a)
	default: // none
		if id.clientID != "" {
			form.Set("client_id", id.clientID)
		}
	}
	origin := originOf(endpoint)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if basic[0] != "" {
			// RFC 6749 §2.3.1: both parts form-encoded before Basic.
			req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
		}
		if dpop {
			c.mu.Lock()
			nonce := c.asNonces[origin]
			c.mu.Unlock()
			p, err := c.dpop.proof(http.MethodPost, endpoint, nonce, "", c.now())
			if err != nil {
				return nil, err
			}
			req.Header.Set("DPoP", p)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("token request to %s: %w", redactString(endpoint), err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("token request to %s: %w", redactString(endpoint), err)
		}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" && dpop {
			c.mu.Lock()
			c.asNonces[origin] = n
			c.mu.Unlock()
		}
		if resp.StatusCode != http.StatusOK {
			err := oauthError("token", resp.StatusCode, data)
			var te *TokenError
			// RFC 9449 §8: retry once with the nonce the server supplied.
			if dpop && attempt == 0 && errors.As(err, &te) && te.Code == "use_dpop_nonce" && resp.Header.Get("DPoP-Nonce") != "" {
				continue
			}
			return nil, err
		}
		var tr tokenResponse
		if err := json.Unmarshal(data, &tr); err != nil {
			return nil, fmt.Errorf("token response from %s: %w", redactString(endpoint), err)
		}
		if tr.AccessToken == "" {
			return nil, fmt.Errorf("token response from %s has no access_token", redactString(endpoint))
		}
		return &tr, nil
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func oauthError(endpoint string, status int, body []byte) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &e)
	return &TokenError{Endpoint: endpoint, Status: status, Code: e.Error, Description: truncate(e.Description, 200)}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func originOf(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func redactString(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	return redact(u)
}
