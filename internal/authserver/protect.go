package authserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Principal is who an MCP request acts for.
type Principal struct {
	UserID   string
	Username string
	Email    string // "" when the user has none
	Role     store.Role
	ClientID string // the OAuth client, or "apikey:<id>" for a personal API key
	Scopes   []string
	Resource string // the MCP resource URL the request was authorized for
}

type principalKey struct{}

// UserFrom returns the principal Protect put in the request context.
func UserFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p, for callers that authenticate by
// other means (stdio, --insecure-no-auth) and for tests.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

const apiKeyPrefix = "sbk_"

// resourceFor maps a request path to the resource URL a token must name.
// /mcp and /mcp/{server} are resources of their own: an /mcp token is not
// valid at /mcp/github and vice versa (RFC 8707 audience restriction,
// so that a token handed to one server's client cannot reach the others).
// The legacy SSE endpoints /sse and /sse/{server} serve the same servers
// and share their resource.
func (s *Server) resourceFor(path string) string {
	rest, ok := strings.CutPrefix(path, "/mcp")
	if !ok {
		rest, _ = strings.CutPrefix(path, "/sse")
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return s.issuer + "/mcp"
	}
	server, _, _ := strings.Cut(rest, "/")
	return s.issuer + "/mcp/" + server
}

// Protect lets requests through that carry a valid access token for the
// requested resource or a personal API key, with the principal in their
// context; others get 401 (or 403 for too few scopes) with the RFC 9728
// resource_metadata pointer (RFC 6750 §3). Tokens are never passed on: the
// Authorization header is removed before next runs.
func (s *Server) Protect(next http.Handler) http.Handler {
	return s.protect(func(r *http.Request) string { return s.resourceFor(r.URL.Path) }, next)
}

// ProtectAPI guards Switchboard's own HTTP API (/api/...): it accepts the
// tokens of the aggregate resource /mcp (the one a signed-in client holds
// for all its servers) and personal API keys.
func (s *Server) ProtectAPI(next http.Handler) http.Handler {
	return s.protect(func(*http.Request) string { return s.issuer + "/mcp" }, next)
}

func (s *Server) protect(resourceOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resource := resourceOf(r)
		raw, present := bearer(r)
		if !present {
			s.challenge(w, resource, http.StatusUnauthorized, "", "")
			return
		}
		p, err := s.verify(r.Context(), raw, resource)
		if err != nil {
			if errors.Is(err, errInsufficientScope) {
				s.challenge(w, resource, http.StatusForbidden, "insufficient_scope", "the token lacks the required scope")
				return
			}
			if !errors.Is(err, errInvalidToken) {
				s.log.Error("verifying access token", errAttr(err))
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			s.challenge(w, resource, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired, revoked or for another resource")
			return
		}
		r = r.Clone(WithPrincipal(r.Context(), p))
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", len(h) > 1
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	tok = strings.TrimSpace(tok)
	return tok, true
}

func (s *Server) challenge(w http.ResponseWriter, resource string, status int, code, desc string) {
	v := fmt.Sprintf(`Bearer resource_metadata="%s", scope="%s"`, s.prmURL(resource), s.scopes[0])
	if code != "" {
		v += fmt.Sprintf(`, error="%s", error_description="%s"`, code, desc)
	}
	w.Header().Set("WWW-Authenticate", v)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": orDefault(code, "unauthorized"), "error_description": orDefault(desc, "authorization required")})
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

var errInsufficientScope = errors.New("insufficient scope")

// verify checks a bearer credential for resource. Store failures are
// returned as they are; every refusal is errInvalidToken or
// errInsufficientScope.
func (s *Server) verify(ctx context.Context, raw, resource string) (*Principal, error) {
	if raw == "" || len(raw) > 8192 {
		return nil, errInvalidToken
	}
	if strings.HasPrefix(raw, apiKeyPrefix) {
		return s.verifyAPIKey(ctx, raw, resource)
	}
	c, err := s.parseAccessToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if len(c.Audience) != 1 || subtle.ConstantTimeCompare([]byte(c.Audience[0]), []byte(resource)) != 1 {
		return nil, errInvalidToken
	}
	if revoked, err := s.cached(ctx, "jti:"+c.ID, func() (bool, error) { return s.st.AccessTokenRevoked(ctx, c.ID) }); err != nil || revoked {
		return nil, errOr(err, errInvalidToken)
	}
	if c.SID != "" {
		if revoked, err := s.cached(ctx, "fam:"+c.SID, func() (bool, error) { return s.st.FamilyRevoked(ctx, c.SID) }); err != nil || revoked {
			return nil, errOr(err, errInvalidToken)
		}
	}
	u, err := s.cachedUser(ctx, c.Subject)
	if err != nil {
		return nil, err
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, s.scopes[0]) {
		return nil, errInsufficientScope
	}
	s.markDelivered(ctx, c)
	return &Principal{UserID: u.ID, Username: u.Username, Email: u.Email, Role: u.Role, ClientID: c.ClientID, Scopes: scopes, Resource: resource}, nil
}

func errOr(err, d error) error {
	if err != nil {
		return err
	}
	return d
}

// cached remembers a revocation lookup for a few seconds; revocations made
// by this process drop the entry at once, other replicas' within the TTL.
func (s *Server) cached(ctx context.Context, key string, f func() (bool, error)) (bool, error) {
	now := s.now()
	if v, ok := s.cache.get(key, now); ok {
		return v.(bool), nil
	}
	v, err := f()
	if err != nil {
		return false, err
	}
	if !v {
		s.cache.put(key, v, now)
	}
	return v, nil
}

func (s *Server) cachedUser(ctx context.Context, id string) (*store.User, error) {
	now := s.now()
	if v, ok := s.cache.get("user:"+id, now); ok {
		return v.(*store.User), nil
	}
	u, err := s.st.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errInvalidToken
	}
	s.cache.put("user:"+id, u, now)
	return u, nil
}

// verifyAPIKey checks a personal API key. Keys are valid for every MCP
// resource of the user; they are for scripts the user runs themself.
func (s *Server) verifyAPIKey(ctx context.Context, raw, resource string) (*Principal, error) {
	k, err := s.st.APIKeyByHash(ctx, hashToken(raw))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	if !k.RevokedAt.IsZero() || (!k.ExpiresAt.IsZero() && now.After(k.ExpiresAt)) {
		return nil, errInvalidToken
	}
	u, err := s.cachedUser(ctx, k.UserID)
	if err != nil {
		return nil, err
	}
	scopes := k.Scopes
	if len(scopes) == 0 {
		scopes = []string{s.scopes[0]}
	}
	if !slices.Contains(scopes, s.scopes[0]) {
		return nil, errInsufficientScope
	}
	s.mu.Lock()
	touch := now.Sub(s.apiKeyTouch[k.ID]) > time.Minute
	if touch {
		s.apiKeyTouch[k.ID] = now
	}
	s.mu.Unlock()
	if touch {
		if err := s.st.TouchAPIKey(ctx, k.ID, now); err != nil {
			s.log.Warn("touching API key", errAttr(err))
		}
	}
	return &Principal{UserID: u.ID, Username: u.Username, Email: u.Email, Role: u.Role, ClientID: "apikey:" + k.ID, Scopes: scopes, Resource: resource}, nil
}

// CreateAPIKey creates a personal API key for a user. The plaintext is
// returned once; only its SHA-256 is stored.
func (s *Server) CreateAPIKey(ctx context.Context, userID, name string) (string, *store.APIKey, error) {
	if _, err := s.st.UserByID(ctx, userID); err != nil {
		return "", nil, fmt.Errorf("create API key: %w", err)
	}
	plain := apiKeyPrefix + randomToken()
	k := &store.APIKey{
		ID: "key_" + randomToken()[:16], UserID: userID, Name: name, Hash: hashToken(plain),
		Prefix: plain[:len(apiKeyPrefix)+6], Scopes: []string{s.scopes[0]}, CreatedAt: s.now(),
	}
	if err := s.st.CreateAPIKey(ctx, k); err != nil {
		return "", nil, fmt.Errorf("create API key: %w", err)
	}
	return plain, k, nil
}
