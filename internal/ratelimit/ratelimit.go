// Package ratelimit counts events per key within a sliding time window: in
// memory for a single replica (Memory), or in Redis so that every replica
// sharing it enforces one limit (Redis).
//
// Both implementations keep, per key, the times of the most recent events (at
// most limit of them) and count those younger than the window, so a limit of
// 20 per minute never lets 21 events through in any 60 seconds, whatever the
// window's alignment. Allow and Record count the same events: Allow(key) is
// "not Blocked(key), then Record(key)", done atomically.
//
// It imports nothing internal; authserver and cmd/switchboard import it.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limiter admits at most limit events per key within any window.
type Limiter interface {
	// Allow reports whether one more event for key fits within limit
	// events per window, and counts it if so. When it does not fit,
	// retryAfter is how long until it would. When err is not nil (the
	// shared store is unreachable), ok is false and the caller chooses
	// whether to fail open or closed.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// Failures counts failed attempts per key, such as wrong passwords, so that a
// key with too many recent failures is refused before it is tried again, and
// a success wipes the slate.
type Failures interface {
	// Blocked reports whether key has had limit or more failures within
	// the last window and, if so, how long until it has fewer.
	Blocked(ctx context.Context, key string, limit int, window time.Duration) (blocked bool, retryAfter time.Duration, err error)
	// Record counts a failure for key now. Only the newest limit failures
	// are kept.
	Record(ctx context.Context, key string, limit int, window time.Duration) error
	// Reset forgets key's failures.
	Reset(ctx context.Context, key string) error
	// Delay reports how long key must wait, from now, before its next
	// attempt under b, counting the failures Record(key, limit, window)
	// kept within window: zero while there are at most b.Free of them.
	Delay(ctx context.Context, key string, limit int, window time.Duration, b Backoff) (time.Duration, error)
}

// Backoff is an exponential delay after repeated failures: the first Free
// failures cost nothing, the next one makes the key wait Base after it, and
// each further one twice as long as the one before, at most Max.
type Backoff struct {
	Free      int
	Base, Max time.Duration
}

// wait is how long after the newest of n failures the next attempt may come.
func (b Backoff) wait(n int) time.Duration {
	if n <= b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free + 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// ErrInvalid is returned for a limit that is not positive or a window
// shorter than a microsecond, the resolution of both implementations.
var ErrInvalid = errors.New("ratelimit: limit must be positive and window at least 1µs")

func check(limit int, window time.Duration) error {
	if limit <= 0 || window < time.Microsecond {
		return fmt.Errorf("%w (limit %d, window %v)", ErrInvalid, limit, window)
	}
	return nil
}
