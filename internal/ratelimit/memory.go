package ratelimit

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys is how many keys a Memory tracks unless told otherwise.
const DefaultMaxKeys = 100_000

// MemoryOptions configure a Memory.
type MemoryOptions struct {
	// MaxKeys bounds the keys tracked; beyond it the least recently used
	// key is forgotten. Each key holds at most limit timestamps of 8 bytes.
	// Zero: DefaultMaxKeys.
	MaxKeys int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Memory is a Limiter and Failures for one process. Replicas each keep their
// own counts, so N replicas together admit up to N times the limit.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu   sync.Mutex               // guards the fields below
	keys map[string]*list.Element // of *memKey
	lru  *list.List               // most recently used first
}

var (
	_ Limiter  = (*Memory)(nil)
	_ Failures = (*Memory)(nil)
)

type memKey struct {
	key    string
	events []int64 // Unix microseconds, oldest first
}

// NewMemory returns an empty in-memory limiter. Nil options are valid.
func NewMemory(o *MemoryOptions) *Memory {
	if o == nil {
		o = &MemoryOptions{}
	}
	m := &Memory{now: o.Now, maxKeys: o.MaxKeys, keys: map[string]*list.Element{}, lru: list.New()}
	if m.now == nil {
		m.now = time.Now
	}
	if m.maxKeys <= 0 {
		m.maxKeys = DefaultMaxKeys
	}
	return m
}

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if err := check(limit, window); err != nil {
		return false, 0, err
	}
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.getLocked(key, now, window)
	if retry := retryAfter(k.events, limit, window, now); retry > 0 {
		return false, retry, nil
	}
	k.events = append(k.events, now)
	return true, 0, nil
}

// Blocked implements Failures.
func (m *Memory) Blocked(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if err := check(limit, window); err != nil {
		return false, 0, err
	}
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.keys[key]
	if !ok {
		return false, 0, nil
	}
	k := e.Value.(*memKey)
	k.events = trim(k.events, now, window)
	retry := retryAfter(k.events, limit, window, now)
	return retry > 0, retry, nil
}

// Record implements Failures.
func (m *Memory) Record(_ context.Context, key string, limit int, window time.Duration) error {
	if err := check(limit, window); err != nil {
		return err
	}
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.getLocked(key, now, window)
	k.events = append(k.events, now)
	if n := len(k.events); n > limit {
		k.events = append(k.events[:0], k.events[n-limit:]...)
	}
	return nil
}

// Reset implements Failures.
func (m *Memory) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.keys[key]; ok {
		m.lru.Remove(e)
		delete(m.keys, key)
	}
	return nil
}

// Delay implements Failures.
func (m *Memory) Delay(_ context.Context, key string, limit int, window time.Duration, b Backoff) (time.Duration, error) {
	if err := check(limit, window); err != nil {
		return 0, err
	}
	now := m.now().UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.keys[key]
	if !ok {
		return 0, nil
	}
	k := e.Value.(*memKey)
	k.events = trim(k.events, now, window)
	n := len(k.events)
	if n == 0 {
		return 0, nil
	}
	return max(0, time.Duration(k.events[n-1]-now)*time.Microsecond+b.wait(n)), nil
}

// getLocked returns key's entry with events older than window dropped,
// creating it (and evicting the least recently used key when full) if needed.
func (m *Memory) getLocked(key string, now int64, window time.Duration) *memKey {
	if e, ok := m.keys[key]; ok {
		m.lru.MoveToFront(e)
		k := e.Value.(*memKey)
		k.events = trim(k.events, now, window)
		return k
	}
	for len(m.keys) >= m.maxKeys {
		old := m.lru.Back()
		m.lru.Remove(old)
		delete(m.keys, old.Value.(*memKey).key)
	}
	k := &memKey{key: key}
	m.keys[key] = m.lru.PushFront(k)
	return k
}

// trim drops the events that are window or more before now.
func trim(events []int64, now int64, window time.Duration) []int64 {
	cut := now - window.Microseconds()
	i := 0
	for i < len(events) && events[i] <= cut {
		i++
	}
	return events[i:]
}

// retryAfter is how long until fewer than limit of events (all within the
// window) remain in it, or 0 if already so.
func retryAfter(events []int64, limit int, window time.Duration, now int64) time.Duration {
	n := len(events)
	if n < limit {
		return 0
	}
	return time.Duration(events[n-limit]+window.Microseconds()-now) * time.Microsecond
}
