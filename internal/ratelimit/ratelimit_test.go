package ratelimit_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// both is what each implementation provides.
type both interface {
	ratelimit.Limiter
	ratelimit.Failures
}

// factory makes limiters sharing one state (two replicas), read by now, or
// by the implementation's own clock when now is nil.
type factory func(t *testing.T, now func() time.Time) (a, b both)

func memoryFactory(t *testing.T, now func() time.Time) (a, b both) {
	m := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: now})
	return m, m
}

// redisURL returns the test Redis or skips.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("set SWITCHBOARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis rate-limit tests")
	}
	return u
}

// newRedisClient connects to the test Redis; the client is closed when the
// test ends.
func newRedisClient(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("SWITCHBOARD_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping the test Redis: %v", err)
	}
	return c
}

// testPrefix returns a key prefix of this test's own and deletes its keys
// when the test ends.
func testPrefix(t *testing.T, c *redis.Client) string {
	t.Helper()
	prefix := ratelimit.DefaultPrefix + "test:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Errorf("list test keys: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("delete test keys: %v", err)
			}
		}
	})
	return prefix
}

// redisFactory gives two limiters with their own clients (two replicas) on
// the test Redis.
func redisFactory(t *testing.T, now func() time.Time) (a, b both) {
	c1, c2 := newRedisClient(t), newRedisClient(t)
	prefix := testPrefix(t, c1)
	return ratelimit.NewRedis(c1, &ratelimit.RedisOptions{Prefix: prefix, Now: now}),
		ratelimit.NewRedis(c2, &ratelimit.RedisOptions{Prefix: prefix, Now: now})
}

func TestMemory(t *testing.T) { contract(t, memoryFactory) }

func TestRedis(t *testing.T) {
	redisURL(t)
	contract(t, redisFactory)
}

// contract is what every implementation must do.
func contract(t *testing.T, newPair factory) {
	ctx := context.Background()
	// Microseconds are both implementations' resolution.
	start := time.Now().Truncate(time.Millisecond)

	type step struct {
		advance   time.Duration
		key       string
		wantOK    bool
		wantRetry time.Duration
	}
	allowTests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"limit then refuse", 3, []step{
			{0, "a", true, 0},
			{time.Second, "a", true, 0},
			{time.Second, "a", true, 0},
			{time.Second, "a", false, 7 * time.Second}, // the first leaves at 10 s
			{0, "b", true, 0},                          // keys are independent
		}},
		{"sliding window", 2, []step{
			{0, "a", true, 0},
			{6 * time.Second, "a", true, 0},
			{3 * time.Second, "a", false, time.Second},
			{time.Second, "a", true, 0},                // the first is 10 s old: out
			{time.Second, "a", false, 5 * time.Second}, // the second leaves at 16 s
			{5*time.Second - time.Microsecond, "a", false, time.Microsecond},
			{time.Microsecond, "a", true, 0},
		}},
		{"refusals are not counted", 1, []step{
			{0, "a", true, 0},
			{5 * time.Second, "a", false, 5 * time.Second},
			{5 * time.Second, "a", true, 0},
		}},
		{"idle key starts afresh", 2, []step{
			{0, "a", true, 0},
			{0, "a", true, 0},
			{time.Hour, "a", true, 0},
			{0, "a", true, 0},
			{0, "a", false, 10 * time.Second},
		}},
	}
	for _, tt := range allowTests {
		t.Run("Allow/"+tt.name, func(t *testing.T) {
			clk := &clock{t: start}
			a, b := newPair(t, clk.Now)
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				l := a
				if i%2 == 1 {
					l = b // alternate replicas: the count is shared
				}
				ok, retry, err := l.Allow(ctx, s.key, tt.limit, 10*time.Second)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}

	t.Run("Failures", func(t *testing.T) {
		clk := &clock{t: start}
		a, b := newPair(t, clk.Now)
		const limit, window = 3, time.Minute
		blocked := func(l both, key string) string {
			t.Helper()
			bl, retry, err := l.Blocked(ctx, key, limit, window)
			if err != nil {
				t.Fatal(err)
			}
			if !bl {
				return "open"
			}
			return "blocked " + retry.String()
		}
		record := func(l both, key string) {
			t.Helper()
			if err := l.Record(ctx, key, limit, window); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		got = append(got, blocked(a, "u"))
		for range 2 {
			record(a, "u")
			clk.Advance(10 * time.Second)
		}
		got = append(got, blocked(b, "u")) // 2 failures
		record(b, "u")
		got = append(got, blocked(a, "u"), blocked(a, "v")) // 3: blocked until the first is a minute old
		for range 5 {
			record(b, "u") // more failures keep it blocked, and only the newest 3 are kept
		}
		got = append(got, blocked(a, "u"))
		clk.Advance(window - time.Second)
		got = append(got, blocked(b, "u"))
		clk.Advance(time.Second)
		got = append(got, blocked(b, "u"))
		record(a, "u")
		clk.Advance(time.Second)
		got = append(got, blocked(a, "u"))
		if err := b.Reset(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		got = append(got, blocked(a, "u"))
		if err := a.Reset(ctx, "never seen"); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"open",
			"open",
			"blocked 40s", "open",
			"blocked 1m0s",
			"blocked 1s",
			"open",
			"open", // the three at 20 s left the window: one failure
			"open",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Blocked after each step (-want +got):\n%s", diff)
		}
	})

	t.Run("Delay", func(t *testing.T) {
		clk := &clock{t: start}
		a, b := newPair(t, clk.Now)
		const limit, window = 10, time.Hour
		bo := ratelimit.Backoff{Free: 2, Base: time.Second, Max: 10 * time.Second}
		delay := func(l both, key string) time.Duration {
			t.Helper()
			d, err := l.Delay(ctx, key, limit, window, bo)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		record := func(l both, key string) {
			t.Helper()
			if err := l.Record(ctx, key, limit, window); err != nil {
				t.Fatal(err)
			}
		}
		var got []time.Duration
		got = append(got, delay(a, "u"))
		for i := range 7 { // failures 1 to 7, each when the previous wait is over
			record(a, "u")
			d := delay(b, "u")
			got = append(got, d)
			clk.Advance(d)
			if i == 4 {
				clk.Advance(-d / 2) // half way through the wait after the fifth
				got = append(got, delay(a, "u"))
				clk.Advance(d / 2)
			}
		}
		got = append(got, delay(a, "v")) // keys are independent
		clk.Advance(window)
		got = append(got, delay(a, "u")) // every failure left the window
		record(a, "w")
		record(a, "w")
		record(a, "w")
		if err := b.Reset(ctx, "w"); err != nil {
			t.Fatal(err)
		}
		got = append(got, delay(a, "w"))
		want := []time.Duration{
			0,
			0, 0, // two free failures
			time.Second, 2 * time.Second, 4 * time.Second, 2 * time.Second, // doubling; half way through the fourth second
			8 * time.Second, 10 * time.Second, // capped at Max
			0,
			0,
			0,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Delay after each step (-want +got):\n%s", diff)
		}
	})

	t.Run("Allow and Record count the same events", func(t *testing.T) {
		clk := &clock{t: start}
		a, b := newPair(t, clk.Now)
		if err := a.Record(ctx, "k", 2, time.Minute); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := b.Allow(ctx, "k", 2, time.Minute); err != nil || !ok {
			t.Fatalf("Allow after one failure = %v, %v; want true", ok, err)
		}
		if bl, retry, err := a.Blocked(ctx, "k", 2, time.Minute); err != nil || !bl || retry != time.Minute {
			t.Fatalf("Blocked = %v, %v, %v; want true, 1m0s", bl, retry, err)
		}
	})

	t.Run("invalid arguments", func(t *testing.T) {
		a, _ := newPair(t, nil)
		for _, c := range []struct {
			limit  int
			window time.Duration
		}{{0, time.Second}, {-1, time.Second}, {1, 0}, {1, time.Nanosecond}} {
			if _, _, err := a.Allow(ctx, "k", c.limit, c.window); !errors.Is(err, ratelimit.ErrInvalid) {
				t.Errorf("Allow(limit %d, window %v) error = %v; want ErrInvalid", c.limit, c.window, err)
			}
			if err := a.Record(ctx, "k", c.limit, c.window); !errors.Is(err, ratelimit.ErrInvalid) {
				t.Errorf("Record(limit %d, window %v) error = %v; want ErrInvalid", c.limit, c.window, err)
			}
		}
	})

	// Many callers at once on two replicas: exactly limit get through.
	t.Run("concurrent", func(t *testing.T) {
		a, b := newPair(t, nil) // the implementation's own clock
		const limit, callers = 25, 200
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for i := range callers {
			l := a
			if i%2 == 1 {
				l = b
			}
			wg.Go(func() {
				ok, retry, err := l.Allow(ctx, "hot", limit, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				} else if retry <= 0 || retry > time.Hour {
					t.Errorf("refused with retryAfter %v; want within (0, 1h]", retry)
				}
			})
		}
		wg.Wait()
		if n := admitted.Load(); n != limit {
			t.Errorf("%d of %d concurrent calls admitted; want %d", n, callers, limit)
		}
	})
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	m := ratelimit.NewMemory(&ratelimit.MemoryOptions{MaxKeys: 2})
	allow := func(key string) bool {
		t.Helper()
		ok, _, err := m.Allow(ctx, key, 1, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	allow("a")
	allow("b")
	allow("a") // refused, but a is now the most recently used
	allow("c") // evicts b
	got := []bool{allow("a"), allow("c"), allow("b")}
	if diff := cmp.Diff([]bool{false, false, true}, got); diff != "" {
		t.Errorf("after eviction, Allow(a, c, b) (-want +got):\n%s", diff)
	}
}

// TestRedisSharedAcrossReplicas: two limiters with their own clients on one
// Redis, as two replicas would have, admit the limit together; two Memory
// limiters each admit it.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	ctx := t.Context()
	c1, c2 := newRedisClient(t), newRedisClient(t)
	prefix := testPrefix(t, c1)
	r1 := ratelimit.NewRedis(c1, &ratelimit.RedisOptions{Prefix: prefix})
	r2 := ratelimit.NewRedis(c2, &ratelimit.RedisOptions{Prefix: prefix})
	m1, m2 := ratelimit.NewMemory(nil), ratelimit.NewMemory(nil)
	admitted := func(a, b ratelimit.Limiter) int {
		t.Helper()
		n := 0
		for i := range 10 {
			l := a
			if i%3 == 0 {
				l = b
			}
			ok, _, err := l.Allow(ctx, "register:203.0.113.7", 5, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				n++
			}
		}
		return n
	}
	if n := admitted(r1, r2); n != 5 {
		t.Errorf("two Redis replicas admitted %d of 10; want 5", n)
	}
	if n := admitted(m1, m2); n != 9 {
		t.Errorf("two memory replicas admitted %d of 10; want 9 (4 and 5)", n)
	}
}

// TestRedisKeys checks what lands in Redis: one key per limited key, under
// the prefix, expiring with its window.
func TestRedisKeys(t *testing.T) {
	c := newRedisClient(t)
	prefix := testPrefix(t, c)
	ctx := t.Context()
	l := ratelimit.NewRedis(c, &ratelimit.RedisOptions{Prefix: prefix})
	for range 3 {
		if _, _, err := l.Allow(ctx, "203.0.113.7", 2, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{prefix + "203.0.113.7"}, keys); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("TTL %v; want about the 90 s window", ttl)
	}
	if n, err := c.ZCard(ctx, keys[0]).Result(); err != nil || n != 2 {
		t.Errorf("%d events stored (%v); want 2 (refusals are not stored)", n, err)
	}
	if err := l.Reset(ctx, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, keys[0]).Result(); err != nil || n != 0 {
		t.Errorf("key still exists after Reset (%v)", err)
	}
}

// TestRedisUnreachable: errors surface so that the caller can fail open.
func TestRedisUnreachable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer c.Close()
	l := ratelimit.NewRedis(c, nil)
	ctx := t.Context()
	if ok, _, err := l.Allow(ctx, "k", 1, time.Second); err == nil || ok {
		t.Errorf("Allow = %v, %v; want false and an error", ok, err)
	}
	if _, _, err := l.Blocked(ctx, "k", 1, time.Second); err == nil {
		t.Error("Blocked: no error")
	}
	if err := l.Record(ctx, "k", 1, time.Second); err == nil {
		t.Error("Record: no error")
	}
	if err := l.Reset(ctx, "k"); err == nil {
		t.Error("Reset: no error")
	}
}
