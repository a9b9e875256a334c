package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key a Redis directory writes:
// "switchboard:sess:<session id>".
const DefaultPrefix = "switchboard:sess:"

// RedisOptions configure a Redis directory.
type RedisOptions struct {
	// Prefix starts every key written. Empty: DefaultPrefix.
	Prefix string
}

// Redis is a Directory in Redis, shared by every replica using the same
// Redis. Each session is one string key holding its owner as JSON, with a
// Redis expiry of the claim's ttl.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

var _ Directory = (*Redis)(nil)

// NewRedis returns a directory keeping its entries in c, which the caller
// owns and closes. The client should have ContextTimeoutEnabled so that
// callers' deadlines bound a call when Redis hangs. Nil options are valid.
func NewRedis(c redis.UniversalClient, o *RedisOptions) *Redis {
	if c == nil {
		panic("cluster: NewRedis with a nil client")
	}
	r := &Redis{c: c, prefix: DefaultPrefix}
	if o != nil && o.Prefix != "" {
		r.prefix = o.Prefix
	}
	return r
}

// Claim implements Directory.
func (r *Redis) Claim(ctx context.Context, sessionID string, o Owner, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("cluster: claim with ttl %v", ttl)
	}
	v, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := r.c.Set(ctx, r.prefix+sessionID, v, ttl).Err(); err != nil {
		return fmt.Errorf("claim session: %w", err)
	}
	return nil
}

// Lookup implements Directory.
func (r *Redis) Lookup(ctx context.Context, sessionID string) (Owner, error) {
	v, err := r.c.Get(ctx, r.prefix+sessionID).Bytes()
	if errors.Is(err, redis.Nil) {
		return Owner{}, ErrNotFound
	}
	if err != nil {
		return Owner{}, fmt.Errorf("look up session: %w", err)
	}
	var o Owner
	if err := json.Unmarshal(v, &o); err != nil || o.Replica == "" {
		return Owner{}, fmt.Errorf("look up session: malformed entry in Redis")
	}
	return o, nil
}

// Release implements Directory.
func (r *Redis) Release(ctx context.Context, sessionID string) error {
	if err := r.c.Del(ctx, r.prefix+sessionID).Err(); err != nil {
		return fmt.Errorf("release session: %w", err)
	}
	return nil
}
