// Package authserver is Switchboard's OAuth 2.1 authorization server for MCP
// clients and the resource-server check in front of /mcp: metadata (RFC 8414,
// RFC 9728), client registration (RFC 7591 and Client ID Metadata
// Documents), sign-in with local accounts or identity providers, consent,
// authorization codes with PKCE S256 (RFC 7636) bound to a resource (RFC
// 8707), ES256 JWT access tokens with rotating refresh tokens, revocation
// (RFC 7009), personal API keys, browser sessions for Switchboard's own pages
// (GET /login?next=, ProtectAPIOrSession), and the users' identity-provider
// tokens.
//
// cmd/switchboard and web import it; it imports store, secrets, ssrf,
// ratelimit and its own idp sub-package.
package authserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
	"github.com/switchboard-mcp/switchboard/internal/ssrf"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Options configure a Server.
type Options struct {
	// Issuer is the public base URL (server.publicURL), e.g.
	// "http://127.0.0.1:8080", without a trailing slash. Metadata, redirect
	// URIs and resource URLs derive from it. Required.
	Issuer string
	// Store persists everything. Required.
	Store store.Store
	// Providers are the sign-in choices besides local accounts. Nil: none.
	Providers []idp.Provider
	// LocalLogin enables username/password sign-in. False: providers only.
	LocalLogin bool
	// Resources returns the MCP resource URLs tokens may be issued for,
	// e.g. Issuer+"/mcp" and Issuer+"/mcp/{server}" per server. Nil: just
	// Issuer+"/mcp".
	Resources func() []string
	// Scopes are the supported scopes; the first is the one Protect
	// requires and the one granted when a client asks for none. Nil: ["mcp"].
	Scopes []string
	// AccessTokenTTL is the access tokens' lifetime. Zero: 1 h.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is a refresh token's lifetime. Zero: 30 days.
	RefreshTokenTTL time.Duration
	// CodeTTL is an authorization code's lifetime. Zero: 60 s.
	CodeTTL time.Duration
	// HTTPClient fetches Client ID Metadata Documents. Nil: an ssrf client
	// refusing private addresses (tests pass one that allows their
	// httptest server; configuration cannot).
	HTTPClient *http.Client
	// Limiter counts client registrations per client address, fetches of
	// Client ID Metadata Documents per host and, when it also implements
	// ratelimit.Failures (both of that package's limiters do), failed
	// sign-ins per account and per client address. Replicas sharing one
	// (ratelimit.Redis) enforce the limits together. If it fails, the
	// request is let through and the error logged: an outage of Redis must
	// not lock everyone out of signing in. Nil: a ratelimit.Memory, each
	// replica counting on its own.
	Limiter ratelimit.Limiter
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (server.trustedProxies), for the limits above. Nil: none;
	// the client is the peer of the connection.
	TrustedProxies []netip.Prefix
	// Admins (auth.admins) make the users they match admins when they sign
	// in with a provider. Nil: none.
	Admins []AdminRule
	// Logger receives the server's logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Server is the authorization server.
type Server struct {
	issuer    string
	st        store.Store
	providers map[string]idp.Provider
	provOrder []idp.Provider
	local     bool
	resources func() []string
	scopes    []string
	accessTTL time.Duration
	refreshTT time.Duration
	codeTTL   time.Duration
	hc        *http.Client
	log       *slog.Logger
	now       func() time.Time
	secure    bool // issuer is https: __Host- cookies with Secure

	keys           *keyRing
	limiter        ratelimit.Limiter  // registrations per client address, CIMD fetches per host
	failures       ratelimit.Failures // failed sign-ins per account and per client address
	trustedProxies []netip.Prefix
	cache          *ttlCache // user and family-revocation lookups of Protect
	cimdFailures   *ttlCache // Client ID Metadata Document URLs that failed lately
	dummyHash      string    // compared against for unknown usernames
	admins         []AdminRule

	mu          sync.Mutex // guards the fields below
	apiKeyTouch map[string]time.Time
}

// Log attribute keys.
const (
	logKeyClient   = "client_id"
	logKeyUser     = "user_id"
	logKeyProvider = "provider"
	logKeyErr      = "err"
	logKeyLimit    = "limit"
)

// New creates the server, loading its signing keys from the store or
// creating the first one.
func New(ctx context.Context, o *Options) (*Server, error) {
	if o == nil || o.Store == nil || o.Issuer == "" {
		return nil, errors.New("authserver: Issuer and Store are required")
	}
	iu, err := url.Parse(o.Issuer)
	if err != nil || (iu.Scheme != "https" && iu.Scheme != "http") || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("authserver: issuer %q must be an absolute http(s) URL without query or fragment", o.Issuer)
	}
	s := &Server{
		issuer:         strings.TrimRight(o.Issuer, "/"),
		st:             o.Store,
		providers:      map[string]idp.Provider{},
		local:          o.LocalLogin,
		resources:      o.Resources,
		scopes:         o.Scopes,
		accessTTL:      o.AccessTokenTTL,
		refreshTT:      o.RefreshTokenTTL,
		codeTTL:        o.CodeTTL,
		hc:             o.HTTPClient,
		log:            o.Logger,
		now:            o.Now,
		secure:         iu.Scheme == "https",
		limiter:        o.Limiter,
		trustedProxies: o.TrustedProxies,
		cache:          newTTLCache(5 * time.Second),
		cimdFailures:   newTTLCache(cimdNegativeTTL),
		apiKeyTouch:    map[string]time.Time{},
		admins:         o.Admins,
	}
	for _, p := range o.Providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, fmt.Errorf("authserver: two providers named %q", p.Name())
		}
		s.providers[p.Name()] = p
		s.provOrder = append(s.provOrder, p)
	}
	if s.resources == nil {
		s.resources = func() []string { return []string{s.issuer + "/mcp"} }
	}
	if len(s.scopes) == 0 {
		s.scopes = []string{"mcp"}
	}
	if s.accessTTL == 0 {
		s.accessTTL = time.Hour
	}
	if s.refreshTT == 0 {
		s.refreshTT = 30 * 24 * time.Hour
	}
	if s.codeTTL == 0 {
		s.codeTTL = 60 * time.Second
	}
	if s.hc == nil {
		s.hc = ssrf.NewClient(&ssrf.Policy{Timeout: 5 * time.Second, MaxBytes: maxDocBytes})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.failures, _ = s.limiter.(ratelimit.Failures)
	if s.limiter == nil || s.failures == nil {
		m := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: s.now})
		if s.limiter == nil {
			s.limiter = m
		}
		if s.failures == nil {
			s.failures = m
		}
	}
	if s.dummyHash, err = hashPassword(rand.Text()); err != nil {
		return nil, err
	}
	s.keys = &keyRing{s: s}
	if err := s.keys.init(ctx); err != nil {
		return nil, fmt.Errorf("authserver: signing keys: %w", err)
	}
	return s, nil
}

// Handler serves the authorization server's endpoints and pages. Mount it
// at the root of the public URL, next to Protect(gateway).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.cors(s.handleASMetadata))
	mux.HandleFunc("GET /.well-known/openid-configuration", s.cors(s.handleASMetadata))
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", s.cors(s.handlePRM))
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/{path...}", s.cors(s.handlePRM))
	mux.HandleFunc("GET /jwks", s.cors(s.handleJWKS))
	mux.HandleFunc("POST /register", s.cors(s.handleRegister))
	mux.HandleFunc("POST /token", s.cors(s.handleToken))
	mux.HandleFunc("POST /revoke", s.cors(s.handleRevoke))
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
		"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/{path...}",
		"/jwks", "/register", "/token", "/revoke"} {
		mux.HandleFunc("OPTIONS "+p, s.cors(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /authorize/consent", s.handleConsent)
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLocalLogin)
	mux.HandleFunc("POST /login/{provider}", s.handleProviderLogin)
	mux.HandleFunc("GET /login/{provider}/callback", s.handleProviderCallback)
	mux.HandleFunc("GET /setup", s.handleSetupPage)
	mux.HandleFunc("POST /setup", s.handleSetup)
	mux.HandleFunc("GET /authserver/static/style.css", handleStyle)
	return mux
}

// cors lets browser-based MCP clients read metadata and call the token
// endpoints. These endpoints use no cookies, so any origin is safe.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		h(w, r)
	}
}

// Issuer returns the issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

func (s *Server) defaultResource() string { return s.issuer + "/mcp" }

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how codes, refresh tokens, API keys and session ids are
// stored: only comparison is ever needed.
func hashToken(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// scopesSubset reports whether every scope in want is in have.
func scopesSubset(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
