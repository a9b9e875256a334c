// Package oauthclient is the OAuth 2.x client Switchboard uses toward
// upstream MCP servers, following the MCP authorization specification
// (2025-11-25 and 2026-07-28) and its extensions: detection from 401/403
// challenges, protected resource and authorization server discovery,
// client identity (pre-registered, Client ID Metadata Document, dynamic
// registration), the authorization code grant with PKCE, refresh, client
// credentials, JWT bearer assertions (workload identity and
// enterprise-managed authorization) and DPoP-bound tokens.
//
// A Client holds the authorization state of one (user, server) pair and
// hands it to the MCP transport as an http.RoundTripper (see
// Client.Transport). Every URL learned from a remote party is fetched through
// an SSRF-guarded HTTP client.
//
// hub and cmd/switchboard may import it; it imports internal/ssrf and
// third-party libraries only.
package oauthclient

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// Grant selects how a Client obtains access tokens.
type Grant int

const (
	// GrantAuthorizationCode is the interactive authorization code grant
	// with PKCE (the default).
	GrantAuthorizationCode Grant = iota
	// GrantClientCredentials is the client credentials grant for
	// machine-to-machine servers (client_secret_basic/post or
	// private_key_jwt).
	GrantClientCredentials
	// GrantJWTBearer presents a JWT from Options.Assertion (RFC 7523 §2.1),
	// e.g. a workload identity token.
	GrantJWTBearer
	// GrantEnterprise is enterprise-managed authorization: the user's
	// identity assertion is exchanged at the enterprise IdP for an ID-JAG
	// (RFC 8693), which is then presented as a JWT bearer grant.
	GrantEnterprise
)

// DPoPMode says when tokens are bound to a DPoP key (RFC 9449).
type DPoPMode int

const (
	// DPoPAuto binds tokens when the server asks for it (a DPoP challenge
	// or dpop_bound_access_tokens_required) and the authorization server
	// supports ES256 proofs.
	DPoPAuto DPoPMode = iota
	// DPoPAlways sends proofs whenever the authorization server supports them.
	DPoPAlways
	// DPoPNever never sends proofs.
	DPoPNever
)

// Token endpoint client authentication methods (RFC 7591 §2).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// ClientIdentity is a client registered with the authorization server out of
// band.
type ClientIdentity struct {
	ClientID     string
	ClientSecret string
	// AuthMethod is one of the Auth* constants. Empty: chosen from what the
	// authorization server supports (private_key_jwt with a key,
	// client_secret_basic or client_secret_post with a secret, none without).
	AuthMethod string
	// PrivateKey signs private_key_jwt client assertions (RFC 7523 §2.2).
	// Nil: no private_key_jwt.
	PrivateKey crypto.Signer
	// SigningAlg is the JWS algorithm for PrivateKey. Empty: derived from the
	// key type (ES256, ES384, ES512, RS256 or EdDSA).
	SigningAlg string
	// Issuer restricts the identity to one authorization server. Empty: any.
	Issuer string
}

// Enterprise configures enterprise-managed authorization (GrantEnterprise).
type Enterprise struct {
	// IDToken returns the user's identity assertion (an OIDC ID token)
	// issued by the enterprise IdP. Required.
	IDToken func(ctx context.Context) (string, error)
	// TokenEndpoint is the IdP's token endpoint that performs the token
	// exchange. Required.
	TokenEndpoint string
	// ClientID and ClientSecret authenticate Switchboard at the IdP. An empty
	// secret sends client_id only.
	ClientID     string
	ClientSecret string
}

// Options configure a Client. The zero value is valid for the authorization
// code grant with dynamic client registration.
type Options struct {
	// HTTPClient carries OAuth traffic (metadata, registration, token
	// requests). Nil: ssrf.NewClient(SSRF).
	HTTPClient *http.Client
	// SSRF is the policy for OAuth traffic when HTTPClient is nil. Nil:
	// public addresses only.
	SSRF *ssrf.Policy

	// Grant selects the grant. Zero: GrantAuthorizationCode.
	Grant Grant
	// Client is a pre-registered client. Nil: Client ID Metadata Document or
	// dynamic registration.
	Client *ClientIdentity
	// ClientMetadataURL is the https URL of Switchboard's Client ID Metadata
	// Document, used as client_id where the authorization server advertises
	// client_id_metadata_document_supported. Empty: not used.
	ClientMetadataURL string
	// ClientName is sent in dynamic registrations. Empty: "Switchboard".
	ClientName string
	// RedirectURL is the authorization code callback. Required for
	// GrantAuthorizationCode.
	RedirectURL string
	// Scopes are requested in place of the scopes a server names. Nil: the
	// challenge's, then the protected resource's, then the authorization
	// server's.
	Scopes []string
	// AuthorizationURL and TokenURL are the authorization server's
	// endpoints as configured (LibreChat's oauth.authorization_url and
	// token_url), used instead of discovery: no metadata is fetched, the
	// resource is the server URL, S256 is assumed, and since the issuer is
	// unknown an iss in the authorization response is not checked (RFC 9207
	// needs a known issuer). Empty TokenURL: endpoints are discovered. The
	// authorization code grant needs both.
	AuthorizationURL string
	TokenURL         string
	// RevocationURL is the RFC 7009 revocation endpoint. Empty: the
	// discovered revocation_endpoint; with static endpoints, none (tokens
	// are only forgotten).
	RevocationURL string
	// Audience is sent as the audience parameter in authorization and
	// token requests. Empty: not sent.
	Audience string
	// NoRefreshToken stops the client from asking for offline_access.
	// False: offline_access is requested where the server supports it.
	NoRefreshToken bool
	// SkipCodeChallengeCheck proceeds although the authorization server
	// does not list S256 in code_challenge_methods_supported. False: refused.
	SkipCodeChallengeCheck bool
	// Proactive authorizes before the first request instead of waiting for
	// a 401 (config requiresOAuth). False: on challenge.
	Proactive bool
	// DPoP says when tokens are DPoP-bound. Zero: DPoPAuto.
	DPoP DPoPMode

	// Authorize performs the interactive step of the authorization code
	// grant: it sends the user to authURL and returns the URL the
	// authorization server redirected back to. Nil: requests that need
	// authorization fail with *AuthorizationRequiredError, and
	// Client.HandleCallback completes the flow.
	Authorize func(ctx context.Context, authURL string) (redirectedURL string, err error)
	// Assertion returns the JWT presented by GrantJWTBearer.
	Assertion func(ctx context.Context) (string, error)
	// Enterprise configures GrantEnterprise.
	Enterprise *Enterprise

	// Registrations keeps dynamic registrations by issuer. Nil: in memory.
	Registrations Registrations
	// Tokens keeps the token. Nil: in memory.
	Tokens TokenStore
	// Pending keeps authorizations that wait for their callback, so that
	// HandleCallback works in any process sharing it. Nil: in this Client's
	// memory only.
	Pending PendingStore
	// Lock serializes renewals across processes sharing Tokens; after
	// taking it the client reloads the token from Tokens. Nil: renewals are
	// serialized within this Client only.
	Lock Locker

	// Logger receives debug logs; secrets are never logged. Nil: discarded.
	Logger *slog.Logger
	// Now returns the current time. Nil: time.Now.
	Now func() time.Time
}

// Errors a caller may branch on.
var (
	// ErrResourceMismatch: the protected resource metadata names another resource.
	ErrResourceMismatch = errors.New("protected resource metadata names a different resource")
	// ErrIssuerMismatch: metadata or an authorization response came from
	// another issuer than expected.
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrNoPKCE: the authorization server does not support S256.
	ErrNoPKCE = errors.New("authorization server does not support PKCE S256")
	// ErrNoRegistration: no way to obtain a client_id at this server.
	ErrNoRegistration = errors.New("no client registration method is available")
	// ErrStateMismatch: the callback's state is unknown.
	ErrStateMismatch = errors.New("state mismatch")
	// ErrInsufficientScope: step-up authorization cannot help.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrUnsafeURL: a URL learned from a remote party is not http(s).
	ErrUnsafeURL = errors.New("unsafe URL")
)

// AuthorizationRequiredError is returned when the user must authorize in a
// browser and Options.Authorize is nil.
type AuthorizationRequiredError struct {
	URL string // the authorization URL to open
}

func (e *AuthorizationRequiredError) Error() string { return "authorization required" }

// TokenError is an OAuth error response from a token or registration endpoint.
type TokenError struct {
	Endpoint    string
	Status      int
	Code        string // "invalid_grant", ...
	Description string
}

func (e *TokenError) Error() string {
	s := fmt.Sprintf("%s: %d", e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Token is an access token and what is needed to renew it.
type Token struct {
	AccessToken  string
	TokenType    string // "Bearer" or "DPoP"
	RefreshToken string
	Expiry       time.Time // zero: unknown
	Scopes       []string  // granted (or, if the server did not say, requested)
	Issuer       string    // the authorization server that issued it
	Resource     string    // the RFC 8707 resource it was issued for
}

// Client obtains and renews tokens for one MCP server. It is safe for
// concurrent use.
type Client struct {
	server *url.URL
	opts   Options
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time
	regs   Registrations
	tokens TokenStore
	dpop   *dpopKey

	authMu sync.Mutex // serializes (re)authorization; held while a grant runs

	mu       sync.Mutex // guards the fields below
	tok      *Token
	loaded   bool
	disc     *discovery          // last discovery
	granted  map[string][]string // issuer -> scopes granted so far
	pending  map[string]*pendingAuth
	useDPoP  bool
	rsNonces map[string]string // origin -> last DPoP-Nonce
	asNonces map[string]string
}

// New returns a Client for the MCP server at serverURL (its MCP endpoint,
// which is the RFC 8707 resource unless its metadata says otherwise).
func New(serverURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: %w", serverURL, ErrUnsafeURL)
	}
	u.Fragment = ""
	c := &Client{server: u, granted: map[string][]string{}, pending: map[string]*pendingAuth{},
		rsNonces: map[string]string{}, asNonces: map[string]string{}}
	if opts != nil {
		c.opts = *opts
	}
	o := &c.opts
	switch o.Grant {
	case GrantAuthorizationCode:
		if o.RedirectURL == "" {
			return nil, errors.New("oauthclient: RedirectURL is required for the authorization code grant")
		}
	case GrantClientCredentials:
		if o.Client == nil || o.Client.ClientID == "" {
			return nil, errors.New("oauthclient: client credentials need a pre-registered client")
		}
	case GrantJWTBearer:
		if o.Assertion == nil {
			return nil, errors.New("oauthclient: the JWT bearer grant needs Assertion")
		}
	case GrantEnterprise:
		if o.Enterprise == nil || o.Enterprise.IDToken == nil || o.Enterprise.TokenEndpoint == "" {
			return nil, errors.New("oauthclient: enterprise-managed authorization needs Enterprise.IDToken and TokenEndpoint")
		}
		if o.Client == nil || o.Client.ClientID == "" {
			return nil, errors.New("oauthclient: enterprise-managed authorization needs a pre-registered client")
		}
	default:
		return nil, fmt.Errorf("oauthclient: unknown grant %d", o.Grant)
	}
	for _, e := range []struct{ name, url string }{{"AuthorizationURL", o.AuthorizationURL}, {"TokenURL", o.TokenURL}, {"RevocationURL", o.RevocationURL}} {
		if e.url != "" {
			if err := checkURL(e.url); err != nil {
				return nil, fmt.Errorf("oauthclient: %s: %w", e.name, err)
			}
		}
	}
	if o.AuthorizationURL != "" && o.TokenURL == "" {
		return nil, errors.New("oauthclient: AuthorizationURL needs TokenURL")
	}
	if o.TokenURL != "" && o.AuthorizationURL == "" && o.Grant == GrantAuthorizationCode {
		return nil, errors.New("oauthclient: TokenURL needs AuthorizationURL for the authorization code grant")
	}
	if o.ClientMetadataURL != "" {
		cu, err := url.Parse(o.ClientMetadataURL)
		if err != nil || cu.Scheme != "https" || strings.Trim(cu.Path, "/") == "" {
			return nil, fmt.Errorf("oauthclient: ClientMetadataURL %q must be an https URL with a path", o.ClientMetadataURL)
		}
	}
	if o.Client != nil && o.Client.PrivateKey != nil && o.Client.SigningAlg == "" {
		alg, err := algFor(o.Client.PrivateKey)
		if err != nil {
			return nil, err
		}
		o.Client.SigningAlg = alg
	}
	c.http = o.HTTPClient
	if c.http == nil {
		c.http = ssrf.NewClient(o.SSRF)
	}
	c.log = o.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.now = o.Now
	if c.now == nil {
		c.now = time.Now
	}
	c.regs = o.Registrations
	if c.regs == nil {
		c.regs = NewMemoryRegistrations()
	}
	c.tokens = o.Tokens
	if c.tokens == nil {
		c.tokens = &memoryTokens{}
	}
	if o.DPoP != DPoPNever {
		if c.dpop, err = newDPoPKey(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Token returns the current token, loading it from the store on first use.
// It returns nil if the client holds none.
func (c *Client) Token(ctx context.Context) (*Token, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokenLocked(ctx)
}

func (c *Client) tokenLocked(ctx context.Context) (*Token, error) {
	if !c.loaded {
		t, err := c.tokens.LoadToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("load token: %w", err)
		}
		c.tok, c.loaded = t, true
		if t != nil {
			c.granted[t.Issuer] = t.Scopes
		}
	}
	return c.tok, nil
}

func (c *Client) setToken(ctx context.Context, t *Token) error {
	c.mu.Lock()
	c.tok, c.loaded = t, true
	if t != nil {
		c.granted[t.Issuer] = unionScopes(c.granted[t.Issuer], t.Scopes)
	}
	c.mu.Unlock()
	if err := c.tokens.SaveToken(ctx, t); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return nil
}

// Forget drops the token (e.g. when the user disconnects the server).
func (c *Client) Forget(ctx context.Context) error { return c.setToken(ctx, nil) }

// expiringSoon is how long before its expiry a token is renewed.
const expiringSoon = 30 * time.Second

func (t *Token) valid(now time.Time) bool {
	return t != nil && t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(expiringSoon).Before(t.Expiry))
}

// validToken returns a token ready for use: the current one, or a refreshed
// one if it is about to expire, or nil.
func (c *Client) validToken(ctx context.Context) (*Token, error) {
	t, err := c.Token(ctx)
	if err != nil || t == nil || t.valid(c.now()) {
		return t, err
	}
	c.authMu.Lock()
	defer c.authMu.Unlock()
	unlock, err := c.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if cur, _ := c.Token(ctx); cur != t && (cur == nil || cur.AccessToken != t.AccessToken) {
		return cur, nil // renewed meanwhile, here or by another process
	}
	if nt, err := c.renew(ctx, t); err == nil {
		return nt, nil
	} else {
		c.log.Debug("renewing expiring token failed", slog.String("error", err.Error()))
	}
	return t, nil // let the server judge; a 401 starts over
}

// renew obtains a new token without user interaction: by refresh token, or by
// repeating a non-interactive grant.
func (c *Client) renew(ctx context.Context, old *Token) (*Token, error) {
	if old != nil && old.RefreshToken != "" {
		d, err := c.discoverCached(ctx)
		if err == nil && d.as.Issuer == old.Issuer {
			return c.refresh(ctx, d, old)
		}
	}
	if c.opts.Grant != GrantAuthorizationCode {
		d, err := c.discoverCached(ctx)
		if err != nil {
			return nil, err
		}
		return c.obtain(ctx, d, nil)
	}
	return nil, errors.New("no refresh token")
}

func (c *Client) discoverCached(ctx context.Context) (*discovery, error) {
	c.mu.Lock()
	d := c.disc
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := c.discover(ctx, nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.disc = d
	c.mu.Unlock()
	return d, nil
}

// challengeResult says what the transport does after a challenge.
type challengeResult int

const (
	retryRequest challengeResult = iota // a new token is in place
	giveUp                              // pass the response on
)

// handleChallenge reacts to a 401 or 403 that answered a request made with
// used (nil: none). It returns giveUp when authorization cannot help.
func (c *Client) handleChallenge(ctx context.Context, status int, chs []challenge, used *Token) (challengeResult, error) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	unlock, err := c.lockShared(ctx)
	if err != nil {
		return giveUp, err
	}
	defer unlock()
	cur, err := c.Token(ctx)
	if err != nil {
		return giveUp, err
	}
	if cur != used && cur.valid(c.now()) && (used == nil || cur.AccessToken != used.AccessToken) {
		return retryRequest, nil // another request renewed the token meanwhile
	}
	if dpopChallenged(chs) && c.opts.DPoP != DPoPNever {
		c.mu.Lock()
		c.useDPoP = true
		c.mu.Unlock()
	}
	insufficient := status == http.StatusForbidden
	if insufficient {
		// Step-up authorization (MCP 2025-11-25 §Scope challenge handling):
		// useful only if the challenge names scopes not granted yet.
		want := challengeScopes(chs)
		if cur == nil || len(want) == 0 || subset(want, cur.Scopes) {
			return giveUp, nil
		}
	}
	// The server may have moved to another authorization server (SEP-2352),
	// so discovery starts over on every challenge.
	d, err := c.discover(ctx, chs)
	if err != nil {
		return giveUp, err
	}
	c.mu.Lock()
	c.disc = d
	c.mu.Unlock()
	if !insufficient && cur != nil && cur.RefreshToken != "" && cur.Issuer == d.as.Issuer {
		if _, err := c.refresh(ctx, d, cur); err == nil {
			return retryRequest, nil
		} else {
			c.log.Debug("refresh failed; authorizing again", slog.String("error", err.Error()))
		}
	}
	if _, err := c.obtain(ctx, d, chs); err != nil {
		return giveUp, err
	}
	return retryRequest, nil
}

// obtain runs the configured grant.
func (c *Client) obtain(ctx context.Context, d *discovery, chs []challenge) (*Token, error) {
	var (
		t   *Token
		err error
	)
	switch c.opts.Grant {
	case GrantAuthorizationCode:
		t, err = c.authorizationCode(ctx, d, c.selectScopes(d, chs))
	case GrantClientCredentials:
		t, err = c.clientCredentials(ctx, d, c.selectScopes(d, chs))
	case GrantJWTBearer:
		t, err = c.jwtBearer(ctx, d, c.selectScopes(d, chs))
	case GrantEnterprise:
		t, err = c.enterprise(ctx, d, c.selectScopes(d, chs))
	}
	if err != nil {
		return nil, err
	}
	if err := c.setToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// selectScopes applies the MCP scope selection strategy: configured scopes,
// else the challenge's, else the protected resource's scopes_supported, else
// the authorization server's; united with what this issuer granted before
// (SEP-2350), plus offline_access where supported (SEP-2207).
func (c *Client) selectScopes(d *discovery, chs []challenge) []string {
	var s []string
	switch {
	case len(c.opts.Scopes) > 0:
		s = slices.Clone(c.opts.Scopes)
	case len(challengeScopes(chs)) > 0:
		s = challengeScopes(chs)
	case d.prm != nil && len(d.prm.ScopesSupported) > 0:
		s = slices.Clone(d.prm.ScopesSupported)
	case len(d.as.ScopesSupported) > 0 && d.prm == nil:
		// Only for servers without resource metadata: a resource that lists
		// no scopes asks for none (MCP: omit scope when undefined).
		for _, x := range d.as.ScopesSupported {
			if x != "offline_access" {
				s = append(s, x)
			}
		}
	}
	if c.opts.Grant == GrantAuthorizationCode {
		c.mu.Lock()
		s = unionScopes(c.granted[d.as.Issuer], s)
		c.mu.Unlock()
		if !c.opts.NoRefreshToken && len(s) > 0 && slices.Contains(d.as.ScopesSupported, "offline_access") && !slices.Contains(s, "offline_access") {
			s = append(s, "offline_access")
		}
	}
	return s
}

func unionScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
