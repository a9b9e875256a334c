package cluster_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-mcp/switchboard/internal/cluster"
)

// clock is a settable clock for the memory directory.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// wait lets d pass: the clock moves, or for Redis real time passes.
type wait func(d time.Duration)

func TestMemory(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	contract(t, cluster.NewMemory(c.now), func(d time.Duration) {
		c.mu.Lock()
		c.t = c.t.Add(d)
		c.mu.Unlock()
	})
}

func TestRedis(t *testing.T) {
	u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("set SWITCHBOARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the Redis directory tests")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("SWITCHBOARD_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("ping the test Redis: %v", err)
	}
	prefix := "switchboard:test:sess:" + rand.Text() + ":"
	t.Cleanup(func() {
		keys, _ := c.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	})
	d := cluster.NewRedis(c, &cluster.RedisOptions{Prefix: prefix})
	contract(t, d, time.Sleep)

	t.Run("key layout", func(t *testing.T) {
		if err := d.Claim(t.Context(), "layout", cluster.Owner{Replica: "http://a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(t.Context(), prefix+"layout").Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Fatalf("PTTL = %v, %v; want an expiry of at most a minute", ttl, err)
		}
	})
	t.Run("default prefix", func(t *testing.T) {
		if cluster.DefaultPrefix != "switchboard:sess:" {
			t.Fatalf("DefaultPrefix = %q", cluster.DefaultPrefix)
		}
	})
}

// contract is what every Directory does. Redis's expiry is real time, so
// the ttls here are short and the waits generous.
func contract(t *testing.T, d cluster.Directory, wait wait) {
	ctx := context.Background()
	a := cluster.Owner{Replica: "http://10.0.0.5:8080", User: "u1"}
	b := cluster.Owner{Replica: "http://10.0.0.6:8080", User: "u1"}

	t.Run("unknown", func(t *testing.T) {
		if _, err := d.Lookup(ctx, "nope"); !errors.Is(err, cluster.ErrNotFound) {
			t.Fatalf("Lookup = %v, want ErrNotFound", err)
		}
		if err := d.Release(ctx, "nope"); err != nil {
			t.Fatalf("Release of an unknown session = %v", err)
		}
	})
	t.Run("claim, lookup, reclaim, release", func(t *testing.T) {
		if err := d.Claim(ctx, "s1", a, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := d.Lookup(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Fatalf("Lookup (-want +got):\n%s", diff)
		}
		if err := d.Claim(ctx, "s1", b, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, _ := d.Lookup(ctx, "s1"); got != b {
			t.Fatalf("after a second claim Lookup = %+v, want %+v", got, b)
		}
		if err := d.Release(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Lookup(ctx, "s1"); !errors.Is(err, cluster.ErrNotFound) {
			t.Fatalf("Lookup after Release = %v, want ErrNotFound", err)
		}
	})
	t.Run("sessions are separate", func(t *testing.T) {
		d.Claim(ctx, "s2", a, time.Minute)
		d.Claim(ctx, "s3", b, time.Minute)
		d.Release(ctx, "s2")
		if got, err := d.Lookup(ctx, "s3"); err != nil || got != b {
			t.Fatalf("Lookup(s3) = %+v, %v; want %+v", got, err, b)
		}
	})
	t.Run("expires unless claimed again", func(t *testing.T) {
		const ttl = 400 * time.Millisecond
		d.Claim(ctx, "s4", a, ttl)
		d.Claim(ctx, "s5", a, ttl)
		wait(ttl / 2)
		d.Claim(ctx, "s5", a, ttl) // refreshed
		wait(ttl/2 + 100*time.Millisecond)
		if _, err := d.Lookup(ctx, "s4"); !errors.Is(err, cluster.ErrNotFound) {
			t.Errorf("Lookup after the ttl = %v, want ErrNotFound", err)
		}
		if got, err := d.Lookup(ctx, "s5"); err != nil || got != a {
			t.Errorf("Lookup of the refreshed session = %+v, %v; want %+v", got, err, a)
		}
	})
	t.Run("ttl must be positive", func(t *testing.T) {
		if err := d.Claim(ctx, "s6", a, 0); err == nil {
			t.Error("Claim with ttl 0 succeeded")
		}
	})
}
