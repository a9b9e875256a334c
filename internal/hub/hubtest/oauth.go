package hubtest

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// OAuthOptions configure an OAuthServer. The zero value is valid.
type OAuthOptions struct {
	ServerOptions
	// ClientID and ClientSecret, if set, are the one pre-registered
	// client: the token endpoint requires them as client_secret_basic and
	// the metadata offers no registration endpoint. Empty: clients register
	// themselves (RFC 7591) as public clients.
	ClientID, ClientSecret string
	// IssuerHost names the authorization server's host: empty for
	// 127.0.0.1 (the resource's own origin), or "localhost" for a name
	// that resolves to a loopback address, which an SSRF guard refuses
	// unless it is allowed.
	IssuerHost string
	// DefaultUser is who an authorization request without login_hint
	// signs in as. Empty: "octocat".
	DefaultUser string
	// TokenTTL is the access tokens' lifetime. Zero: one hour.
	TokenTTL time.Duration
	// Now is the server's clock. Nil: time.Now.
	Now func() time.Time
	// NoGETStream: see HTTPOptions.
	NoGETStream bool
}

// userHeader carries the token's user from the bearer check to whoami; the
// check overwrites whatever a client sent in it.
const userHeader = "X-Hubtest-Oauth-User"

// OAuthServer is an HTTPServer protected by an authorization server of its
// own on the same port: RFC 9728 protected-resource metadata, RFC 8414
// metadata, dynamic registration or one pre-registered client, an
// authorization endpoint that approves at once as the user named by
// login_hint, PKCE S256 checked, authorization-code and refresh grants
// (refresh tokens rotate and work once), revocation. whoami answers the
// user the access token was issued to. Grants survive Stop and Start, as a
// real server's database does.
type OAuthServer struct {
	*HTTPServer
	// Issuer is the authorization server's issuer (and base URL).
	Issuer string

	opts OAuthOptions

	mu        sync.Mutex // guards the fields below
	asURL     string
	clients   map[string][]string // client id -> registered redirect URIs (nil for the pre-registered one)
	codes     map[string]grant
	access    map[string]accessToken
	refresh   map[string]string // unused refresh token -> user
	spent     map[string]bool   // refresh tokens used once
	refreshes int
	reused    int
	revoked   []string
	seen      []string // user of every authorized MCP request
	n         int
}

type grant struct{ user, client, challenge, redirect string }

type accessToken struct {
	user    string
	expires time.Time
}

// NewOAuthServer starts an OAuthServer on a free loopback port; it stops
// when the test ends.
func NewOAuthServer(t testing.TB, opts *OAuthOptions) *OAuthServer {
	t.Helper()
	u := &OAuthServer{
		clients: map[string][]string{}, codes: map[string]grant{}, access: map[string]accessToken{},
		refresh: map[string]string{}, spent: map[string]bool{},
	}
	if opts != nil {
		u.opts = *opts
	}
	if u.opts.DefaultUser == "" {
		u.opts.DefaultUser = "octocat"
	}
	if u.opts.TokenTTL == 0 {
		u.opts.TokenTTL = time.Hour
	}
	if u.opts.Now == nil {
		u.opts.Now = time.Now
	}
	if u.opts.ClientID != "" {
		u.clients[u.opts.ClientID] = nil
	}
	u.HTTPServer = NewHTTPServer(t, &HTTPOptions{
		ServerOptions: u.opts.ServerOptions,
		NoGETStream:   u.opts.NoGETStream,
		value:         func(h http.Header) string { return h.Get(userHeader) },
		routes:        u.routes,
		protect:       u.protect,
	})
	host := cmp.Or(u.opts.IssuerHost, "127.0.0.1")
	_, port, _ := net.SplitHostPort(u.Addr)
	u.Issuer = "http://" + net.JoinHostPort(host, port)
	u.asURL = u.Issuer
	return u
}

// SetAuthorizationServer changes the authorization server the protected
// resource metadata names (to test discovery and SSRF rules).
func (u *OAuthServer) SetAuthorizationServer(asURL string) {
	u.mu.Lock()
	u.asURL = asURL
	u.mu.Unlock()
}

// ExpireAccessTokens lets every access token issued so far expire.
func (u *OAuthServer) ExpireAccessTokens() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, at := range u.access {
		at.expires = time.Time{}
		u.access[k] = at
	}
}

// Forget drops every grant, as when the user revokes the client's access at
// the provider: access and refresh tokens stop working.
func (u *OAuthServer) Forget() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.access)
	clear(u.refresh)
}

// Refreshes counts the refresh requests that succeeded, and the refresh
// tokens presented again after their one use.
func (u *OAuthServer) Refreshes() (ok, reused int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.refreshes, u.reused
}

// Revoked returns the tokens revoked so far.
func (u *OAuthServer) Revoked() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.revoked)
}

// Seen returns the user of every authorized MCP request, in order.
func (u *OAuthServer) Seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

func (u *OAuthServer) next(prefix string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return fmt.Sprintf("%s-%d", prefix, u.n)
}

func (u *OAuthServer) metadataURL() string {
	return u.Base() + "/.well-known/oauth-protected-resource/mcp"
}

func (u *OAuthServer) protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		now := u.opts.Now()
		u.mu.Lock()
		at, ok := u.access[tok]
		ok = ok && now.Before(at.expires)
		if ok {
			u.seen = append(u.seen, at.user)
		}
		u.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+u.metadataURL()+`"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		r.Header.Set(userHeader, at.user)
		next.ServeHTTP(w, r)
	})
}

func (u *OAuthServer) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		as := u.asURL
		u.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"resource": u.URL, "authorization_servers": []string{as}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		md := map[string]any{
			"issuer": u.Issuer, "authorization_endpoint": u.Issuer + "/authorize", "token_endpoint": u.Issuer + "/token",
			"revocation_endpoint":              u.Issuer + "/revoke",
			"code_challenge_methods_supported": []string{"S256"}, "response_types_supported": []string{"code"},
			"grant_types_supported": []string{"authorization_code", "refresh_token"},
		}
		if u.opts.ClientID != "" {
			md["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
		} else {
			md["registration_endpoint"] = u.Issuer + "/register"
			md["token_endpoint_auth_methods_supported"] = []string{"none"}
		}
		writeJSON(w, http.StatusOK, md)
	})
	mux.HandleFunc("POST /register", u.register)
	mux.HandleFunc("GET /authorize", u.authorize)
	mux.HandleFunc("POST /token", u.token)
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		tok := r.Form.Get("token")
		u.mu.Lock()
		u.revoked = append(u.revoked, tok)
		delete(u.refresh, tok)
		delete(u.access, tok)
		u.mu.Unlock()
	})
}

// register is RFC 7591 dynamic registration of a public client.
func (u *OAuthServer) register(w http.ResponseWriter, r *http.Request) {
	if u.opts.ClientID != "" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.RedirectURIs) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_redirect_uri"})
		return
	}
	id := u.next("client")
	u.mu.Lock()
	u.clients[id] = req.RedirectURIs
	u.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"client_id": id, "token_endpoint_auth_method": "none", "redirect_uris": req.RedirectURIs})
}

func (u *OAuthServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u.mu.Lock()
	redirects, known := u.clients[q.Get("client_id")]
	u.mu.Unlock()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case !known:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme == "" || (redirects != nil && !slices.Contains(redirects, q.Get("redirect_uri"))):
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "":
		http.Error(w, "bad authorization request: want response_type=code, PKCE S256 and state", http.StatusBadRequest)
		return
	}
	code := u.next("code")
	u.mu.Lock()
	u.codes[code] = grant{
		user: cmp.Or(q.Get("login_hint"), u.opts.DefaultUser), client: q.Get("client_id"),
		challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"),
	}
	u.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	rq.Set("iss", u.Issuer) // RFC 9207
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (u *OAuthServer) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	client := r.Form.Get("client_id")
	if u.opts.ClientID != "" {
		id, secret, ok := r.BasicAuth()
		if !ok || id != u.opts.ClientID || secret != u.opts.ClientSecret {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
			return
		}
		client = id
	}
	u.mu.Lock()
	_, known := u.clients[client]
	var user string
	switch r.Form.Get("grant_type") {
	case "authorization_code":
		g, found := u.codes[r.Form.Get("code")]
		delete(u.codes, r.Form.Get("code"))
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if found && known && g.client == client && g.redirect == r.Form.Get("redirect_uri") &&
			base64.RawURLEncoding.EncodeToString(sum[:]) == g.challenge {
			user = g.user
		}
	case "refresh_token":
		rt := r.Form.Get("refresh_token")
		if u.spent[rt] {
			u.reused++
		}
		user = u.refresh[rt]
		delete(u.refresh, rt) // rotation: one use
		u.spent[rt] = true
		if user != "" {
			u.refreshes++
		}
	}
	u.mu.Unlock()
	if user == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
		return
	}
	at, rt := u.next("at"), u.next("rt")
	u.mu.Lock()
	u.access[at] = accessToken{user: user, expires: u.opts.Now().Add(u.opts.TokenTTL)}
	u.refresh[rt] = user
	u.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "refresh_token": rt, "expires_in": int(u.opts.TokenTTL / time.Second),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
