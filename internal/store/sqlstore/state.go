package sqlstore

import (
	"context"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Per-user credentials.

// SetCredential stores or replaces one credential. The user need not be a
// row in users: the hub keys credentials by whatever user id it is given.
func (s *Store) SetCredential(ctx context.Context, c *store.Credential) error {
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.now().UTC()
	}
	value, err := s.sealString(c.Value, "credentials", "value", c.UserID, c.Server, c.Name)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO credentials (user_id, server, name, value, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, server, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		c.UserID, c.Server, c.Name, value, ts(c.UpdatedAt))
	return s.insertErr("set credential", err)
}

// Credentials returns the user's credentials for the server ordered by
// name; none is an empty result, not ErrNotFound.
func (s *Store) Credentials(ctx context.Context, userID, server string) ([]*store.Credential, error) {
	var cs []*store.Credential
	err := queryAll(ctx, s.db, func(r Rows) error {
		var c store.Credential
		var value []byte
		var updated int64
		if err := r.Scan(&c.UserID, &c.Server, &c.Name, &value, &updated); err != nil {
			return err
		}
		var err error
		if c.Value, err = s.openString(value, "credentials", "value", c.UserID, c.Server, c.Name); err != nil {
			return err
		}
		c.UpdatedAt = tm(updated)
		cs = append(cs, &c)
		return nil
	}, `SELECT user_id, server, name, value, updated_at FROM credentials WHERE user_id = $1 AND server = $2 ORDER BY name`,
		userID, server)
	return cs, err
}

func (s *Store) DeleteCredentials(ctx context.Context, userID, server string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM credentials WHERE user_id = $1 AND server = $2`, userID, server)
	return err
}

// Ephemeral records.

// PutEphemeral stores or replaces a record.
func (s *Store) PutEphemeral(ctx context.Context, kind, key string, value []byte, expires time.Time) error {
	sealed, err := s.seal(value, "ephemeral", "value", kind, key)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO ephemeral (kind, id, value, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
		kind, key, sealed, ts(expires))
	return err
}

// TakeEphemeral deletes the record with DELETE ... RETURNING, so exactly one
// of concurrent callers gets its value.
func (s *Store) TakeEphemeral(ctx context.Context, kind, key string, now time.Time) ([]byte, error) {
	var sealed []byte
	var expires int64
	err := s.db.Tx(ctx, func(q Querier) error {
		return queryOne(ctx, q, func(r Rows) error { return r.Scan(&sealed, &expires) },
			`DELETE FROM ephemeral WHERE kind = $1 AND id = $2 RETURNING value, expires_at`, kind, key)
	})
	if err != nil {
		return nil, err
	}
	if expires != 0 && expires <= ts(now) {
		return nil, store.ErrNotFound
	}
	return s.open(sealed, "ephemeral", "value", kind, key)
}

func (s *Store) GetEphemeral(ctx context.Context, kind, key string, now time.Time) ([]byte, error) {
	var sealed []byte
	err := queryOne(ctx, s.db, func(r Rows) error { return r.Scan(&sealed) },
		`SELECT value FROM ephemeral WHERE kind = $1 AND id = $2 AND `+notExpired(3), kind, key, ts(now))
	if err != nil {
		return nil, err
	}
	return s.open(sealed, "ephemeral", "value", kind, key)
}

// Locks.

// TryLock takes the lock with one upsert that changes the row only when
// the lock is free, expired, or already the owner's (which extends it). The
// store's clock decides expiry, as the interface passes no time.
func (s *Store) TryLock(ctx context.Context, name, owner string, expires time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, `INSERT INTO locks (name, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE locks.owner = excluded.owner OR (locks.expires_at <> 0 AND locks.expires_at <= $4)`,
		name, owner, ts(expires), ts(s.now()))
	return n > 0, err
}

func (s *Store) Unlock(ctx context.Context, name, owner string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM locks WHERE name = $1 AND owner = $2`, name, owner)
	return err
}

// Sweep deletes expired authorization codes, refresh tokens, revoked
// access-token ids, ephemeral records and locks, and the revocation marks
// of families that have had no tokens left for a day (the grace keeps a
// mark that races with the family's first token).
func (s *Store) Sweep(ctx context.Context, now time.Time) error {
	return s.db.Tx(ctx, func(q Querier) error {
		for _, table := range []string{"auth_codes", "refresh_tokens", "revoked_access_tokens", "ephemeral", "locks"} {
			if _, err := q.Exec(ctx, `DELETE FROM `+table+` WHERE expires_at <> 0 AND expires_at <= $1`, ts(now)); err != nil {
				return err
			}
		}
		_, err := q.Exec(ctx, `DELETE FROM revoked_families WHERE revoked_at <= $1
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = revoked_families.family_id)`,
			ts(now.Add(-24*time.Hour)))
		return err
	})
}
