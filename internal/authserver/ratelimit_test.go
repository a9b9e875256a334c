package authserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

// redisLimiters returns n limiters, each with its own client (as n replicas
// have), on the test Redis under a prefix of the test's own, or skips.
func redisLimiters(t *testing.T, n int, now func() time.Time) []*ratelimit.Redis {
	t.Helper()
	u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("set SWITCHBOARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the shared rate-limit tests")
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("SWITCHBOARD_TEST_REDIS_URL: %v", err)
	}
	prefix := ratelimit.DefaultPrefix + "test:" + rand.Text() + ":"
	var out []*ratelimit.Redis
	for i := range n {
		c := redis.NewClient(opts)
		t.Cleanup(func() { c.Close() })
		if i == 0 {
			t.Cleanup(func() {
				ctx := context.Background()
				if keys, err := c.Keys(ctx, prefix+"*").Result(); err == nil && len(keys) > 0 {
					c.Del(ctx, keys...)
				}
			})
		}
		out = append(out, ratelimit.NewRedis(c, &ratelimit.RedisOptions{Prefix: prefix, Now: now}))
	}
	return out
}

// signIn starts a sign-in for c on e and posts username and password; it
// returns the status and the Retry-After header.
func signIn(t *testing.T, e *testEnv, c client, username, password string) (int, string) {
	t.Helper()
	b := newBrowser()
	_, page := b.get(t, e.authorizeURL(c, newPKCE(), nil))
	rid, csrf := formFields(t, page)
	resp, _ := b.post(t, e.iss+"/login", url.Values{"rid": {rid}, "csrf": {csrf}, "username": {username}, "password": {password}})
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// Two replicas on one Redis throttle sign-in and registration together.
func TestLimitsSharedAcrossReplicas(t *testing.T) {
	clk := &clock{t: time.Now()}
	ls := redisLimiters(t, 2, clk.Now)
	a := newEnv(t, func(o *Options) { o.Limiter = ls[0]; o.Now = clk.Now })
	b := newEnv(t, func(o *Options) { o.Limiter = ls[1]; o.Now = clk.Now })
	ca, cb := a.publicClient(), b.publicClient()
	a.user("alice")
	b.user("alice")

	// The free failures and one more, which starts the delay.
	for i := range loginBackoff.Free + 1 {
		e, c := a, ca
		if i%2 == 1 {
			e, c = b, cb
		}
		if status, _ := signIn(t, e, c, "alice", "wrong password"); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i, status)
		}
	}
	for _, r := range []struct {
		e *testEnv
		c client
	}{{a, ca}, {b, cb}} {
		status, retry := signIn(t, r.e, r.c, "Alice ", "correct horse battery")
		if status != http.StatusTooManyRequests || retry != "1" {
			t.Fatalf("sign-in after %d failures on two replicas: %d Retry-After %q, want 429 after 1 s", loginBackoff.Free+1, status, retry)
		}
	}
	clk.Advance(loginBackoff.Base)
	if status, _ := signIn(t, b, cb, "alice", "correct horse battery"); status != http.StatusFound {
		t.Fatalf("sign-in once the delay is over: %d, want 302", status)
	}
	// Another user from the same address is not affected.
	a.user("bob")
	if status, _ := signIn(t, a, ca, "bob", "correct horse battery"); status != http.StatusFound {
		t.Errorf("bob: %d, want 302", status)
	}

	// publicClient used two registrations; 18 remain across both replicas.
	var statuses []int
	for i := range registerLimit - 1 {
		e := a
		if i%2 == 1 {
			e = b
		}
		status, _ := e.register(map[string]any{"redirect_uris": []string{"https://a.example/cb"}})
		statuses = append(statuses, status)
	}
	created := 0
	for _, s := range statuses {
		if s == http.StatusCreated {
			created++
		}
	}
	if created != registerLimit-2 || statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Errorf("registrations: %v; want %d created, then 429", statuses, registerLimit-2)
	}
}

// With Redis unreachable, registration and sign-in go ahead and the error
// is logged.
func TestLimiterFailsOpen(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	var logs bytes.Buffer
	e := newEnv(t, func(o *Options) {
		o.Limiter = ratelimit.NewRedis(c, nil)
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for i := range registerLimit + 1 {
		if status, out := e.register(map[string]any{"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none"}); status != http.StatusCreated {
			t.Fatalf("registration %d: %d %v", i, status, out)
		}
	}
	cl := e.publicClient()
	e.user("alice")
	for range loginBackoff.Free + 2 {
		signIn(t, e, cl, "alice", "wrong password")
	}
	if status, _ := signIn(t, e, cl, "alice", "correct horse battery"); status != http.StatusFound {
		t.Errorf("sign-in with the limiter down: %d, want 302", status)
	}
	if !strings.Contains(logs.String(), "rate limit unavailable") || !strings.Contains(logs.String(), "limit=login") || !strings.Contains(logs.String(), "limit=register") {
		t.Errorf("logs lack the limiter's failures:\n%s", logs.String())
	}
}
