package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits on who may try what how often. The counts live in s.limiter and
// s.failures: per replica in memory, or shared through Redis.
const (
	registerLimit   = 20 // client registrations (RFC 7591) per IP address
	registerWindow  = time.Minute
	loginFailLimit  = 5 // failed sign-ins per username and IP address
	loginFailWindow = 15 * time.Minute

	// limiterTimeout bounds a call to the limiter, after which the
	// request goes ahead (see failOpen).
	limiterTimeout = time.Second
)

// failOpen logs a limiter's error. The callers then let the request through:
// with Redis down, refusing every registration and sign-in would turn a
// degraded limit into an outage, and the limits guard against abuse that the
// other defences (password hashing cost, registration expiry) also slow.
func (s *Server) failOpen(what string, err error) {
	s.log.Warn("rate limit unavailable; allowing the request", slog.String(logKeyLimit, what), errAttr(err))
}

// allowRegistration reports whether ip may register another client now and,
// if not, how long until it may.
func (s *Server) allowRegistration(ctx context.Context, ip string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	ok, retry, err := s.limiter.Allow(ctx, "register:"+ip, registerLimit, registerWindow)
	if err != nil {
		s.failOpen("register", err)
		return true, 0
	}
	return ok, retry
}

// loginKey is the failure counter's key for a username tried from ip,
// hashed so that the shared store holds no usernames and keys stay short.
func loginKey(username, ip string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username)) + "\x00" + ip))
	return "login:" + hex.EncodeToString(h[:16])
}

// loginBlocked reports whether key has failed too often lately and, if so,
// how long until it may try again.
func (s *Server) loginBlocked(ctx context.Context, key string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	blocked, retry, err := s.failures.Blocked(ctx, key, loginFailLimit, loginFailWindow)
	if err != nil {
		s.failOpen("login", err)
		return false, 0
	}
	return blocked, retry
}

// loginFailed counts a failed sign-in for key.
func (s *Server) loginFailed(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	if err := s.failures.Record(ctx, key, loginFailLimit, loginFailWindow); err != nil {
		s.failOpen("login", err)
	}
}

// loginSucceeded forgets key's failures.
func (s *Server) loginSucceeded(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	if err := s.failures.Reset(ctx, key); err != nil {
		s.failOpen("login", err)
	}
}

// retryAfterSeconds is an HTTP Retry-After value (RFC 9110 §10.2.3) of at
// least one second.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// ttlCache remembers lookups of Protect (users, family revocation) briefly,
// so that an MCP request costs no database round trip in the common case.
type ttlCache struct {
	ttl time.Duration

	mu      sync.Mutex // guards the field below
	entries map[string]cacheEntry
}

type cacheEntry struct {
	v   any
	exp time.Time
}

func newTTLCache(ttl time.Duration) *ttlCache {
	return &ttlCache{ttl: ttl, entries: map[string]cacheEntry{}}
}

func (c *ttlCache) get(key string, now time.Time) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.After(e.exp) {
		return nil, false
	}
	return e.v, true
}

func (c *ttlCache) put(key string, v any, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 10000 {
		clear(c.entries)
	}
	c.entries[key] = cacheEntry{v, now.Add(c.ttl)}
}

func (c *ttlCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
