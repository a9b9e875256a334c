package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub/oauthclient"
	"github.com/switchboard-mcp/switchboard/internal/ssrf"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// AuthState is where a user's connection stands with upstream OAuth.
type AuthState string

const (
	AuthNotRequired        AuthState = "not_required"
	AuthNeedsAuthorization AuthState = "needs_authorization"
	AuthAuthorizing        AuthState = "authorizing" // the callback arrived; tokens are being fetched
	AuthAuthorized         AuthState = "authorized"
	AuthFailed             AuthState = "failed"
)

// AuthorizationError is returned when a user must authorize Switchboard at
// the upstream server's authorization server before the connection can be
// made. URL is where to send them.
type AuthorizationError struct {
	Server string
	URL    string
}

func (e *AuthorizationError) Error() string {
	return fmt.Sprintf("connection to %s needs authorization: open %s to sign in", e.Server, e.URL)
}

// ErrUnknownState is returned by HandleOAuthCallback for a callback that
// matches no pending authorization (of any replica sharing the store).
var ErrUnknownState = errors.New("this sign-in link is unknown or has expired; start again from the server's status")

// Lock timing of cross-replica token renewal.
const (
	tokenLockTTL  = 30 * time.Second
	tokenLockPoll = 50 * time.Millisecond
	tokenLockWait = 20 * time.Second
	// authPoll is how often a wait for an authorization looks in the store
	// for a token that another replica's callback saved.
	authPoll = time.Second
)

// oauthClient is a connection's upstream OAuth client.
type oauthClient struct {
	*oauthclient.Client
}

// userActionNeeded reports whether err waits for the user rather than
// being a failure: missing variables or authorization.
func userActionNeeded(err error) bool {
	var mv *MissingVariablesError
	var ae *AuthorizationError
	var ar *oauthclient.AuthorizationRequiredError
	return errors.As(err, &mv) || errors.As(err, &ae) || errors.As(err, &ar)
}

// onUserActionLocked records a connect attempt that ended waiting for the
// user, and reports whether err was such a case. For an app-level
// connection an authorization request means the server wants OAuth: it
// becomes per-user.
func (c *Conn) onUserActionLocked(err error) bool {
	var mv *MissingVariablesError
	var ar *oauthclient.AuthorizationRequiredError
	switch {
	case errors.As(err, &mv):
		c.setStateLocked(StateDisconnected, mv)
		return true
	case errors.As(err, &ar):
		if c.user == "" {
			c.scoped.Store(true)
			c.setStateLocked(StateDisconnected, errors.New("the server requires OAuth: each user signs in to it"))
			c.log().Info("server asked for OAuth; connecting per user from now on")
			return true
		}
		base := c.base()
		if base != c {
			base.mu.Lock()
		}
		base.authState = AuthNeedsAuthorization
		base.authURL = ar.URL
		if base.authDone == nil {
			base.authDone = make(chan struct{})
		}
		if base != c {
			base.mu.Unlock()
		}
		c.setStateLocked(StateDisconnected, &AuthorizationError{Server: c.name, URL: ar.URL})
		return true
	}
	return false
}

// base returns the primary link.
func (c *Conn) base() *Conn {
	if c.primary != nil {
		return c.primary
	}
	return c
}

// pendingAuthLocked fails fast while the user has not authorized yet,
// instead of starting a new authorization on every request. A token that
// another replica obtained meanwhile lets the attempt proceed.
func (c *Conn) pendingAuthLocked(ctx context.Context) error {
	if c.user == "" {
		return nil
	}
	base := c.base()
	var st AuthState
	var u string
	if base == c {
		st, u = c.authState, c.authURL
	} else {
		base.mu.Lock()
		st, u = base.authState, base.authURL
		base.mu.Unlock()
	}
	if st != AuthNeedsAuthorization || u == "" {
		return nil
	}
	if t, err := (&storeTokens{h: c.hub, user: c.user, server: c.name}).LoadToken(ctx); err == nil && t != nil {
		return nil
	}
	return &AuthorizationError{Server: c.name, URL: u}
}

// authorizedElsewhere notices an authorization that completed at another
// replica (the callback reaches whichever one the load balancer picks):
// while the connection waits for the user, a token in the store that its
// client does not hold ends the wait. It reports whether it did; the
// caller then connects.
func (c *Conn) authorizedElsewhere(ctx context.Context) bool {
	base := c.base()
	if base.user == "" || c.hub.opts.Store == nil {
		return false
	}
	base.mu.Lock()
	oc := base.oauth
	waiting := base.authState == AuthNeedsAuthorization
	base.mu.Unlock()
	if !waiting || oc == nil {
		return false
	}
	t, err := (&storeTokens{h: c.hub, user: base.user, server: base.name}).LoadToken(ctx)
	if err != nil || t == nil {
		return false
	}
	if held, err := oc.Token(ctx); err == nil && held != nil && held.AccessToken == t.AccessToken {
		return false // the token that stopped working
	}
	base.mu.Lock()
	if base.authState != AuthNeedsAuthorization {
		base.mu.Unlock()
		return false
	}
	base.authState = AuthAuthorized
	base.authURL = ""
	done := base.authDone
	base.authDone = nil
	base.mu.Unlock()
	if done != nil {
		close(done)
	}
	base.changed()
	return true
}

// noteAuthorized records, after a connect, that the user's token works.
func (c *Conn) noteAuthorized() {
	base := c.base()
	base.mu.Lock()
	defer base.mu.Unlock()
	if base.oauth == nil {
		return
	}
	if t, err := base.oauth.Token(context.Background()); err == nil && t != nil {
		base.authState = AuthAuthorized
		base.authURL = ""
	}
}

// oauthTransport wraps base with the connection's upstream OAuth client
// when the server may use OAuth: configured (oauth, requiresOAuth: true) or
// detected from a 401 (requiresOAuth not set to false).
func (c *Conn) oauthTransport(ctx context.Context, srv *config.Server, base http.RoundTripper) (http.RoundTripper, error) {
	h := c.hub
	if srv.RequiresOAuth != nil && !*srv.RequiresOAuth || h.opts.OAuthRedirectURL == "" || h.opts.Store == nil {
		return base, nil
	}
	// An app-level connection only detects that the server wants OAuth
	// (its client holds no token); the server then connects per user.
	oc, err := c.base().oauthFor(srv)
	if err != nil {
		return nil, err
	}
	rt := oc.Transport(base)
	if c.user == "" || h.opts.AuthorizeLinkURL == "" {
		return rt, nil
	}
	// The user is handed Switchboard's single-use link, not the
	// upstream's URL: opening it binds the flow to their browser.
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		var ar *oauthclient.AuthorizationRequiredError
		if errors.As(err, &ar) {
			link, lerr := h.authorizeLink(r.Context(), c.user, c.name, ar.URL)
			if lerr != nil {
				return nil, lerr
			}
			ar.URL = link
		}
		return resp, err
	}), nil
}

// oauthFor returns the primary link's OAuth client, creating it once.
func (c *Conn) oauthFor(srv *config.Server) (*oauthClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.oauth != nil {
		return c.oauth, nil
	}
	h := c.hub
	o := &oauthclient.Options{
		HTTPClient:        h.guard.client(srv.OAuthHeaders, adminURLs(c.cfg)...),
		RedirectURL:       h.opts.OAuthRedirectURL,
		ClientMetadataURL: h.opts.ClientMetadataURL,
		Logger:            h.logger.With(slog.String(attrServer, c.name)),
		Now:               h.now,
		Proactive:         srv.OAuth != nil || (srv.RequiresOAuth != nil && *srv.RequiresOAuth),
	}
	if o.RedirectURL == "" {
		return nil, errors.New("upstream OAuth needs Switchboard's public address for its callback")
	}
	if h.opts.Store != nil {
		o.Registrations = &storeRegistrations{h: h, server: c.name}
		if c.user != "" {
			o.Tokens = &storeTokens{h: h, user: c.user, server: c.name}
			lock := "hub.oauth-refresh:" + c.name + ":" + c.user
			o.Lock = h.storeLock(lock)
			o.Pending = &storePending{h: h, user: c.user, server: c.name}
		}
	}
	if a := srv.OAuth; a != nil {
		if a.ClientID != "" {
			ci := &oauthclient.ClientIdentity{ClientID: a.ClientID, ClientSecret: a.ClientSecret}
			switch a.TokenExchangeMethod {
			case "basic_auth_header":
				ci.AuthMethod = oauthclient.AuthClientSecretBasic
			case "default_post":
				ci.AuthMethod = oauthclient.AuthClientSecretPost
				if a.ClientSecret == "" {
					ci.AuthMethod = oauthclient.AuthNone
				}
			}
			o.Client = ci
		}
		if s := strings.TrimSpace(strings.ReplaceAll(a.Scope, ",", " ")); s != "" {
			o.Scopes = strings.Fields(s)
		}
		o.Audience = a.Audience
		o.SkipCodeChallengeCheck = a.SkipCodeChallengeCheck
		if a.RedirectURI != "" {
			o.RedirectURL = a.RedirectURI
		}
		// LibreChat's static endpoints: given, they replace discovery.
		o.AuthorizationURL, o.TokenURL, o.RevocationURL = a.AuthorizationURL, a.TokenURL, a.RevocationEndpoint
	}
	cl, err := oauthclient.New(srv.URL, o)
	if err != nil {
		return nil, err
	}
	c.oauth = &oauthClient{Client: cl}
	return c.oauth, nil
}

// revokeOAuth revokes and forgets the user's upstream token, if any.
func (c *Conn) revokeOAuth(ctx context.Context) error {
	if c.user == "" || c.hub.opts.Store == nil {
		return nil
	}
	t, err := (&storeTokens{h: c.hub, user: c.user, server: c.name}).LoadToken(ctx)
	if err != nil || t == nil {
		return err
	}
	srv, _, err := c.hub.userConfig(ctx, c.cfg, c.user)
	if err != nil {
		srv = c.cfg
	}
	oc, err := c.base().oauthFor(srv)
	if err != nil {
		return err
	}
	return oc.Revoke(ctx, "")
}

// kindPendingAuth is the store's ephemeral record kind of upstream
// authorizations that wait for their callback, keyed by state.
const kindPendingAuth = "hub.oauth-pending"

// pendingRecord is what the store keeps of a pending authorization: whose
// it is, for routing the one callback URL, and the flow itself (with the
// PKCE verifier; the store encrypts it).
type pendingRecord struct {
	User   string                            `json:"user"`
	Server string                            `json:"server"`
	Auth   *oauthclient.PendingAuthorization `json:"auth"`
}

// storePending keeps one (user, server) client's pending authorizations in
// the store, so that whichever replica the callback reaches completes it.
type storePending struct {
	h            *Hub
	user, server string
}

var _ oauthclient.PendingStore = (*storePending)(nil)

func (s *storePending) SavePending(ctx context.Context, p *oauthclient.PendingAuthorization, expires time.Time) error {
	b, err := json.Marshal(pendingRecord{User: s.user, Server: s.server, Auth: p})
	if err != nil {
		return err
	}
	return s.h.opts.Store.PutEphemeral(ctx, kindPendingAuth, p.State, b, expires)
}

func (s *storePending) TakePending(ctx context.Context, state string) (*oauthclient.PendingAuthorization, error) {
	b, err := s.h.opts.Store.TakeEphemeral(ctx, kindPendingAuth, state, s.h.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r pendingRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("stored pending authorization: %w", err)
	}
	if r.User != s.user || r.Server != s.server {
		return nil, nil
	}
	return r.Auth, nil
}

// pendingOf reads, without taking it, whose pending authorization state
// is; nil if there is none.
func (h *Hub) pendingOf(ctx context.Context, state string) (*pendingRecord, error) {
	if h.opts.Store == nil || state == "" {
		return nil, nil
	}
	b, err := h.opts.Store.GetEphemeral(ctx, kindPendingAuth, state, h.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var r pendingRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("stored pending authorization: %w", err)
	}
	return &r, nil
}

// Kinds of the store's ephemeral records of authorize links (keyed by the
// hash of the link's token) and of the browser bindings they leave
// (keyed by the upstream state).
const (
	kindAuthLink    = "hub.oauth-link"
	kindAuthBinding = "hub.oauth-binding"
	// authLinkTTL bounds an authorize link and its binding; the upstream
	// state (oauthclient's pending authorization) lives as long.
	authLinkTTL = 10 * time.Minute
)

// Refusals of OpenAuthorizeLink and CompleteOAuthCallback, for the pages
// that answer the browser.
var (
	// ErrForeignAuthorization: the link or callback belongs to an
	// authorization another Switchboard user started.
	ErrForeignAuthorization = errors.New("this authorization was started by another Switchboard account, so it was not linked to yours")
	// ErrConfirmLink: the callback reached a browser signed in as the
	// user who started the authorization but not the browser that opened
	// the link; the user has to confirm (OAuthCallback.Confirmed).
	ErrConfirmLink = errors.New("confirm that this account is to be linked to your Switchboard account")
	// ErrSignInToLink: the callback reached a browser that did not open
	// the link and is not signed in.
	ErrSignInToLink = errors.New("sign in to Switchboard to finish linking this account")
)

type authLink struct {
	User   string `json:"user"`
	Server string `json:"server"`
	URL    string `json:"url"` // the upstream's authorization URL
	State  string `json:"state"`
}

type authBinding struct {
	User    string `json:"user"`
	Browser string `json:"browser"` // hash of the browser's binding secret
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte("switchboard oauth link\x00" + s))
	return hex.EncodeToString(sum[:])
}

// authorizeLink stores a single-use link to the upstream authorization
// URL authURL of user's connection to server, and returns it.
func (h *Hub) authorizeLink(ctx context.Context, user, server, authURL string) (string, error) {
	au, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("authorization URL: %w", err)
	}
	token := randomID() + randomID()
	b, _ := json.Marshal(authLink{User: user, Server: server, URL: authURL, State: au.Query().Get("state")})
	if err := h.opts.Store.PutEphemeral(ctx, kindAuthLink, hashSecret(token), b, h.now().Add(authLinkTTL)); err != nil {
		return "", fmt.Errorf("save authorize link: %w", err)
	}
	return h.opts.AuthorizeLinkURL + "?" + url.Values{"link": {token}}.Encode(), nil
}

// OpenAuthorizeLink opens an authorize link the hub handed out, for the
// signed-in user (never ""): only the user whose authorization it is may
// open it, once. The authorization is then bound to browser, a secret the
// browser keeps in a cookie and presents at the callback. It returns the
// server and the upstream's authorization URL to send the browser to.
func (h *Hub) OpenAuthorizeLink(ctx context.Context, user, token, browser string) (server, authURL string, err error) {
	if h.opts.Store == nil || token == "" || len(token) > 200 {
		return "", "", ErrUnknownState
	}
	key := hashSecret(token)
	b, err := h.opts.Store.GetEphemeral(ctx, kindAuthLink, key, h.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", "", ErrUnknownState
	} else if err != nil {
		return "", "", err
	}
	var l authLink
	if err := json.Unmarshal(b, &l); err != nil {
		return "", "", fmt.Errorf("stored authorize link: %w", err)
	}
	if user == "" || l.User != user {
		// Not taken: the link stays usable by its owner.
		return l.Server, "", ErrForeignAuthorization
	}
	if _, err := h.opts.Store.TakeEphemeral(ctx, kindAuthLink, key, h.now()); errors.Is(err, store.ErrNotFound) {
		return "", "", ErrUnknownState // opened at the same moment elsewhere
	} else if err != nil {
		return "", "", err
	}
	bb, _ := json.Marshal(authBinding{User: user, Browser: hashSecret(browser)})
	if err := h.opts.Store.PutEphemeral(ctx, kindAuthBinding, l.State, bb, h.now().Add(authLinkTTL)); err != nil {
		return "", "", fmt.Errorf("save authorization binding: %w", err)
	}
	return l.Server, l.URL, nil
}

// OAuthCallback is a browser's return to the upstream OAuth callback URL.
type OAuthCallback struct {
	URL string // as the browser requested it, with its query
	// User is the browser's signed-in Switchboard user; "" for none.
	User string
	// Browser is the secret of the browser's binding cookie; "" for none.
	Browser string
	// Confirmed: User confirmed, on Switchboard's page, linking the
	// account to theirs.
	Confirmed bool
}

// boundTo reports whether the browser holding secret opened the link of
// the authorization of state, as user.
func (h *Hub) boundTo(ctx context.Context, state, user, secret string) bool {
	if secret == "" {
		return false
	}
	b, err := h.opts.Store.GetEphemeral(ctx, kindAuthBinding, state, h.now())
	if err != nil {
		return false
	}
	var ab authBinding
	return json.Unmarshal(b, &ab) == nil && ab.User == user &&
		subtle.ConstantTimeCompare([]byte(ab.Browser), []byte(hashSecret(secret))) == 1
}

// HandleOAuthCallback is CompleteOAuthCallback for a callback that user
// (or, for "", nobody) confirmed.
func (h *Hub) HandleOAuthCallback(ctx context.Context, user, callbackURL string) (server string, err error) {
	return h.CompleteOAuthCallback(ctx, &OAuthCallback{URL: callbackURL, User: user, Confirmed: true})
}

// CompleteOAuthCallback completes an upstream authorization given the URL
// the authorization server redirected the browser to (one URL for every
// server; the state names the user and the server). Any replica sharing
// the store can complete an authorization another one started. A callback
// for another user's authorization is refused (ErrForeignAuthorization).
// With authorize links (Options.AuthorizeLinkURL), the callback must come
// from the browser that opened the link (cb.Browser), or be confirmed by
// the signed-in user whose authorization it is: else ErrConfirmLink or
// ErrSignInToLink, and nothing is linked. It returns the server's name;
// the user's connection then connects in the background.
func (h *Hub) CompleteOAuthCallback(ctx context.Context, cb *OAuthCallback) (server string, err error) {
	u, err := url.Parse(cb.URL)
	if err != nil {
		return "", fmt.Errorf("callback: %w", err)
	}
	state := u.Query().Get("state")
	rec, err := h.pendingOf(ctx, state)
	if err != nil {
		return "", err
	}
	if rec == nil || rec.User == "" {
		return "", ErrUnknownState
	}
	if cb.User != "" && rec.User != cb.User {
		return rec.Server, ErrForeignAuthorization
	}
	if h.opts.AuthorizeLinkURL != "" && !h.boundTo(ctx, state, rec.User, cb.Browser) {
		switch {
		case cb.User == "":
			return rec.Server, ErrSignInToLink
		case !cb.Confirmed:
			return rec.Server, ErrConfirmLink
		}
	}
	if h.opts.AuthorizeLinkURL != "" {
		h.opts.Store.TakeEphemeral(ctx, kindAuthBinding, state, h.now())
	}
	t, err := h.Conn(rec.Server)
	if err != nil || !t.template() {
		return "", ErrUnknownState
	}
	c, err := t.ForUser(rec.User)
	if err != nil {
		return "", ErrUnknownState
	}
	srv, _, err := h.userConfig(ctx, c.cfg, c.user)
	if err != nil {
		return c.name, err
	}
	oc, err := c.oauthFor(srv)
	if err != nil {
		return c.name, err
	}
	c.mu.Lock()
	prev := c.authState
	c.authState = AuthAuthorizing
	c.mu.Unlock()
	c.changed()
	err = oc.HandleCallback(ctx, cb.URL)
	c.mu.Lock()
	done := c.authDone
	if errors.Is(err, oauthclient.ErrStateMismatch) {
		// Used already (a replay, or completed by another replica at the
		// same moment) or expired: nothing about the connection changed.
		c.authState = prev
		c.mu.Unlock()
		c.changed()
		return c.name, ErrUnknownState
	}
	if err != nil {
		c.authState = AuthFailed
		c.setStateLocked(StateFailed, fmt.Errorf("authorization failed: %w", err))
	} else {
		c.authState = AuthAuthorized
		c.authURL = ""
		c.authDone = nil
	}
	c.mu.Unlock()
	if err != nil {
		c.changed()
		return c.name, err
	}
	if done != nil {
		close(done)
	}
	c.connectNow()
	c.changed()
	return c.name, nil
}

// waitAuthorized waits until a pending authorization of the connection
// completes, or ctx ends. The callback may reach another replica: a new
// token in the store counts as completion too.
func (c *Conn) waitAuthorized(ctx context.Context) error {
	base := c.base()
	base.mu.Lock()
	ch := base.authDone
	base.mu.Unlock()
	if ch == nil {
		return nil
	}
	tokens := &storeTokens{h: c.hub, user: c.user, server: c.name}
	before := ""
	if t, err := tokens.LoadToken(ctx); err == nil && t != nil {
		before = t.AccessToken
	}
	poll := time.NewTicker(authPoll)
	defer poll.Stop()
	for {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			if t, err := tokens.LoadToken(ctx); err == nil && t != nil && t.AccessToken != before {
				return nil
			}
		}
	}
}

// storeLock returns a Locker over the store's cross-replica locks: it
// polls TryLock until it holds the lock or gives up.
func (h *Hub) storeLock(name string) oauthclient.Locker {
	return func(ctx context.Context) (func(), error) {
		owner := h.replica + ":" + randomID()
		deadline := h.now().Add(tokenLockWait)
		for {
			ok, err := h.opts.Store.TryLock(ctx, name, owner, time.Now().Add(tokenLockTTL))
			if err != nil {
				return nil, err
			}
			if ok {
				return func() { h.opts.Store.Unlock(context.WithoutCancel(ctx), name, owner) }, nil
			}
			if h.now().After(deadline) {
				return nil, errors.New("another replica holds the token lock too long")
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(tokenLockPoll):
			}
		}
	}
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// storeTokens keeps one user's token for one server as an encrypted
// credential.
type storeTokens struct {
	h            *Hub
	user, server string
}

var _ oauthclient.TokenStore = (*storeTokens)(nil)

func (s *storeTokens) LoadToken(ctx context.Context) (*oauthclient.Token, error) {
	if s.h.opts.Store == nil {
		return nil, nil
	}
	creds, err := s.h.opts.Store.Credentials(ctx, s.user, s.server)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		if c.Name == credToken && c.Value != "" {
			var t oauthclient.Token
			if err := json.Unmarshal([]byte(c.Value), &t); err != nil {
				return nil, fmt.Errorf("stored token: %w", err)
			}
			return &t, nil
		}
	}
	return nil, nil
}

func (s *storeTokens) SaveToken(ctx context.Context, t *oauthclient.Token) error {
	value := ""
	if t != nil {
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		value = string(b)
	}
	// An empty value is a deleted token: the store has no per-name delete.
	return s.h.opts.Store.SetCredential(ctx, &store.Credential{UserID: s.user, Server: s.server, Name: credToken, Value: value})
}

// storeRegistrations keeps a server's OAuth client registrations, by
// issuer, under the reserved registrationOwner user, encrypted like every
// credential. They are shared by all users of the server.
type storeRegistrations struct {
	h      *Hub
	server string
}

var _ oauthclient.Registrations = (*storeRegistrations)(nil)

func (s *storeRegistrations) Registration(ctx context.Context, issuer string) (*oauthclient.Registration, error) {
	creds, err := s.h.opts.Store.Credentials(ctx, registrationOwner, s.server)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		if c.Name == credRegPrefix+issuer && c.Value != "" {
			var r oauthclient.Registration
			if err := json.Unmarshal([]byte(c.Value), &r); err != nil {
				return nil, fmt.Errorf("stored registration: %w", err)
			}
			return &r, nil
		}
	}
	return nil, nil
}

func (s *storeRegistrations) SaveRegistration(ctx context.Context, issuer string, r *oauthclient.Registration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.h.opts.Store.SetCredential(ctx, &store.Credential{UserID: registrationOwner, Server: s.server, Name: credRegPrefix + issuer, Value: string(b)})
}

// urlGuard applies mcpSettings.allowedDomains and allowedAddresses to URLs
// that users supply or remote parties name.
type urlGuard struct {
	domains []string // lower-case; "*.example.com" wildcards; may carry scheme and port
	addrs   []string // CIDR, IP or ip:port entries for ssrf.Policy
	hosts   []string // host names from allowedAddresses, trusted at any address
}

func newURLGuard(domains, addrs []string) *urlGuard {
	g := &urlGuard{}
	for _, d := range domains {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			g.domains = append(g.domains, d)
		}
	}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if isAddrEntry(a) {
			g.addrs = append(g.addrs, a)
			continue
		}
		// LibreChat also accepts host names (with a port) here.
		host := a
		if h, _, ok := strings.Cut(a, ":"); ok {
			host = h
		}
		g.hosts = append(g.hosts, strings.ToLower(host))
	}
	return g
}

func isAddrEntry(s string) bool {
	if strings.Contains(s, "/") {
		return true
	}
	host := s
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[:i], ":") {
		host = s[:i]
	}
	host = strings.Trim(host, "[]")
	for _, r := range host {
		if !(r >= '0' && r <= '9' || r == '.' || r == ':' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// allows checks a URL's scheme, host and port against allowedDomains. With
// no allowedDomains every host is allowed (the address rules still apply).
func (g *urlGuard) allows(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("refused %s: only http and https URLs may be used", u.Redacted())
	}
	if len(g.domains) == 0 {
		return nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, d := range g.domains {
		scheme := ""
		if s, rest, ok := strings.Cut(d, "://"); ok {
			scheme, d = s, rest
		}
		dport := ""
		if h, p, ok := strings.Cut(d, ":"); ok {
			d, dport = h, p
		}
		if scheme != "" && scheme != u.Scheme || dport != "" && dport != port {
			continue
		}
		if d == host || strings.HasPrefix(d, "*.") && strings.HasSuffix(host, d[1:]) {
			return nil
		}
	}
	return fmt.Errorf("refused %s: host %s is not in mcpSettings.allowedDomains", u.Redacted(), host)
}

// policy returns the dial-time policy; trusted names hosts that may
// resolve to any address (explicitly allowed domains, and the admin's own
// server host).
func (g *urlGuard) policy(trusted ...string) *ssrf.Policy {
	p := &ssrf.Policy{AllowedAddresses: g.addrs, AllowedHosts: append([]string(nil), g.hosts...)}
	for _, d := range g.domains {
		if !strings.Contains(d, "*") {
			if _, rest, ok := strings.Cut(d, "://"); ok {
				d = rest
			}
			if h, _, ok := strings.Cut(d, ":"); ok {
				d = h
			}
			p.AllowedHosts = append(p.AllowedHosts, d)
		}
	}
	p.AllowedHosts = append(p.AllowedHosts, trusted...)
	return p
}

// adminURLs returns the URLs of a server's OAuth traffic that the admin
// wrote in the config (the server URL and configured endpoints), leaving
// out any that a user's placeholder value could steer.
func adminURLs(s *config.Server) []string {
	out := []string{s.URL}
	if a := s.OAuth; a != nil {
		out = append(out, a.AuthorizationURL, a.TokenURL, a.RevocationEndpoint)
	}
	return slices.DeleteFunc(out, func(u string) bool { return u == "" || strings.Contains(u, "{{") })
}

// client returns the HTTP client for a server's OAuth traffic: every URL
// is checked against allowedDomains, and every address at dial time, so
// metadata, endpoints and redirects cannot reach private networks. The
// hosts of admin-configured URLs (adminURLs: the server's own, where its
// metadata lives, and configured endpoints) may be private. extra headers
// (oauth_headers) go with every request.
func (g *urlGuard) client(extra map[string]string, admin ...string) *http.Client {
	var trusted []string
	for _, a := range admin {
		if u, err := url.Parse(a); err == nil && u.Hostname() != "" && !slices.Contains(trusted, u.Hostname()) {
			trusted = append(trusted, u.Hostname())
		}
	}
	c := ssrf.NewClient(g.policy(trusted...))
	inner := c.Transport
	c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := g.allows(r.URL); err != nil && !slices.ContainsFunc(trusted, func(h string) bool { return strings.EqualFold(r.URL.Hostname(), h) }) {
			return nil, err
		}
		if len(extra) > 0 {
			r = r.Clone(r.Context())
			for k, v := range extra {
				r.Header.Set(k, v)
			}
		}
		return inner.RoundTrip(r)
	})
	check := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := g.allows(req.URL); err != nil {
			return err
		}
		return check(req, via)
	}
	return c
}

// userURLTransport returns the transport for MCP connections to URLs whose
// host a user's value chose: allowedDomains and the address rules apply.
func (h *Hub) userURLTransport(timeout time.Duration) http.RoundTripper {
	g := h.guard
	inner := ssrf.NewClient(&ssrf.Policy{
		AllowedAddresses: g.policy().AllowedAddresses, AllowedHosts: g.policy().AllowedHosts,
		Timeout: max(timeout, defaultTimeout), MaxBytes: -1,
	}).Transport
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if err := g.allows(r.URL); err != nil {
			return nil, err
		}
		return inner.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
