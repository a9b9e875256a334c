package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// A zero expiry means "never" throughout, and an expiry equal to now has
// passed.
const unexpired = `(expires_at = 0 OR expires_at > $%d)`

func notExpired(param int) string { return fmt.Sprintf(unexpired, param) }

// Authorization codes.

const codeColumns = `hash, client_id, user_id, redirect_uri, code_challenge, resource, scopes, nonce, family_id,
	expires_at, used_at, created_at`

func scanCode(r Rows) (*store.AuthCode, error) {
	var c store.AuthCode
	var scopes string
	var expires, used, created int64
	if err := r.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge, &c.Resource, &scopes, &c.Nonce,
		&c.FamilyID, &expires, &used, &created); err != nil {
		return nil, err
	}
	var err error
	c.Scopes, err = unlist(scopes)
	c.ExpiresAt, c.UsedAt, c.CreatedAt = tm(expires), tm(used), tm(created)
	return &c, err
}

func (s *Store) SaveAuthCode(ctx context.Context, c *store.AuthCode) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now().UTC()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO auth_codes (`+codeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge, c.Resource, list(c.Scopes), c.Nonce, c.FamilyID,
		ts(c.ExpiresAt), ts(c.UsedAt), ts(c.CreatedAt))
	return s.insertErr("save authorization code", err)
}

// ConsumeAuthCode marks the code used in one conditional UPDATE, so exactly
// one of concurrent callers (in any process) changes the row. The others
// then find it used. A used code is reported as ErrUsed even once it has
// expired, so that a replay still revokes what the first use issued.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*store.AuthCode, error) {
	var code *store.AuthCode
	var result error
	err := s.db.Tx(ctx, func(q Querier) error {
		result = nil
		scan := func(r Rows) (err error) {
			code, err = scanCode(r)
			return err
		}
		err := queryOne(ctx, q, scan, `UPDATE auth_codes SET used_at = $2
			WHERE hash = $1 AND used_at = 0 AND `+notExpired(2)+` RETURNING `+codeColumns, hash, ts(now))
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := queryOne(ctx, q, scan, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1`, hash); err != nil {
			return err
		}
		if !code.UsedAt.IsZero() {
			result = store.ErrUsed
		} else {
			code, result = nil, store.ErrExpired
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return code, result
}

func (s *Store) MarkCodeIssued(ctx context.Context, hash, familyID string) error {
	return changed(s.db.Exec(ctx, `UPDATE auth_codes SET family_id = $2 WHERE hash = $1`, hash, familyID))
}

// Refresh tokens.

const refreshColumns = `hash, family_id, client_id, user_id, resource, scopes, expires_at, used_at, created_at,
	successor_hash, successor`

func scanRefresh(r Rows) (*store.RefreshToken, error) {
	var t store.RefreshToken
	var scopes string
	var expires, used, created int64
	if err := r.Scan(&t.Hash, &t.FamilyID, &t.ClientID, &t.UserID, &t.Resource, &scopes, &expires, &used, &created,
		&t.SuccessorHash, &t.Successor); err != nil {
		return nil, err
	}
	if len(t.Successor) == 0 {
		t.Successor = nil
	}
	var err error
	t.Scopes, err = unlist(scopes)
	t.ExpiresAt, t.UsedAt, t.CreatedAt = tm(expires), tm(used), tm(created)
	return &t, err
}

func (s *Store) SaveRefreshToken(ctx context.Context, t *store.RefreshToken) error {
	return s.saveRefresh(ctx, s.db, t)
}

func (s *Store) saveRefresh(ctx context.Context, q Querier, t *store.RefreshToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now().UTC()
	}
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.Hash, t.FamilyID, t.ClientID, t.UserID, t.Resource, list(t.Scopes), ts(t.ExpiresAt), ts(t.UsedAt), ts(t.CreatedAt),
		t.SuccessorHash, t.Successor)
	return s.insertErr("save refresh token", err)
}

// RotateRefreshToken returns the old token, now used, after saving next.
// next.FamilyID, ClientID and UserID default to the old token's; a
// different FamilyID is an error. Like ConsumeAuthCode, one conditional
// UPDATE decides the single winner; the insert of next commits with it or
// not at all. The same UPDATE records next (its hash and sealedNext) on the
// old token, and the old token's predecessor forgets the sealed old token:
// once a successor is used, nothing can hand it out again.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next *store.RefreshToken, sealedNext []byte, now time.Time) (*store.RefreshToken, error) {
	var old *store.RefreshToken
	var result error
	err := s.db.Tx(ctx, func(q Querier) error {
		result = nil
		scan := func(r Rows) (err error) {
			old, err = scanRefresh(r)
			return err
		}
		err := queryOne(ctx, q, scan, `UPDATE refresh_tokens SET used_at = $2, successor_hash = $3, successor = $4
			WHERE hash = $1 AND used_at = 0 AND `+notExpired(2)+`
			AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id)
			RETURNING `+refreshColumns, oldHash, ts(now), next.Hash, sealedNext)
		if errors.Is(err, store.ErrNotFound) {
			if err := queryOne(ctx, q, scan, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, oldHash); err != nil {
				return err
			}
			revoked, err := exists(ctx, q, `SELECT 1 FROM revoked_families WHERE family_id = $1`, old.FamilyID)
			switch {
			case err != nil:
				return err
			case revoked:
				old, result = nil, store.ErrNotFound
			case !old.UsedAt.IsZero():
				result = store.ErrUsed
			default:
				old, result = nil, store.ErrExpired
			}
			return nil
		}
		if err != nil {
			return err
		}
		if next.FamilyID == "" {
			next.FamilyID = old.FamilyID
		}
		if next.FamilyID != old.FamilyID {
			return fmt.Errorf("rotate refresh token: next token is in family %q, not %q", next.FamilyID, old.FamilyID)
		}
		if next.ClientID == "" {
			next.ClientID = old.ClientID
		}
		if next.UserID == "" {
			next.UserID = old.UserID
		}
		if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET successor = NULL
			WHERE family_id = $1 AND successor_hash = $2`, old.FamilyID, old.Hash); err != nil {
			return err
		}
		return s.saveRefresh(ctx, q, next)
	})
	if err != nil {
		return nil, err
	}
	return old, result
}

// RefreshTokenByHash returns the token as stored, used or not, in a revoked
// family or not (see FamilyRevoked).
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (*store.RefreshToken, error) {
	var t *store.RefreshToken
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		t, err = scanRefresh(r)
		return err
	}, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash)
	return t, err
}

func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO revoked_families (family_id, revoked_at) VALUES ($1, $2)
		ON CONFLICT (family_id) DO NOTHING`, familyID, ts(now))
	return err
}

func (s *Store) FamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	return exists(ctx, s.db, `SELECT 1 FROM revoked_families WHERE family_id = $1`, familyID)
}

func (s *Store) RevokeUserClientFamilies(ctx context.Context, userID, clientID string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO revoked_families (family_id, revoked_at)
		SELECT DISTINCT family_id, CAST($3 AS BIGINT) FROM refresh_tokens WHERE user_id = $1 AND client_id = $2
		ON CONFLICT (family_id) DO NOTHING`, userID, clientID, ts(now))
	return err
}

// Access-token revocation.

func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expires time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at`, jti, ts(expires))
	return err
}

func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	return exists(ctx, s.db, `SELECT 1 FROM revoked_access_tokens WHERE jti = $1`, jti)
}

// Signing keys.

const signingKeyColumns = `id, algorithm, private_key, public_jwk, created_at, retired_at`

func (s *Store) SaveSigningKey(ctx context.Context, k *store.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now().UTC()
	}
	priv, err := s.seal(k.PrivateKey, "signing_keys", "private_key", k.ID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Algorithm, priv, blob(k.PublicJWK), ts(k.CreatedAt), ts(k.RetiredAt))
	return s.insertErr("save signing key", err)
}

func (s *Store) SigningKeys(ctx context.Context) ([]*store.SigningKey, error) {
	var ks []*store.SigningKey
	err := queryAll(ctx, s.db, func(r Rows) error {
		var k store.SigningKey
		var priv []byte
		var created, retired int64
		if err := r.Scan(&k.ID, &k.Algorithm, &priv, &k.PublicJWK, &created, &retired); err != nil {
			return err
		}
		var err error
		if k.PrivateKey, err = s.open(priv, "signing_keys", "private_key", k.ID); err != nil {
			return err
		}
		k.PublicJWK = blob(k.PublicJWK)
		k.CreatedAt, k.RetiredAt = tm(created), tm(retired)
		ks = append(ks, &k)
		return nil
	}, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
	return ks, err
}

// RetireSigningKey retires a key; retiring it again keeps the first time.
func (s *Store) RetireSigningKey(ctx context.Context, id string, now time.Time) error {
	return changed(s.db.Exec(ctx, `UPDATE signing_keys SET retired_at = CASE WHEN retired_at = 0 THEN $2 ELSE retired_at END
		WHERE id = $1`, id, ts(now)))
}

// Identity-provider tokens.

func (s *Store) SaveProviderToken(ctx context.Context, t *store.ProviderToken) error {
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = s.now().UTC()
	}
	const table = "provider_tokens"
	access, err := s.sealString(t.AccessToken, table, "access_token", t.UserID, t.Provider)
	if err != nil {
		return err
	}
	refresh, err := s.sealString(t.RefreshToken, table, "refresh_token", t.UserID, t.Provider)
	if err != nil {
		return err
	}
	idToken, err := s.sealString(t.IDToken, table, "id_token", t.UserID, t.Provider)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO provider_tokens
		(user_id, provider, access_token, refresh_token, token_type, scopes, expiry, id_token, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (user_id, provider) DO UPDATE SET access_token = excluded.access_token,
			refresh_token = excluded.refresh_token, token_type = excluded.token_type, scopes = excluded.scopes,
			expiry = excluded.expiry, id_token = excluded.id_token, updated_at = excluded.updated_at`,
		t.UserID, t.Provider, access, refresh, t.TokenType, list(t.Scopes), ts(t.Expiry), idToken, ts(t.UpdatedAt))
	return s.insertErr("save provider token", err)
}

func (s *Store) ProviderToken(ctx context.Context, userID, provider string) (*store.ProviderToken, error) {
	var t store.ProviderToken
	err := queryOne(ctx, s.db, func(r Rows) error {
		var access, refresh, idToken []byte
		var scopes string
		var expiry, updated int64
		if err := r.Scan(&t.UserID, &t.Provider, &access, &refresh, &t.TokenType, &scopes, &expiry, &idToken, &updated); err != nil {
			return err
		}
		const table = "provider_tokens"
		var err error
		if t.AccessToken, err = s.openString(access, table, "access_token", t.UserID, t.Provider); err != nil {
			return err
		}
		if t.RefreshToken, err = s.openString(refresh, table, "refresh_token", t.UserID, t.Provider); err != nil {
			return err
		}
		if t.IDToken, err = s.openString(idToken, table, "id_token", t.UserID, t.Provider); err != nil {
			return err
		}
		t.Expiry, t.UpdatedAt = tm(expiry), tm(updated)
		t.Scopes, err = unlist(scopes)
		return err
	}, `SELECT user_id, provider, access_token, refresh_token, token_type, scopes, expiry, id_token, updated_at
		FROM provider_tokens WHERE user_id = $1 AND provider = $2`, userID, provider)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *Store) DeleteProviderToken(ctx context.Context, userID, provider string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM provider_tokens WHERE user_id = $1 AND provider = $2`, userID, provider)
	return err
}

// API keys.

const apiKeyColumns = `id, user_id, name, hash, prefix, scopes, created_at, last_used_at, expires_at, revoked_at`

func scanAPIKey(r Rows) (*store.APIKey, error) {
	var k store.APIKey
	var scopes string
	var created, used, expires, revoked int64
	if err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Hash, &k.Prefix, &scopes, &created, &used, &expires, &revoked); err != nil {
		return nil, err
	}
	var err error
	k.Scopes, err = unlist(scopes)
	k.CreatedAt, k.LastUsedAt, k.ExpiresAt, k.RevokedAt = tm(created), tm(used), tm(expires), tm(revoked)
	return &k, err
}

// CreateAPIKey stores a key, assigning ID when empty: ErrNotFound if the
// user does not exist, ErrConflict if the id or hash is taken.
func (s *Store) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	if k.ID == "" {
		k.ID = newID()
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now().UTC()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.UserID, k.Name, k.Hash, k.Prefix, list(k.Scopes), ts(k.CreatedAt), ts(k.LastUsedAt), ts(k.ExpiresAt), ts(k.RevokedAt))
	return s.insertErr("create API key", err)
}

// APIKeyByHash returns the key as stored; the caller checks RevokedAt and
// ExpiresAt.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*store.APIKey, error) {
	var k *store.APIKey
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		k, err = scanAPIKey(r)
		return err
	}, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash)
	return k, err
}

func (s *Store) ListAPIKeys(ctx context.Context, userID string) ([]*store.APIKey, error) {
	var ks []*store.APIKey
	err := queryAll(ctx, s.db, func(r Rows) error {
		k, err := scanAPIKey(r)
		ks = append(ks, k)
		return err
	}, `SELECT `+apiKeyColumns+` FROM api_keys WHERE user_id = $1 ORDER BY created_at, id`, userID)
	return ks, err
}

// RevokeAPIKey revokes a key; revoking it again keeps the first time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	return changed(s.db.Exec(ctx, `UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN $2 ELSE revoked_at END
		WHERE id = $1`, id, ts(now)))
}

func (s *Store) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	return changed(s.db.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, id, ts(now)))
}
