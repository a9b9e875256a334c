-- Times are Unix nanoseconds, 0 meaning none; lists are JSON arrays;
-- BYTEA columns named after secrets hold ciphertexts sealed by the key ring.

CREATE TABLE key_checks (
	key_id TEXT PRIMARY KEY,
	sealed BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	username TEXT NOT NULL,
	username_key TEXT UNIQUE, -- lower-cased username, NULL when empty
	email TEXT NOT NULL,
	email_key TEXT UNIQUE,    -- lower-cased email, NULL when empty
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE identities (
	provider TEXT NOT NULL,
	subject TEXT NOT NULL,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email TEXT NOT NULL,
	name TEXT NOT NULL,
	profile BYTEA,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_user ON identities (user_id);

CREATE TABLE clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	redirect_uris TEXT NOT NULL,
	grant_types TEXT NOT NULL,
	response_types TEXT NOT NULL,
	scope TEXT NOT NULL,
	token_endpoint_auth_method TEXT NOT NULL,
	application_type TEXT NOT NULL,
	secret BYTEA,
	metadata BYTEA,
	cimd BOOLEAN NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

CREATE TABLE consents (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	redirect_uri TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, client_id, redirect_uri)
);
CREATE INDEX consents_client ON consents (client_id);

CREATE TABLE auth_codes (
	hash TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	resource TEXT NOT NULL,
	scopes TEXT NOT NULL,
	nonce TEXT NOT NULL,
	family_id TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
	hash TEXT PRIMARY KEY,
	family_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	resource TEXT NOT NULL,
	scopes TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE revoked_families (
	family_id TEXT PRIMARY KEY,
	revoked_at BIGINT NOT NULL
);

CREATE TABLE revoked_access_tokens (
	jti TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
	id TEXT PRIMARY KEY,
	algorithm TEXT NOT NULL,
	private_key BYTEA,
	public_jwk BYTEA,
	created_at BIGINT NOT NULL,
	retired_at BIGINT NOT NULL
);

CREATE TABLE provider_tokens (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	provider TEXT NOT NULL,
	access_token BYTEA,
	refresh_token BYTEA,
	token_type TEXT NOT NULL,
	scopes TEXT NOT NULL,
	expiry BIGINT NOT NULL,
	id_token BYTEA,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, provider)
);

CREATE TABLE api_keys (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- No foreign key to users: the hub keys credentials by any user id.
CREATE TABLE credentials (
	user_id TEXT NOT NULL,
	server TEXT NOT NULL,
	name TEXT NOT NULL,
	value BYTEA,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, server, name)
);

CREATE TABLE ephemeral (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	value BYTEA,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX ephemeral_expires ON ephemeral (expires_at);

CREATE TABLE locks (
	name TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
