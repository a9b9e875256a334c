package authserver

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket per key (a remote IP). The state is per
// process: replicas each allow the rate, which bounds abuse well enough.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64

	mu      sync.Mutex // guards the field below
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(n int, per time.Duration) *rateLimiter {
	return &rateLimiter{rate: float64(n) / per.Seconds(), burst: float64(n), buckets: map[string]*bucket{}}
}

func (l *rateLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 10000 {
		for k, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// loginThrottle refuses sign-in attempts for a username from an IP after
// too many failures within a window.
type loginThrottle struct {
	max    int
	window time.Duration

	mu       sync.Mutex // guards the field below
	failures map[string][]time.Time
}

func newLoginThrottle(max int, window time.Duration) *loginThrottle {
	return &loginThrottle{max: max, window: window, failures: map[string][]time.Time{}}
}

func (t *loginThrottle) recentLocked(key string, now time.Time) []time.Time {
	var keep []time.Time
	for _, f := range t.failures[key] {
		if now.Sub(f) < t.window {
			keep = append(keep, f)
		}
	}
	if keep == nil {
		delete(t.failures, key)
	} else {
		t.failures[key] = keep
	}
	return keep
}

func (t *loginThrottle) blocked(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recentLocked(key, now)) >= t.max
}

func (t *loginThrottle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) > 10000 {
		for k := range t.failures {
			t.recentLocked(k, now)
		}
	}
	t.failures[key] = append(t.recentLocked(key, now), now)
}

func (t *loginThrottle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, key)
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
