package app

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

func TestNewShared(t *testing.T) {
	ctx := context.Background()
	t.Run("no redis", func(t *testing.T) {
		s, err := newShared(ctx, &config.Config{ReplicaURL: "http://10.0.0.5:8080"})
		if err != nil || s.limiter != nil || s.sessions != nil {
			t.Fatalf("newShared without redis.url = %+v, %v; want no limiter, no sessions, nil", s, err)
		}
		s.close()
	})
	t.Run("unreachable", func(t *testing.T) {
		_, err := newShared(ctx, &config.Config{Redis: config.Redis{URL: "redis://:secret@127.0.0.1:1/0"}})
		if err == nil || !strings.Contains(err.Error(), "redis at 127.0.0.1:1 (redis.url) does not answer") {
			t.Errorf("err = %v; want one naming the address", err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		u := os.Getenv("SWITCHBOARD_TEST_REDIS_URL")
		if u == "" {
			t.Skip("set SWITCHBOARD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to connect to Redis")
		}
		s, err := newShared(ctx, &config.Config{Redis: config.Redis{URL: u}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if s.sessions != nil {
			t.Error("a session directory without server.replicaURL")
		}
		l := s.limiter
		key := "test:newlimiter:" + time.Now().Format(time.RFC3339Nano)
		defer l.(ratelimit.Failures).Reset(ctx, key)
		if ok, _, err := l.Allow(ctx, key, 1, time.Second); err != nil || !ok {
			t.Errorf("Allow = %v, %v; want true", ok, err)
		}
		if ok, _, err := l.Allow(ctx, key, 1, time.Second); err != nil || ok {
			t.Errorf("second Allow = %v, %v; want false", ok, err)
		}
		withReplica, err := newShared(ctx, &config.Config{Redis: config.Redis{URL: u}, ReplicaURL: "http://10.0.0.5:8080"})
		if err != nil {
			t.Fatal(err)
		}
		defer withReplica.close()
		if withReplica.sessions == nil {
			t.Error("no session directory with redis.url and server.replicaURL")
		}
	})
}
