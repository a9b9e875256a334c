-- Consent is remembered per resource (RFC 8707): approving one server's
-- endpoint (/mcp/github) says nothing about the aggregate /mcp. Consents
-- stored before did not record their resource, so they are not carried
-- over: each user is asked once more.
DROP TABLE consents;
CREATE TABLE consents (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	redirect_uri TEXT NOT NULL,
	resource TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id, redirect_uri, resource)
);
CREATE INDEX consents_client ON consents (client_id);

-- A rotated refresh token records its successor, so that a client whose
-- rotation answer was lost (a crash between commit and response) can retry
-- and get the same successor (RFC 9700 §4.14.2). successor is sealed by the
-- authorization server under a key derived from the rotated token itself.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
