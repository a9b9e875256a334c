-- The agent host's conversations and API-defined agents. User ids are
-- whatever the host is given (they need not be users rows), so there is
-- no foreign key to users; every query names the user.

CREATE TABLE conversations (
	user_id TEXT NOT NULL,
	id TEXT NOT NULL,
	title BYTEA,
	agent TEXT NOT NULL,
	model TEXT NOT NULL,
	last_seq BIGINT NOT NULL, -- seq of the newest message: appends number theirs after it
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id)
);

CREATE TABLE messages (
	user_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	seq BIGINT NOT NULL,
	id TEXT NOT NULL,
	role TEXT NOT NULL,
	content BYTEA,
	run_id TEXT NOT NULL,
	tool_calls BYTEA,
	refs BYTEA,
	input_tokens BIGINT NOT NULL,
	output_tokens BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, conversation_id, seq),
	UNIQUE (user_id, conversation_id, id),
	FOREIGN KEY (user_id, conversation_id) REFERENCES conversations (user_id, id) ON DELETE CASCADE
);

CREATE TABLE agents (
	user_id TEXT NOT NULL,
	id TEXT NOT NULL,
	definition BYTEA,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id)
);
