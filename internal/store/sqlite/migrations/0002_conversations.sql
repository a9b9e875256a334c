-- The agent host's conversations and API-defined agents. User ids are
-- whatever the host is given (they need not be users rows), so there is
-- no foreign key to users; every query names the user.

CREATE TABLE conversations (
	user_id TEXT NOT NULL,
	id TEXT NOT NULL,
	title BLOB,
	agent TEXT NOT NULL,
	model TEXT NOT NULL,
	last_seq INTEGER NOT NULL, -- seq of the newest message: appends number theirs after it
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
);

CREATE TABLE messages (
	user_id TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	id TEXT NOT NULL,
	role TEXT NOT NULL,
	content BLOB,
	run_id TEXT NOT NULL,
	tool_calls BLOB,
	refs BLOB,
	input_tokens INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, conversation_id, seq),
	UNIQUE (user_id, conversation_id, id),
	FOREIGN KEY (user_id, conversation_id) REFERENCES conversations (user_id, id) ON DELETE CASCADE
);

CREATE TABLE agents (
	user_id TEXT NOT NULL,
	id TEXT NOT NULL,
	definition BLOB,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
);
