package ratelimit

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key a Redis limiter writes.
const DefaultPrefix = "switchboard:rl:"

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// Prefix starts every key written. Empty: DefaultPrefix.
	Prefix string
	// Now is the clock. Nil: the Redis server's clock (TIME), which all
	// replicas share, so their clocks' skew does not matter.
	Now func() time.Time
}

// Redis is a Limiter and Failures whose counts live in Redis, so that every
// replica using the same Redis enforces one limit together. Each key is a
// sorted set of event times, changed by one Lua script per call, hence
// atomically; it expires a window after its last event.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	now    func() time.Time
}

var (
	_ Limiter  = (*Redis)(nil)
	_ Failures = (*Redis)(nil)
)

// NewRedis returns a limiter keeping its counts in c, which the caller owns
// and closes. The client should have ContextTimeoutEnabled so that callers'
// deadlines bound a call when Redis hangs. Nil options are valid.
func NewRedis(c redis.UniversalClient, o *RedisOptions) *Redis {
	if c == nil {
		panic("ratelimit: NewRedis with a nil client")
	}
	if o == nil {
		o = &RedisOptions{}
	}
	r := &Redis{c: c, prefix: o.Prefix, now: o.Now}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	return r
}

// The scripts take KEYS[1], the key, and ARGV: now in Unix microseconds (""
// for the server's clock), limit, window in microseconds and, for the ones
// that add an event, a unique member for it. Scores are microseconds, exact in
// a double until the year 2255. An event is in the window while
// now - t < window, as in Memory.
const scriptPrelude = `
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local limit, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = math.max(1, math.ceil(window / 1000))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local function retry()
  local e = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return tonumber(e[2]) + window - now
end
`

var (
	// allowScript returns {1, 0} after counting the event, or {0, retry}.
	allowScript = redis.NewScript(scriptPrelude + `
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, 0}
end
return {0, retry()}
`)
	// blockedScript returns {1, retry} or {0, 0}.
	blockedScript = redis.NewScript(scriptPrelude + `
if n < limit then
  return {0, 0}
end
return {1, retry()}
`)
	// recordScript counts the event, keeping the newest limit.
	recordScript = redis.NewScript(scriptPrelude + `
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -limit - 1)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, 0}
`)
)

// delayScript returns the number of failures in the window and the age of
// the newest in microseconds; Delay computes the wait from them.
var delayScript = redis.NewScript(scriptPrelude + `
if n == 0 then
  return {0, 0}
end
local e = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {n, now - tonumber(e[2])}
`)

// Delay implements Failures.
func (r *Redis) Delay(ctx context.Context, key string, limit int, window time.Duration, b Backoff) (time.Duration, error) {
	if err := check(limit, window); err != nil {
		return 0, err
	}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	v, err := delayScript.Run(ctx, r.c, []string{r.prefix + key}, now, limit, window.Microseconds()).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(v) != 2 {
		return 0, fmt.Errorf("ratelimit: redis script returned %d values, want 2", len(v))
	}
	if v[0] == 0 {
		return 0, nil
	}
	return max(0, b.wait(int(v[0]))-time.Duration(v[1])*time.Microsecond), nil
}

// run runs s for key and returns its two numbers.
func (r *Redis) run(ctx context.Context, s *redis.Script, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	if err := check(limit, window); err != nil {
		return false, 0, err
	}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	v, err := s.Run(ctx, r.c, []string{r.prefix + key}, now, limit, window.Microseconds(), rand.Text()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(v) != 2 {
		return false, 0, fmt.Errorf("ratelimit: redis script returned %d values, want 2", len(v))
	}
	return v[0] == 1, time.Duration(v[1]) * time.Microsecond, nil
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	return r.run(ctx, allowScript, key, limit, window)
}

// Blocked implements Failures.
func (r *Redis) Blocked(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	return r.run(ctx, blockedScript, key, limit, window)
}

// Record implements Failures.
func (r *Redis) Record(ctx context.Context, key string, limit int, window time.Duration) error {
	_, _, err := r.run(ctx, recordScript, key, limit, window)
	return err
}

// Reset implements Failures.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis: %w", err)
	}
	return nil
}
