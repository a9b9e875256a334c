package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

const userColumns = `id, username, email, name, role, password_hash, disabled, created_at, updated_at`

func scanUser(r Rows) (*store.User, error) {
	var u store.User
	var role string
	var created, updated int64
	if err := r.Scan(&u.ID, &u.Username, &u.Email, &u.Name, &role, &u.PasswordHash, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	u.Role = store.Role(role)
	u.CreatedAt, u.UpdatedAt = tm(created), tm(updated)
	return &u, nil
}

func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if u.ID == "" {
		u.ID = newID()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now().UTC()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	_, err := s.db.Exec(ctx, `INSERT INTO users (`+userColumns+`, username_key, email_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		u.ID, u.Username, u.Email, u.Name, string(u.Role), u.PasswordHash, u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt),
		fold(u.Username), fold(u.Email))
	return s.insertErr("create user", err)
}

func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	u.UpdatedAt = s.now().UTC()
	n, err := s.db.Exec(ctx, `UPDATE users SET username = $2, email = $3, name = $4, role = $5,
		password_hash = $6, disabled = $7, updated_at = $8, username_key = $9, email_key = $10
		WHERE id = $1`,
		u.ID, u.Username, u.Email, u.Name, string(u.Role), u.PasswordHash, u.Disabled, ts(u.UpdatedAt),
		fold(u.Username), fold(u.Email))
	if err != nil {
		return s.insertErr("update user", err)
	}
	return changed(n, nil)
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (*store.User, error) {
	var u *store.User
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		u, err = scanUser(r)
		return err
	}, `SELECT `+userColumns+` FROM users WHERE `+where, arg)
	return u, err
}

func (s *Store) UserByID(ctx context.Context, id string) (*store.User, error) {
	return s.userWhere(ctx, `id = $1`, id)
}

func (s *Store) UserByUsername(ctx context.Context, username string) (*store.User, error) {
	if username == "" {
		return nil, store.ErrNotFound
	}
	return s.userWhere(ctx, `username_key = $1`, strings.ToLower(username))
}

func (s *Store) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	if email == "" {
		return nil, store.ErrNotFound
	}
	return s.userWhere(ctx, `email_key = $1`, strings.ToLower(email))
}

func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	var us []*store.User
	err := queryAll(ctx, s.db, func(r Rows) error {
		u, err := scanUser(r)
		us = append(us, u)
		return err
	}, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	return us, err
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int64
	err := queryOne(ctx, s.db, func(r Rows) error { return r.Scan(&n) }, `SELECT COUNT(*) FROM users`)
	return int(n), err
}

// Identities.

const identityColumns = `provider, subject, user_id, email, name, profile, created_at`

func scanIdentity(r Rows) (*store.Identity, error) {
	var id store.Identity
	var created int64
	if err := r.Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &id.Name, &id.Profile, &created); err != nil {
		return nil, err
	}
	id.Profile = blob(id.Profile)
	id.CreatedAt = tm(created)
	return &id, nil
}

// LinkIdentity links an identity to an existing user: ErrNotFound if the
// user does not exist, ErrConflict if the identity is linked already.
func (s *Store) LinkIdentity(ctx context.Context, id *store.Identity) error {
	if id.CreatedAt.IsZero() {
		id.CreatedAt = s.now().UTC()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO identities (`+identityColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id.Provider, id.Subject, id.UserID, id.Email, id.Name, blob(id.Profile), ts(id.CreatedAt))
	return s.insertErr("link identity", err)
}

func (s *Store) IdentityBySubject(ctx context.Context, provider, subject string) (*store.Identity, error) {
	var id *store.Identity
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		id, err = scanIdentity(r)
		return err
	}, `SELECT `+identityColumns+` FROM identities WHERE provider = $1 AND subject = $2`, provider, subject)
	return id, err
}

func (s *Store) IdentitiesOfUser(ctx context.Context, userID string) ([]*store.Identity, error) {
	var ids []*store.Identity
	err := queryAll(ctx, s.db, func(r Rows) error {
		id, err := scanIdentity(r)
		ids = append(ids, id)
		return err
	}, `SELECT `+identityColumns+` FROM identities WHERE user_id = $1 ORDER BY created_at, provider, subject`, userID)
	return ids, err
}

// OAuth clients.

const clientColumns = `id, name, redirect_uris, grant_types, response_types, scope, token_endpoint_auth_method,
	application_type, secret, metadata, cimd, created_at, last_used_at, expires_at`

func (s *Store) scanClient(r Rows) (*store.Client, error) {
	var c store.Client
	var redirects, grants, responses string
	var secret []byte
	var created, used, expires int64
	if err := r.Scan(&c.ID, &c.Name, &redirects, &grants, &responses, &c.Scope, &c.TokenEndpointAuthMethod,
		&c.ApplicationType, &secret, &c.Metadata, &c.CIMD, &created, &used, &expires); err != nil {
		return nil, err
	}
	var err error
	if c.RedirectURIs, err = unlist(redirects); err != nil {
		return nil, err
	}
	if c.GrantTypes, err = unlist(grants); err != nil {
		return nil, err
	}
	if c.ResponseTypes, err = unlist(responses); err != nil {
		return nil, err
	}
	if c.Secret, err = s.openString(secret, "clients", "secret", c.ID); err != nil {
		return nil, err
	}
	c.Metadata = blob(c.Metadata)
	c.CreatedAt, c.LastUsedAt, c.ExpiresAt = tm(created), tm(used), tm(expires)
	return &c, nil
}

// CreateClient registers a client: ErrConflict if the id is taken. A CIMD
// client replaces an earlier CIMD client with its id (its metadata document
// changed), keeping CreatedAt and LastUsedAt.
func (s *Store) CreateClient(ctx context.Context, c *store.Client) error {
	if c.ID == "" {
		c.ID = newID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now().UTC()
	}
	secret, err := s.sealString(c.Secret, "clients", "secret", c.ID)
	if err != nil {
		return err
	}
	q := `INSERT INTO clients (` + clientColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	if c.CIMD {
		// Only another CIMD client is replaced; a DCR client with the same
		// id (impossible in practice: DCR ids are not URLs) is a conflict.
		q += ` ON CONFLICT (id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris,
			grant_types = excluded.grant_types, response_types = excluded.response_types, scope = excluded.scope,
			token_endpoint_auth_method = excluded.token_endpoint_auth_method, application_type = excluded.application_type,
			secret = excluded.secret, metadata = excluded.metadata, expires_at = excluded.expires_at
			WHERE clients.cimd`
	}
	n, err := s.db.Exec(ctx, q, c.ID, c.Name, list(c.RedirectURIs), list(c.GrantTypes), list(c.ResponseTypes), c.Scope,
		c.TokenEndpointAuthMethod, c.ApplicationType, secret, blob(c.Metadata), c.CIMD, ts(c.CreatedAt), ts(c.LastUsedAt), ts(c.ExpiresAt))
	if err == nil && n == 0 {
		return fmt.Errorf("create client: %w", store.ErrConflict)
	}
	return s.insertErr("create client", err)
}

func (s *Store) ClientByID(ctx context.Context, id string) (*store.Client, error) {
	var c *store.Client
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		c, err = s.scanClient(r)
		return err
	}, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id)
	return c, err
}

func (s *Store) TouchClient(ctx context.Context, id string, now time.Time) error {
	return changed(s.db.Exec(ctx, `UPDATE clients SET last_used_at = $2 WHERE id = $1`, id, ts(now)))
}

// DeleteExpiredClients deletes the clients whose ExpiresAt has passed and
// that were never used (LastUsedAt is zero), with their consents.
func (s *Store) DeleteExpiredClients(ctx context.Context, now time.Time) (int, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM clients WHERE expires_at <> 0 AND expires_at <= $1 AND last_used_at = 0`, ts(now))
	return int(n), err
}

// Consents.

// SaveConsent stores or replaces a consent: ErrNotFound if the user or the
// client does not exist.
func (s *Store) SaveConsent(ctx context.Context, c *store.Consent) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now().UTC()
	}
	_, err := s.db.Exec(ctx, `INSERT INTO consents (user_id, client_id, redirect_uri, resource, scopes, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id, client_id, redirect_uri, resource) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at`,
		c.UserID, c.ClientID, c.RedirectURI, c.Resource, list(c.Scopes), ts(c.CreatedAt))
	return s.insertErr("save consent", err)
}

func (s *Store) ConsentFor(ctx context.Context, userID, clientID, redirectURI, resource string) (*store.Consent, error) {
	var c store.Consent
	err := queryOne(ctx, s.db, func(r Rows) error {
		var scopes string
		var created int64
		if err := r.Scan(&c.UserID, &c.ClientID, &c.RedirectURI, &c.Resource, &scopes, &created); err != nil {
			return err
		}
		c.CreatedAt = tm(created)
		var err error
		c.Scopes, err = unlist(scopes)
		return err
	}, `SELECT user_id, client_id, redirect_uri, resource, scopes, created_at FROM consents
		WHERE user_id = $1 AND client_id = $2 AND redirect_uri = $3 AND resource = $4`, userID, clientID, redirectURI, resource)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// DeleteConsent deletes the user's consents to the client at every
// redirect URI and for every resource. Deleting what is not there is not an error.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	return err
}
