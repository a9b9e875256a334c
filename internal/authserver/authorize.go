package authserver

// The authorization flow, in the order the MCP security best practices ask
// for (consent before the upstream login, against confused deputies):
//
//  1. GET /authorize validates the client and the redirect URI first; until
//     both are known good, errors are an HTML page and never a redirect.
//     Then it validates the rest (errors now redirect with iss, RFC 9207),
//     stores the pending request (ephemeral, keyed by a random id, bound to
//     the browser's session cookie, with a CSRF token) and shows:
//       - for a signed-in user with remembered consent for (user, client,
//         redirect URI, resource) covering the scopes: nothing, the code is
//         issued (see consented);
//       - for a signed-in user: the consent page (Allow / Deny);
//       - otherwise: the sign-in page, which names the client, the redirect
//         host and the scopes up front. Its buttons ("Sign in and allow",
//         "Allow and continue with NAVER") are the consent, a CSRF-protected
//         POST; only after it does the browser go to the identity provider.
//  2. POST /login (local) or POST /login/{provider} → provider →
//     GET /login/{provider}/callback (state single-use and bound to the
//     browser, nonce and iss checked by idp). The user is signed in with a
//     fresh session (no fixation), consent is remembered, a code is issued.
//  3. POST /authorize/consent records the signed-in user's decision.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

const (
	kindSession  = "authserver.session"
	kindPending  = "authserver.authreq"
	kindUpstream = "authserver.upstream"
	sessionTTL   = 12 * time.Hour
	pendingTTL   = 10 * time.Minute
	maxFormBytes = 64 << 10
)

// pendingAuth is an authorization request waiting for sign-in or consent.
type pendingAuth struct {
	ClientID      string   `json:"client_id"`
	ClientName    string   `json:"client_name"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	CodeChallenge string   `json:"code_challenge"`
	Resource      string   `json:"resource"`
	Scopes        []string `json:"scopes"`
	CSRF          string   `json:"csrf"`
	Session       string   `json:"session"` // hash of the browser session it belongs to
	// Browser marks a sign-in to Switchboard's own pages (GET /login):
	// there is no client, and the browser returns to Next, a path on this
	// origin, or to a "signed in" page when Next is empty.
	Browser bool   `json:"browser,omitempty"`
	Next    string `json:"next,omitempty"`
}

// upstreamLogin is a sign-in at an identity provider in flight, keyed by
// the state sent to the provider.
type upstreamLogin struct {
	Provider string      `json:"provider"`
	Nonce    string      `json:"nonce"`
	Verifier string      `json:"verifier"`
	Pending  pendingAuth `json:"pending"`
}

// session is a browser's sign-in state. UserID is empty before sign-in:
// the anonymous session is what pending requests and CSRF tokens bind to.
type session struct {
	UserID string    `json:"user_id,omitempty"`
	Since  time.Time `json:"since"`
}

func (s *Server) cookieName() string {
	if s.secure {
		return "__Host-sb_session"
	}
	return "sb_session"
}

// session returns the browser's session and its key (the hash of the
// cookie value), or nil.
func (s *Server) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(s.cookieName())
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return "", nil
	}
	key := hashToken(c.Value)
	b, err := s.st.GetEphemeral(r.Context(), kindSession, key, s.now())
	if err != nil {
		return "", nil
	}
	var sess session
	if json.Unmarshal(b, &sess) != nil {
		return "", nil
	}
	return key, &sess
}

// newSession starts a session, replacing the browser's previous one so
// that a session id planted before sign-in is worthless after it.
func (s *Server) newSession(w http.ResponseWriter, r *http.Request, oldKey, userID string) (string, error) {
	if oldKey != "" {
		s.st.TakeEphemeral(r.Context(), kindSession, oldKey, s.now())
	}
	tok := randomToken()
	key := hashToken(tok)
	b, _ := json.Marshal(session{UserID: userID, Since: s.now()})
	if err := s.st.PutEphemeral(r.Context(), kindSession, key, b, s.now().Add(sessionTTL)); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: tok, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		Secure: s.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	return key, nil
}

// authzError is an error of an authorization request that is sent to the
// client's redirect URI (RFC 6749 §4.1.2.1).
type authzError struct{ code, description string }

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, e authzError) {
	if redirectURI == "" {
		// A browser sign-in has no client to tell.
		s.errorPage(w, r, http.StatusForbidden, e.description)
		return
	}
	q := url.Values{"error": {e.code}}
	if e.description != "" {
		q.Set("error_description", e.description)
	}
	s.redirectBack(w, r, redirectURI, state, q)
}

// redirectBack sends the browser to the client with q plus state and, on
// every response, iss (RFC 9207 §2).
func (s *Server) redirectBack(w http.ResponseWriter, r *http.Request, redirectURI, state string, q url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "invalid redirect URI")
		return
	}
	v := u.Query()
	for k, vs := range q {
		v[k] = vs
	}
	if state != "" {
		v.Set("state", state)
	}
	v.Set("iss", s.issuer)
	u.RawQuery = v.Encode()
	setPageHeaders(w)
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// single returns a parameter that must appear at most once (RFC 6749 §3.1).
func single(q url.Values, name string) (string, bool) {
	vs := q[name]
	if len(vs) > 1 {
		return "", false
	}
	if len(vs) == 0 {
		return "", true
	}
	return vs[0], true
}

// resolveResource maps the RFC 8707 resource parameter to one of the MCP
// endpoints. Clients such as ChatGPT append a query string to the resource;
// it is dropped when the endpoint itself has none.
func (s *Server) resolveResource(raw string) (string, bool) {
	if raw == "" {
		return s.defaultResource(), true
	}
	known := s.resources()
	if slices.Contains(known, raw) {
		return raw, true
	}
	if strings.Contains(raw, "#") {
		return "", false
	}
	if base, _, ok := strings.Cut(raw, "?"); ok && slices.Contains(known, base) {
		return base, true
	}
	// A trailing slash is the same endpoint to the gateway's router.
	if t := strings.TrimSuffix(raw, "/"); t != raw && slices.Contains(known, t) {
		return t, true
	}
	return "", false
}

// unknownServerResource is resolveResource for the endpoint of a server
// that is not configured: the same normalization, for a URL of the shape
// Issuer+"/mcp/{name}".
func (s *Server) unknownServerResource(raw string) (string, bool) {
	if strings.Contains(raw, "#") {
		return "", false
	}
	base, _, _ := strings.Cut(raw, "?")
	base = strings.TrimSuffix(base, "/")
	return base, s.serverResourceShape(base)
}

func validChallenge(c string) bool {
	if len(c) != 43 { // base64url of a SHA-256 digest, unpadded
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// verifyPKCE checks an RFC 7636 §4.6 S256 code verifier.
func verifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()

	clientID, ok := single(q, "client_id")
	if !ok || clientID == "" {
		s.errorPage(w, r, http.StatusBadRequest, "The request has no valid client_id.")
		return
	}
	c, err := s.client(ctx, clientID)
	if err != nil {
		var ce *cimdError
		switch {
		case errors.As(err, &ce):
			s.errorPage(w, r, http.StatusBadRequest, "The application's "+ce.Error()+".")
		case errors.Is(err, errUnknownClient):
			s.errorPage(w, r, http.StatusBadRequest, "Unknown application (client_id). Remove and add the server again in your MCP client.")
		default:
			s.log.Error("looking up client", slogClient(clientID), errAttr(err))
			s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
		}
		return
	}
	redirectURI, ok := single(q, "redirect_uri")
	if !ok || redirectURI == "" || !matchRedirectURI(redirectURI, c.RedirectURIs) {
		s.errorPage(w, r, http.StatusBadRequest, "The redirect_uri is not registered for this application.")
		return
	}
	state, ok := single(q, "state")
	if !ok {
		s.redirectError(w, r, redirectURI, "", authzError{"invalid_request", "state given more than once"})
		return
	}
	fail := func(code, d string) { s.redirectError(w, r, redirectURI, state, authzError{code, d}) }
	for _, p := range []string{"response_type", "code_challenge", "code_challenge_method", "scope", "prompt"} {
		if _, ok := single(q, p); !ok {
			fail("invalid_request", p+" given more than once")
			return
		}
	}
	if q.Has("request") || q.Has("request_uri") {
		fail("request_not_supported", "request objects are not supported")
		return
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	if !slices.Contains(c.GrantTypes, "authorization_code") && len(c.GrantTypes) > 0 {
		fail("unauthorized_client", "the client may not use the authorization code grant")
		return
	}
	// PKCE S256 is mandatory (OAuth 2.1 §4.1.1); plain is refused.
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge == "" {
		fail("invalid_request", "code_challenge is required (PKCE)")
		return
	}
	if method != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !validChallenge(challenge) {
		fail("invalid_request", "code_challenge is malformed")
		return
	}
	if len(q["resource"]) > 1 {
		fail("invalid_target", "only one resource may be requested")
		return
	}
	resource, known := s.resolveResource(q.Get("resource"))
	if !known {
		// An endpoint of a server that does not exist is refused only once
		// the user is signed in (here or in finish), so that the answer to
		// an anonymous request does not tell which servers exist (see
		// handlePRM).
		if resource, ok = s.unknownServerResource(q.Get("resource")); !ok {
			fail("invalid_target", "resource is not an MCP endpoint of this server")
			return
		}
	}
	scopes := strings.Fields(q.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{s.scopes[0]}
	}
	if !scopesSubset(scopes, s.scopes) || (c.Scope != "" && !scopesSubset(scopes, strings.Fields(c.Scope))) {
		fail("invalid_scope", "unsupported scope")
		return
	}
	scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
	if err := s.st.TouchClient(ctx, c.ID, s.now()); err != nil {
		s.log.Warn("touching client", slogClient(c.ID), errAttr(err))
	}

	p := &pendingAuth{
		ClientID: c.ID, ClientName: c.Name, RedirectURI: redirectURI, State: state,
		CodeChallenge: challenge, Resource: resource, Scopes: scopes, CSRF: randomToken(),
	}
	if p.ClientName == "" {
		p.ClientName = c.ID
	}
	prompt := strings.Fields(q.Get("prompt"))
	sessKey, sess := s.session(r)
	if sess != nil && sess.UserID != "" && !slices.Contains(prompt, "login") {
		if !known {
			fail("invalid_target", "resource is not an MCP endpoint of this server")
			return
		}
		if !slices.Contains(prompt, "consent") {
			if s.consented(ctx, sess.UserID, c.ID, redirectURI, resource, scopes) {
				s.finish(w, r, p, sess.UserID)
				return
			}
		}
		if slices.Contains(prompt, "none") {
			fail("consent_required", "the user has not approved this application")
			return
		}
		p.Session = sessKey
		s.showPending(w, r, p, "consent", "")
		return
	}
	if slices.Contains(prompt, "none") {
		fail("login_required", "the user is not signed in")
		return
	}
	if !s.local && len(s.provOrder) == 0 {
		s.errorPage(w, r, http.StatusInternalServerError, "No sign-in method is configured.")
		return
	}
	if sess == nil {
		if sessKey, err = s.newSession(w, r, "", ""); err != nil {
			s.log.Error("starting session", errAttr(err))
			s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
			return
		}
	}
	p.Session = sessKey
	s.showPending(w, r, p, "signin", "")
}

// showPending stores p under a new request id and renders its page.
func (s *Server) showPending(w http.ResponseWriter, r *http.Request, p *pendingAuth, page, errMsg string) {
	rid := randomToken()
	b, _ := json.Marshal(p)
	if err := s.st.PutEphemeral(r.Context(), kindPending, rid, b, s.now().Add(pendingTTL)); err != nil {
		s.log.Error("saving authorization request", errAttr(err))
		s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.renderPending(w, r, http.StatusOK, rid, p, page, errMsg, "")
}

func (s *Server) renderPending(w http.ResponseWriter, r *http.Request, status int, rid string, p *pendingAuth, page, errMsg, username string) {
	host := p.RedirectURI
	if u, err := url.Parse(p.RedirectURI); err == nil {
		host = u.Host
		if host == "" {
			host = u.Scheme + ":"
		}
	}
	d := &pageData{
		Page: page, Browser: p.Browser, RID: rid, CSRF: p.CSRF, ClientName: p.ClientName, RedirectHost: host,
		Resource: p.Resource, Scopes: p.Scopes, Local: s.local, Error: errMsg, Username: username,
	}
	for _, pr := range s.provOrder {
		d.Providers = append(d.Providers, providerChoice{pr.Name(), pr.DisplayName()})
	}
	if errMsg != "" {
		d.Error = msg(pageLang(r), errMsg)
	}
	s.renderPage(w, r, status, d)
}

// pendingFromForm reads the pending request a form refers to and checks the
// CSRF token and the browser binding. It does not consume the request.
func (s *Server) pendingFromForm(w http.ResponseWriter, r *http.Request) (rid string, p *pendingAuth, sessKey string, sess *session, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Malformed form.")
		return
	}
	// Defence in depth next to the token: a cross-site form post carries a
	// foreign Origin.
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != s.origin() {
		s.errorPage(w, r, http.StatusForbidden, "Cross-site request refused.")
		return
	}
	rid = r.PostForm.Get("rid")
	if rid == "" || len(rid) > 100 {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in request is missing. Start again from your MCP client.")
		return
	}
	b, err := s.st.GetEphemeral(r.Context(), kindPending, rid, s.now())
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in request expired or was already used. Start again from your MCP client.")
		return
	}
	p = new(pendingAuth)
	if json.Unmarshal(b, p) != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid sign-in request.")
		return
	}
	sessKey, sess = s.session(r)
	csrf := r.PostForm.Get("csrf")
	if sess == nil || subtle.ConstantTimeCompare([]byte(sessKey), []byte(p.Session)) != 1 ||
		csrf == "" || subtle.ConstantTimeCompare([]byte(csrf), []byte(p.CSRF)) != 1 {
		s.errorPage(w, r, http.StatusForbidden, "The form could not be verified (CSRF). Start again from your MCP client.")
		return
	}
	return rid, p, sessKey, sess, true
}

func (s *Server) origin() string {
	u, _ := url.Parse(s.issuer)
	return u.Scheme + "://" + u.Host
}

// take consumes the pending request; false when another request used it.
func (s *Server) take(w http.ResponseWriter, r *http.Request, rid string) bool {
	if _, err := s.st.TakeEphemeral(r.Context(), kindPending, rid, s.now()); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in request was already used. Start again from your MCP client.")
		return false
	}
	return true
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	rid, p, _, sess, ok := s.pendingFromForm(w, r)
	if !ok {
		return
	}
	if p.Browser {
		s.errorPage(w, r, http.StatusBadRequest, "There is nothing to consent to.")
		return
	}
	action := r.PostForm.Get("action")
	if action != "allow" && action != "deny" {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown action.")
		return
	}
	if action == "allow" && sess.UserID == "" {
		s.errorPage(w, r, http.StatusForbidden, "Sign in first.")
		return
	}
	if !s.take(w, r, rid) {
		return
	}
	if action == "deny" {
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"access_denied", "the user denied the request"})
		return
	}
	s.finish(w, r, p, sess.UserID)
}

func (s *Server) handleLocalLogin(w http.ResponseWriter, r *http.Request) {
	if !s.local {
		http.NotFound(w, r)
		return
	}
	rid, p, sessKey, _, ok := s.pendingFromForm(w, r)
	if !ok {
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	throttleKey := newLoginThrottle(username, s.clientIP(r))
	if blocked, retry := s.loginBlocked(r.Context(), throttleKey); blocked {
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
		s.renderPending(w, r, http.StatusTooManyRequests, rid, p, "signin", "throttled", username)
		return
	}
	u, ok := s.authenticate(r.Context(), username, password)
	if !ok {
		s.loginFailed(r.Context(), throttleKey)
		s.renderPending(w, r, http.StatusUnauthorized, rid, p, "signin", "bad_login", username)
		return
	}
	s.loginSucceeded(r.Context(), throttleKey)
	if !s.take(w, r, rid) {
		return
	}
	if _, err := s.newSession(w, r, sessKey, u.ID); err != nil {
		s.log.Error("starting session", errAttr(err))
		s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.finish(w, r, p, u.ID)
}

func (s *Server) handleProviderLogin(w http.ResponseWriter, r *http.Request) {
	prov, ok := s.providers[r.PathValue("provider")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	rid, p, _, _, ok := s.pendingFromForm(w, r)
	if !ok {
		return
	}
	if !s.take(w, r, rid) {
		return
	}
	verifier := randomToken() + randomToken()[:20]
	sum := sha256.Sum256([]byte(verifier))
	up := upstreamLogin{Provider: prov.Name(), Nonce: randomToken(), Verifier: verifier, Pending: *p}
	state := randomToken()
	b, _ := json.Marshal(up)
	if err := s.st.PutEphemeral(r.Context(), kindUpstream, state, b, s.now().Add(pendingTTL)); err != nil {
		s.log.Error("saving upstream login", errAttr(err))
		s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	setPageHeaders(w)
	http.Redirect(w, r, prov.AuthCodeURL(state, up.Nonce, base64.RawURLEncoding.EncodeToString(sum[:]), s.callbackURL(prov)), http.StatusFound)
}

func (s *Server) callbackURL(p idp.Provider) string {
	return s.issuer + "/login/" + url.PathEscape(p.Name()) + "/callback"
}

func (s *Server) handleProviderCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	prov, ok := s.providers[r.PathValue("provider")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 100 {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in response has no valid state.")
		return
	}
	// Single use: whoever takes it first wins, a replay finds nothing.
	b, err := s.st.TakeEphemeral(ctx, kindUpstream, state, s.now())
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in response does not match a sign-in in progress (state). Start again from your MCP client.")
		return
	}
	var up upstreamLogin
	if json.Unmarshal(b, &up) != nil || up.Provider != prov.Name() {
		s.errorPage(w, r, http.StatusBadRequest, "The sign-in response does not match a sign-in in progress (state).")
		return
	}
	p := &up.Pending
	sessKey, sess := s.session(r)
	if sess == nil || subtle.ConstantTimeCompare([]byte(sessKey), []byte(p.Session)) != 1 {
		// The callback reached another browser than the one that started:
		// login CSRF or a leaked URL.
		s.errorPage(w, r, http.StatusForbidden, "The sign-in response belongs to another browser session. Start again from your MCP client.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.log.Info("provider refused sign-in", slogString(logKeyProvider, prov.Name()), slogString("error", e))
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"access_denied", "sign-in at " + prov.DisplayName() + " was cancelled or refused"})
		return
	}
	ident, tok, err := prov.Exchange(ctx, q, up.Verifier, up.Nonce, s.callbackURL(prov))
	if errors.Is(err, idp.ErrDomainNotAllowed) {
		// Shown to the person, not sent to the client: they can act on it.
		s.log.Info("provider sign-in refused: domain not allowed", slogString(logKeyProvider, prov.Name()), errAttr(err))
		s.errorPage(w, r, http.StatusForbidden, fmt.Sprintf(msg(pageLang(r), "org_refused"), prov.DisplayName()))
		return
	}
	if err != nil {
		s.log.Warn("provider sign-in failed", slogString(logKeyProvider, prov.Name()), errAttr(err))
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"access_denied", "sign-in at " + prov.DisplayName() + " failed"})
		return
	}
	u, err := s.linkUser(ctx, prov.Name(), ident)
	if err != nil {
		s.log.Error("linking provider identity", slogString(logKeyProvider, prov.Name()), errAttr(err))
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"access_denied", "the account cannot be used"})
		return
	}
	if tok != nil {
		if err := s.st.SaveProviderToken(ctx, &store.ProviderToken{
			UserID: u.ID, Provider: prov.Name(), AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
			TokenType: tok.TokenType, Scopes: tok.Scopes, Expiry: tok.Expiry, IDToken: tok.IDToken, UpdatedAt: s.now(),
		}); err != nil {
			s.log.Error("saving provider token", slogString(logKeyProvider, prov.Name()), errAttr(err))
		}
	}
	if _, err := s.newSession(w, r, sessKey, u.ID); err != nil {
		s.log.Error("starting session", errAttr(err))
		s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
		return
	}
	s.finish(w, r, p, u.ID)
}

var errDisabled = errors.New("user is disabled")

// linkUser finds the user an identity belongs to, or creates one. Accounts
// are never joined by e-mail address: that would let whoever controls an
// address at any provider take over the account.
//
// A user created from an identity gets a username from the provider's
// profile (NAVER nickname, preferred_username, GitHub login; else the
// e-mail's local part), made unique with a suffix (kim, kim-2, ...), and
// the profile's e-mail address when the provider vouches for it, so that
// access rules, API keys and the command line name them as local users.
// Users created before usernames were given get one at their next sign-in.
func (s *Server) linkUser(ctx context.Context, provider string, id *idp.Identity) (*store.User, error) {
	if id == nil || id.Subject == "" {
		return nil, errors.New("provider returned no subject")
	}
	for range 2 {
		ident, err := s.st.IdentityBySubject(ctx, provider, id.Subject)
		if err == nil {
			u, err := s.st.UserByID(ctx, ident.UserID)
			if err != nil {
				return nil, err
			}
			if u.Disabled {
				return nil, errDisabled
			}
			if u.Username == "" {
				s.nameUser(ctx, u, id)
			}
			s.applyAdminRules(ctx, u, provider, id)
			return u, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		u := &store.User{Name: id.Name, Role: store.RoleUser}
		if s.isConfiguredAdmin(provider, id) {
			u.Role = store.RoleAdmin
		}
		if id.EmailVerified {
			u.Email = id.Email
		}
		if err := s.createNamedUser(ctx, u, id); err != nil {
			return nil, err
		}
		err = s.st.LinkIdentity(ctx, &store.Identity{
			Provider: provider, Subject: id.Subject, UserID: u.ID, Email: id.Email, Name: id.Name,
			Profile: id.Profile, CreatedAt: s.now(),
		})
		if err == nil {
			s.log.Info("created user from provider identity", slogString(logKeyProvider, provider), slogString(logKeyUser, u.ID))
			return u, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		// Another replica linked the identity meanwhile; use its user.
		u.Disabled = true
		s.st.UpdateUser(ctx, u)
	}
	return nil, errors.New("identity link kept conflicting")
}

// AdminRule is one auth.admins entry: users with this vouched-for e-mail
// address, or this provider's subject, are admins.
type AdminRule struct {
	Email             string
	Provider, Subject string
}

// isConfiguredAdmin reports whether an auth.admins rule names the
// identity. An address counts only when the provider vouches for it.
func (s *Server) isConfiguredAdmin(provider string, id *idp.Identity) bool {
	for _, a := range s.admins {
		switch {
		case a.Provider != "" && a.Provider == provider && a.Subject == id.Subject:
			return true
		case a.Email != "" && id.EmailVerified && strings.EqualFold(a.Email, id.Email):
			return true
		}
	}
	return false
}

// applyAdminRules makes an existing user an admin when auth.admins names
// them; it never demotes (an admin made with the command line stays one).
func (s *Server) applyAdminRules(ctx context.Context, u *store.User, provider string, id *idp.Identity) {
	if u.Role == store.RoleAdmin || !s.isConfiguredAdmin(provider, id) {
		return
	}
	v := *u
	v.Role = store.RoleAdmin
	if err := s.st.UpdateUser(ctx, &v); err != nil {
		s.log.Warn("making a user admin (auth.admins)", slogString(logKeyUser, u.ID), errAttr(err))
		return
	}
	*u = v
	s.cache.drop("user:" + u.ID)
	s.log.Info("user made admin by auth.admins", slogString(logKeyProvider, provider), slogString(logKeyUser, u.ID))
}

// maxUsernameTries bounds the suffixes tried before a random one.
const maxUsernameTries = 50

// createNamedUser creates u with the first free username derived from id.
// An e-mail address another user already has is left out rather than
// failing the sign-in.
func (s *Server) createNamedUser(ctx context.Context, u *store.User, id *idp.Identity) error {
	base := usernameBase(id)
	for n := 1; ; n++ {
		u.Username = usernameCandidate(base, n)
		if n <= maxUsernameTries {
			if _, err := s.st.UserByUsername(ctx, u.Username); err == nil {
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		if u.Email != "" {
			if _, err := s.st.UserByEmail(ctx, u.Email); err == nil {
				u.Email = ""
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		err := s.st.CreateUser(ctx, u)
		if !errors.Is(err, store.ErrConflict) || n > maxUsernameTries+2 {
			return err
		}
		// Taken meanwhile (another sign-in at the same moment): try on.
	}
}

// nameUser gives an existing user without a username one (and the
// provider's vouched-for e-mail, if the user has none); failures are
// logged and the sign-in goes on.
func (s *Server) nameUser(ctx context.Context, u *store.User, id *idp.Identity) {
	base := usernameBase(id)
	email := u.Email
	if email == "" && id.EmailVerified {
		if _, err := s.st.UserByEmail(ctx, id.Email); errors.Is(err, store.ErrNotFound) {
			email = id.Email
		}
	}
	for n := 1; n <= maxUsernameTries+1; n++ {
		name := usernameCandidate(base, n)
		if n <= maxUsernameTries {
			if _, err := s.st.UserByUsername(ctx, name); err == nil {
				continue
			}
		}
		v := *u
		v.Username, v.Email = name, email
		err := s.st.UpdateUser(ctx, &v)
		if err == nil {
			*u = v
			s.cache.drop("user:" + u.ID)
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			s.log.Warn("naming a user from their identity", slogString(logKeyUser, u.ID), errAttr(err))
			return
		}
		email = u.Email // the conflict may be the address: keep the old one
	}
}

// usernameBase is the username a provider's profile suggests: at most 64
// characters, without spaces.
func usernameBase(id *idp.Identity) string {
	name := strings.TrimSpace(id.Username)
	if name == "" {
		name, _, _ = strings.Cut(id.Email, "@")
	}
	name = strings.Join(strings.Fields(name), "-")
	if name == "" {
		name = "user"
	}
	if r := []rune(name); len(r) > 56 {
		name = string(r[:56]) // room for a suffix within 64
	}
	return name
}

// usernameCandidate is base for n = 1, base-n up to maxUsernameTries, then
// base with a random suffix.
func usernameCandidate(base string, n int) string {
	switch {
	case n == 1:
		return base
	case n <= maxUsernameTries:
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base + "-" + randomToken()[:6]
}

// finish remembers consent and issues the authorization code, or ends a
// browser sign-in.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, p *pendingAuth, userID string) {
	if p.Browser {
		s.signedIn(w, r, p.Next)
		return
	}
	// The resource is checked again: it may name a server that does not
	// exist (see handleAuthorize), or one removed during the sign-in.
	if _, ok := s.resolveResource(p.Resource); !ok {
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"invalid_target", "resource is not an MCP endpoint of this server"})
		return
	}
	ctx := r.Context()
	now := s.now()
	// The scopes approved earlier for the same resource stay approved.
	scopes := p.Scopes
	if prev, err := s.st.ConsentFor(ctx, userID, p.ClientID, p.RedirectURI, p.Resource); err == nil {
		scopes = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(prev.Scopes), scopes...))))
	}
	if err := s.st.SaveConsent(ctx, &store.Consent{
		UserID: userID, ClientID: p.ClientID, RedirectURI: p.RedirectURI, Resource: p.Resource, Scopes: scopes, CreatedAt: now,
	}); err != nil {
		s.log.Warn("saving consent", errAttr(err))
	}
	code := randomToken()
	if err := s.st.SaveAuthCode(ctx, &store.AuthCode{
		Hash: hashToken(code), ClientID: p.ClientID, UserID: userID, RedirectURI: p.RedirectURI,
		CodeChallenge: p.CodeChallenge, Resource: p.Resource, Scopes: p.Scopes,
		ExpiresAt: now.Add(s.codeTTL), CreatedAt: now,
	}); err != nil {
		s.log.Error("saving authorization code", errAttr(err))
		s.redirectError(w, r, p.RedirectURI, p.State, authzError{"server_error", "could not issue a code"})
		return
	}
	s.redirectBack(w, r, p.RedirectURI, p.State, url.Values{"code": {code}})
}

// consented reports whether the user approved the client at redirectURI for
// resource and every scope asked for. Consent is per resource (RFC 8707):
// approving one server's endpoint /mcp/{name} does not approve the
// aggregate /mcp, which reaches every server, nor another server's. The
// other way round it does: /mcp reaches what /mcp/{name} does, so consent
// for /mcp covers each /mcp/{name} for the scopes it named. A scope never
// approved asks again.
func (s *Server) consented(ctx context.Context, userID, clientID, redirectURI, resource string, scopes []string) bool {
	covers := []string{resource}
	if resource != s.defaultResource() {
		covers = append(covers, s.defaultResource())
	}
	for _, res := range covers {
		c, err := s.st.ConsentFor(ctx, userID, clientID, redirectURI, res)
		if err == nil && scopesSubset(scopes, c.Scopes) {
			return true
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("looking up consent", errAttr(err))
		}
	}
	return false
}
