package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

// Limits on who may try what how often. The counts live in s.limiter and
// s.failures: per replica in memory, or shared through Redis.
//
// Failed sign-ins are counted twice. Per account, with an exponential delay
// (loginBackoff): guessing one account's password from many addresses gets
// slower with every failure, while a person's few typos cost nothing, and
// no other account is affected. Per client address, with a hard limit
// (loginAddrLimit) across all accounts: one address cannot try many
// accounts. The client address is the proxy's client when the peer is a
// trusted proxy (Options.TrustedProxies, see clientIP); behind an untrusted
// proxy everyone shares the proxy's address, and only this limit, set well
// above what one person's typos reach under the delay, is shared with them.
const (
	registerLimit  = 20 // client registrations (RFC 7591) per IP address
	registerWindow = time.Minute

	loginAccountKept   = 20 // failures kept per account: enough to reach loginBackoff.Max
	loginAccountWindow = time.Hour
	loginAddrLimit     = 30 // failed sign-ins per client address, all accounts together
	loginAddrWindow    = 15 * time.Minute

	// limiterTimeout bounds a call to the limiter, after which the
	// request goes ahead (see failOpen).
	limiterTimeout = time.Second
)

// loginBackoff: five free failures per account, then 1 s, 2 s, 4 s … at
// most five minutes between attempts. One account's own failures cannot
// reach loginAddrLimit within its window: after the five free ones, the
// delays of 25 more add up to hours.
var loginBackoff = ratelimit.Backoff{Free: 5, Base: time.Second, Max: 5 * time.Minute}

// failOpen logs a limiter's error. The callers then let the request through:
// with Redis down, refusing every registration and sign-in would turn a
// degraded limit into an outage, and the limits guard against abuse that the
// other defences (password hashing cost, registration expiry) also slow.
func (s *Server) failOpen(what string, err error) {
	s.log.Warn("rate limit unavailable; allowing the request", slog.String(logKeyLimit, what), errAttr(err))
}

// allowRegistration reports whether ip may register another client now and,
// if not, how long until it may.
func (s *Server) allowRegistration(ctx context.Context, ip netip.Addr) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	ok, retry, err := s.limiter.Allow(ctx, "register:"+addrKey(ip), registerLimit, registerWindow)
	if err != nil {
		s.failOpen("register", err)
		return true, 0
	}
	return ok, retry
}

// addrKey is how a client address is counted: an IPv4 address as itself,
// an IPv6 address by its /64, which one client usually holds whole.
func addrKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// loginThrottle names the two failure counters of a sign-in attempt. The
// account's is hashed so that the shared store holds no usernames and keys
// stay short.
type loginThrottle struct{ account, addr string }

func newLoginThrottle(username string, ip netip.Addr) loginThrottle {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return loginThrottle{account: "login:acct:" + hex.EncodeToString(h[:16]), addr: "login:addr:" + addrKey(ip)}
}

// loginBlocked reports whether the attempt must wait and, if so, how long.
func (s *Server) loginBlocked(ctx context.Context, k loginThrottle) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	blocked, retry, err := s.failures.Blocked(ctx, k.addr, loginAddrLimit, loginAddrWindow)
	if err != nil {
		s.failOpen("login", err)
		return false, 0
	}
	if blocked {
		return true, retry
	}
	wait, err := s.failures.Delay(ctx, k.account, loginAccountKept, loginAccountWindow, loginBackoff)
	if err != nil {
		s.failOpen("login", err)
		return false, 0
	}
	return wait > 0, wait
}

// loginFailed counts a failed sign-in on both counters.
func (s *Server) loginFailed(ctx context.Context, k loginThrottle) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	if err := s.failures.Record(ctx, k.account, loginAccountKept, loginAccountWindow); err != nil {
		s.failOpen("login", err)
	}
	if err := s.failures.Record(ctx, k.addr, loginAddrLimit, loginAddrWindow); err != nil {
		s.failOpen("login", err)
	}
}

// loginSucceeded forgets the account's failures. The address's stay: an
// attacker holding one account must not reset the count of their guesses
// at others by signing in to it.
func (s *Server) loginSucceeded(ctx context.Context, k loginThrottle) {
	ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	if err := s.failures.Reset(ctx, k.account); err != nil {
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
