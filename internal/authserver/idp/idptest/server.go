// Package idptest provides fakes of the identity providers idp talks to —
// NAVER (login, profile, calendar, search), Kakao Login (OIDC and REST),
// NAVER WORKS, Google, GitHub and a generic OpenID Connect issuer — as
// httptest servers speaking the real wire formats of shared/WIRE.md, quirks
// included. The Kakao and NAVER WORKS formats, which WIRE.md does not
// cover, are written down at the top of kakao.go and naverworks.go. Tests of any package may import it.
//
// Every fake auto-approves: its authorize endpoint redirects straight back to
// redirect_uri with a code for the default user, or for the user named by a
// login_hint (GitHub: login) query parameter. Faults make a fake misbehave
// for negative tests.
package idptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Faults make a fake misbehave, for negative tests. The zero value is a
// well-behaved provider.
type Faults struct {
	// IssParam, when set, is the iss parameter of authorize redirects, even
	// on a fake that does not otherwise send one.
	IssParam string
	// State, when set, replaces the client's state in authorize redirects.
	State string
	// DenyConsent makes authorize redirect with error=access_denied.
	DenyConsent bool
	// IDTokenIssuer, IDTokenAudience and Nonce, when set, replace the
	// id_token's iss, aud and nonce.
	IDTokenIssuer, IDTokenAudience, Nonce string
	// ExpiredIDToken issues id_tokens whose exp has passed.
	ExpiredIDToken bool
	// UnknownSigningKey signs id_tokens with a key the JWKS does not
	// publish (under the published key id).
	UnknownSigningKey bool
	// ProfileResultCode (NAVER only), when set, is the resultcode of
	// /v1/nid/me: "024" and "028" answer 401, anything else 200.
	ProfileResultCode string
	// SearchErrorCode (NAVER only), when set, makes every search fail with
	// this errorCode and its status: SE01–SE04 and SE06 400, SE05 404,
	// SE99 500, "024" 401, "010" 403, "012" 429.
	SearchErrorCode string
}

// TokenRequest is one call a fake's token endpoint received.
type TokenRequest struct {
	Method    string
	Form      url.Values // body and query, client_secret included
	BasicAuth bool       // the client authenticated with an Authorization: Basic header
	// ContentType is the request's Content-Type header.
	ContentType string
}

// Server is the part every fake shares: the HTTP server, the signing key,
// and the bookkeeping of codes and tokens. Its methods are safe for
// concurrent use.
type Server struct {
	srv                    *httptest.Server
	mux                    *http.ServeMux
	clientID, clientSecret string
	alg                    jose.SignatureAlgorithm
	key                    crypto.Signer
	kid                    string
	issParam               bool // advertise RFC 9207 and send iss
	ttl                    time.Duration
	rotate                 bool

	// findUserLocked maps a login hint ("" for the default user) to a subject.
	findUserLocked func(hint string) (string, bool)
	// claimsLocked returns the id_token claims of a user beyond the standard ones.
	claimsLocked func(sub string) map[string]any

	mu            sync.Mutex // guards the fields below
	faults        Faults
	codes         map[string]*grant
	access        map[string]*session
	refresh       map[string]*session
	authorizeReqs []url.Values
	tokenReqs     []TokenRequest
	refreshes     int
	userInfoCalls int
	rogue         crypto.Signer
}

type grant struct {
	clientID, redirectURI, challenge, nonce, sub, scope, state string
	offline                                                    bool
}

type session struct {
	sub, scope string
	expiry     time.Time
}

// serverOptions are what a fake's constructor passes to newServer.
type serverOptions struct {
	clientID, clientSecret string
	es256, issParam        bool
	ttl                    time.Duration
	rotate                 bool
}

func newServer(t testing.TB, o serverOptions) *Server {
	t.Helper()
	s := &Server{
		mux:          http.NewServeMux(),
		clientID:     o.clientID,
		clientSecret: o.clientSecret,
		issParam:     o.issParam,
		ttl:          o.ttl,
		rotate:       o.rotate,
		codes:        map[string]*grant{},
		access:       map[string]*session{},
		refresh:      map[string]*session{},
	}
	if s.ttl == 0 {
		s.ttl = time.Hour
	}
	var err error
	if o.es256 {
		s.alg = jose.ES256
		s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		s.alg = jose.RS256
		s.key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatalf("idptest: generate signing key: %v", err)
	}
	s.kid = randomString("key-", 4)
	s.srv = httptest.NewUnstartedServer(s.mux)
	return s
}

// start serves, once the fake has set its handlers and hooks.
func (s *Server) start(t testing.TB) {
	s.srv.Start()
	t.Cleanup(s.srv.Close)
}

// URL is the fake's base URL, which is also its issuer.
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client for the fake that does not follow redirects,
// so a test can read the authorize redirect.
func (s *Server) Client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ClientID is the client id the fake accepts.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret is the client secret the fake accepts.
func (s *Server) ClientSecret() string { return s.clientSecret }

// SetFaults replaces the fake's faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// AuthorizeRequests returns the query of every authorize request received.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]url.Values, len(s.authorizeReqs))
	for i, q := range s.authorizeReqs {
		out[i] = cloneValues(q)
	}
	return out
}

// TokenRequests returns every token endpoint request received.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenRequest, len(s.tokenReqs))
	for i, r := range s.tokenReqs {
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

// Refreshes is how many refresh_token grants succeeded.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// UserInfoCalls is how many profile / userinfo / user API calls were made,
// successful or not.
func (s *Server) UserInfoCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userInfoCalls
}

// IssueTokens mints an access token and a refresh token for the user with
// the given subject (NAVER id, GitHub id in decimal), as if they had logged
// in granting scope; for tests of APIs that take a user token.
func (s *Server) IssueTokens(subject, scope string) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(subject, scope, true)
}

// ExpireAccessTokens makes every access token issued so far invalid, as if
// it had expired; refresh tokens keep working.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ses := range s.access {
		ses.expiry = time.Time{}
	}
}

func (s *Server) issueLocked(sub, scope string, withRefresh bool) (access, refresh string) {
	access = randomString("AAAA", 24)
	s.access[access] = &session{sub: sub, scope: scope, expiry: time.Now().Add(s.ttl)}
	if withRefresh {
		refresh = randomString("rt-", 24)
		s.refresh[refresh] = &session{sub: sub, scope: scope}
	}
	return access, refresh
}

// bearerLocked returns the session of the request's access token; missing
// reports that there was no credential at all.
func (s *Server) bearerLocked(r *http.Request, schemes ...string) (ses *session, missing bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, true
	}
	if len(schemes) == 0 {
		schemes = []string{"Bearer"}
	}
	for _, scheme := range schemes {
		if tok, ok := cutPrefixFold(h, scheme+" "); ok {
			ses := s.access[strings.TrimSpace(tok)]
			if ses == nil || time.Now().After(ses.expiry) {
				return nil, false
			}
			return ses, false
		}
	}
	return nil, false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// authorizeFlavor is how one fake's authorize endpoint behaves.
type authorizeFlavor struct {
	requireState bool // NAVER classic
	hintParam    string
}

func (s *Server) handleAuthorize(f authorizeFlavor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.authorizeReqs = append(s.authorizeReqs, cloneValues(q))
		// RFC 6749 §4.1.2.1: a bad client or redirect URI is shown to the
		// user, not redirected.
		if q.Get("client_id") != s.clientID {
			http.Error(w, "unknown client_id", http.StatusBadRequest)
			return
		}
		redirect, err := url.Parse(q.Get("redirect_uri"))
		if err != nil || !redirect.IsAbs() {
			http.Error(w, "redirect_uri must be an absolute URL", http.StatusBadRequest)
			return
		}
		if f.requireState && q.Get("state") == "" {
			http.Error(w, "state is required", http.StatusBadRequest)
			return
		}
		resp := url.Values{}
		if st := q.Get("state"); st != "" {
			resp.Set("state", st)
		}
		if s.faults.State != "" {
			resp.Set("state", s.faults.State)
		}
		if s.issParam {
			resp.Set("iss", s.URL())
		}
		if s.faults.IssParam != "" {
			resp.Set("iss", s.faults.IssParam)
		}
		fail := func(code, desc string) {
			resp.Set("error", code)
			resp.Set("error_description", desc)
			redirectWith(w, r, redirect, resp)
		}
		challenge := q.Get("code_challenge")
		switch {
		case q.Get("response_type") != "code":
			fail("unsupported_response_type", "response_type must be code")
			return
		case challenge != "" && q.Get("code_challenge_method") != "S256":
			fail("invalid_request", "code_challenge_method must be S256")
			return
		case s.faults.DenyConsent:
			fail("access_denied", "Canceled By User")
			return
		}
		hint := q.Get("login_hint")
		if f.hintParam != "" && q.Get(f.hintParam) != "" {
			hint = q.Get(f.hintParam)
		}
		sub, ok := s.findUserLocked(hint)
		if !ok {
			fail("access_denied", "no such user: "+hint)
			return
		}
		code := randomString("code-", 16)
		s.codes[code] = &grant{
			clientID:    q.Get("client_id"),
			redirectURI: q.Get("redirect_uri"),
			challenge:   challenge,
			nonce:       q.Get("nonce"),
			sub:         sub,
			scope:       q.Get("scope"),
			state:       q.Get("state"),
			offline:     q.Get("access_type") == "offline",
		}
		resp.Set("code", code)
		redirectWith(w, r, redirect, resp)
	}
}

func redirectWith(w http.ResponseWriter, r *http.Request, u *url.URL, params url.Values) {
	u2 := *u
	q := u2.Query()
	maps.Copy(q, params)
	u2.RawQuery = q.Encode()
	http.Redirect(w, r, u2.String(), http.StatusFound)
}

// tokenFlavor is how one fake's token endpoint behaves.
type tokenFlavor struct {
	basic, post     bool   // accepted client authentication methods
	allowGET        bool   // NAVER classic takes GET too
	expiresInString bool   // NAVER: "expires_in":"3600"
	noExpiry        bool   // GitHub OAuth apps
	errors200       bool   // errors come with status 200 (NAVER classic, GitHub)
	idToken         bool   // issue id_tokens when openid was granted
	idTokenRefresh  bool   // Google: refresh responses carry an id_token
	noRefresh       bool   // GitHub OAuth apps: no refresh tokens
	needOffline     bool   // Google: refresh token only with access_type=offline
	checkState      bool   // NAVER classic: state must match the authorize request
	tokenType       string // "bearer" or "Bearer"
	scope           string // "", "space" or "comma": whether and how scope is returned
	github          bool   // form-encoded unless Accept: application/json; GitHub error codes
	revokeGrant     bool   // NAVER classic grant_type=delete
	// kakao: scopes are comma-separated; an id_token is issued when
	// kakaoOIDC and the request named no scope or openid; errors carry
	// Kakao's error_code (KOE320 for a bad code, KOE010 for bad client
	// credentials).
	kakao, kakaoOIDC bool
}

func (s *Server) handleToken(f tokenFlavor) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && !(f.allowGET && r.Method == http.MethodGet) {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		form := r.Form
		user, pass, hasBasic := r.BasicAuth()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tokenReqs = append(s.tokenReqs, TokenRequest{Method: r.Method, Form: cloneValues(form), BasicAuth: hasBasic, ContentType: r.Header.Get("Content-Type")})

		reply := func(status int, v map[string]any) {
			if f.github && !strings.Contains(r.Header.Get("Accept"), "application/json") {
				q := url.Values{}
				for k, x := range v {
					q.Set(k, fmt.Sprint(x))
				}
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
				w.WriteHeader(status)
				fmt.Fprint(w, q.Encode())
				return
			}
			writeJSON(w, status, "application/json;charset=UTF-8", v)
		}
		fail := func(status int, code, desc string) {
			if f.errors200 {
				status = http.StatusOK
			}
			if status == http.StatusUnauthorized && !f.github {
				w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
			}
			body := map[string]any{"error": code, "error_description": desc}
			if f.kakao {
				switch code {
				case "invalid_grant":
					body["error_code"] = "KOE320"
				case "invalid_client":
					body["error_code"] = "KOE010"
				default:
					body["error_code"] = "KOE001"
				}
			}
			reply(status, body)
		}
		badCode, badClient := "invalid_grant", "invalid_client"
		if f.github {
			badCode, badClient = "bad_verification_code", "incorrect_client_credentials"
		}

		var id, secret string
		switch {
		case hasBasic && !f.basic:
			fail(http.StatusUnauthorized, badClient, "client_secret_basic is not supported: send client_id and client_secret in the form body")
			return
		case hasBasic:
			id, _ = url.QueryUnescape(user)
			secret, _ = url.QueryUnescape(pass)
		case !f.post:
			fail(http.StatusUnauthorized, badClient, "client authentication required")
			return
		default:
			id, secret = form.Get("client_id"), form.Get("client_secret")
		}
		if id != s.clientID || secret != s.clientSecret {
			fail(http.StatusUnauthorized, badClient, "client authentication failed")
			return
		}

		out := map[string]any{"token_type": f.tokenType}
		addExpiry := func() {
			secs := int(s.ttl / time.Second)
			switch {
			case f.noExpiry:
			case f.expiresInString:
				out["expires_in"] = strconv.Itoa(secs)
			default:
				out["expires_in"] = secs
			}
		}
		addScope := func(scope string) {
			if f.kakao {
				// Kakao reports the consent items granted; without a scope
				// parameter those are the app's (here nickname and e-mail).
				if scope == "" {
					scope = "account_email,profile_nickname"
					if f.kakaoOIDC {
						scope += ",openid"
					}
				}
				scope = strings.Join(scopeFields(scope, true), " ")
			}
			switch f.scope {
			case "space":
				out["scope"] = scope
			case "comma":
				out["scope"] = strings.Join(strings.Fields(scope), ",")
			}
		}

		switch form.Get("grant_type") {
		case "authorization_code":
			code := form.Get("code")
			g := s.codes[code]
			delete(s.codes, code) // single use, failed attempts included
			verifier := form.Get("code_verifier")
			switch {
			case g == nil || g.clientID != id:
				fail(http.StatusBadRequest, badCode, "The code passed is incorrect or expired.")
				return
			case form.Has("redirect_uri") && form.Get("redirect_uri") != g.redirectURI:
				fail(http.StatusBadRequest, badCode, "redirect_uri does not match the authorization request")
				return
			case f.checkState && form.Get("state") != g.state:
				fail(http.StatusBadRequest, "invalid_request", "state does not match the authorization request")
				return
			case g.challenge != "" && verifier == "":
				fail(http.StatusBadRequest, badCode, "code_verifier is required")
				return
			case g.challenge != "" && s256(verifier) != g.challenge:
				fail(http.StatusBadRequest, badCode, "PKCE verification failed")
				return
			case g.challenge == "" && verifier != "":
				// RFC 9700 §2.1.1: a verifier without a challenge is a downgrade.
				fail(http.StatusBadRequest, badCode, "code_verifier sent but no code_challenge was")
				return
			}
			withRefresh := !f.noRefresh && (!f.needOffline || g.offline)
			access, refresh := s.issueLocked(g.sub, g.scope, withRefresh)
			out["access_token"] = access
			if refresh != "" {
				out["refresh_token"] = refresh
			}
			addExpiry()
			addScope(g.scope)
			wantID := f.idToken && slices.Contains(scopeFields(g.scope, f.kakao), "openid")
			if f.kakao {
				wantID = f.kakaoOIDC && (g.scope == "" || slices.Contains(scopeFields(g.scope, true), "openid"))
			}
			if wantID {
				tok, err := s.idTokenLocked(g.sub, g.nonce)
				if err != nil {
					fail(http.StatusInternalServerError, "server_error", err.Error())
					return
				}
				out["id_token"] = tok
			}
			reply(http.StatusOK, out)
		case "refresh_token":
			rt := form.Get("refresh_token")
			ses := s.refresh[rt]
			if f.noRefresh || ses == nil {
				fail(http.StatusBadRequest, "invalid_grant", "invalid refresh token")
				return
			}
			s.refreshes++
			access, _ := s.issueLocked(ses.sub, ses.scope, false)
			out["access_token"] = access
			if s.rotate {
				delete(s.refresh, rt)
				next := randomString("rt-", 24)
				s.refresh[next] = ses
				out["refresh_token"] = next
			}
			addExpiry()
			addScope(ses.scope)
			if f.idTokenRefresh && slices.Contains(strings.Fields(ses.scope), "openid") {
				tok, err := s.idTokenLocked(ses.sub, "")
				if err != nil {
					fail(http.StatusInternalServerError, "server_error", err.Error())
					return
				}
				out["id_token"] = tok
			}
			reply(http.StatusOK, out)
		case "delete":
			if !f.revokeGrant {
				fail(http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
				return
			}
			at := form.Get("access_token")
			delete(s.access, at)
			reply(http.StatusOK, map[string]any{"access_token": at, "result": "success"})
		default:
			fail(http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
		}
	}
}

// idTokenLocked signs an id_token for sub.
func (s *Server) idTokenLocked(sub, nonce string) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss":       s.URL(),
		"sub":       sub,
		"aud":       s.clientID,
		"iat":       now.Unix(),
		"auth_time": now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	maps.Copy(claims, s.claimsLocked(sub))
	f := s.faults
	if f.IDTokenIssuer != "" {
		claims["iss"] = f.IDTokenIssuer
	}
	if f.IDTokenAudience != "" {
		claims["aud"] = f.IDTokenAudience
	}
	if f.Nonce != "" {
		claims["nonce"] = f.Nonce
	}
	if f.ExpiredIDToken {
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
	}
	key := s.key
	if f.UnknownSigningKey {
		if s.rogue == nil {
			var err error
			if s.alg == jose.ES256 {
				s.rogue, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			} else {
				s.rogue, err = rsa.GenerateKey(rand.Reader, 2048)
			}
			if err != nil {
				return "", err
			}
		}
		key = s.rogue
	}
	return s.sign(key, claims)
}

func (s *Server) sign(key crypto.Signer, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: key, KeyID: s.kid, Algorithm: string(s.alg)}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: s.key.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig",
	}}}
	writeJSON(w, http.StatusOK, "application/json", set)
}

// discovery writes OIDC discovery metadata (OIDC Discovery §3) for paths
// relative to the fake's URL, plus extra members.
func (s *Server) handleDiscovery(paths map[string]string, extra map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{
			"issuer":                                s.URL(),
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(s.alg)},
		}
		for k, p := range paths {
			doc[k] = s.URL() + p
		}
		maps.Copy(doc, extra)
		if s.issParam {
			doc["authorization_response_iss_parameter_supported"] = true
		}
		writeJSON(w, http.StatusOK, "application/json", doc)
	}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// scopeFields splits a scope parameter: on spaces, and on commas too when
// comma (Kakao).
func scopeFields(scope string, comma bool) []string {
	if !comma {
		return strings.Fields(scope)
	}
	return strings.FieldsFunc(scope, func(r rune) bool { return r == ',' || r == ' ' })
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
