package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Conversations. Every statement names the user, so another user's
// conversation is not there.

const conversationColumns = `user_id, id, title, agent, model, created_at, updated_at`

func (s *Store) scanConversation(r Rows) (*store.Conversation, error) {
	var c store.Conversation
	var title []byte
	var created, updated int64
	if err := r.Scan(&c.UserID, &c.ID, &title, &c.Agent, &c.Model, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if c.Title, err = s.openString(title, "conversations", "title", c.UserID, c.ID); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = tm(created), tm(updated)
	return &c, nil
}

func (s *Store) CreateConversation(ctx context.Context, c *store.Conversation) error {
	if c.ID == "" {
		c.ID = newID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now().UTC()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	title, err := s.sealString(c.Title, "conversations", "title", c.UserID, c.ID)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO conversations (`+conversationColumns+`, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)`,
		c.UserID, c.ID, title, c.Agent, c.Model, ts(c.CreatedAt), ts(c.UpdatedAt))
	return s.insertErr("create conversation", err)
}

func (s *Store) ListConversations(ctx context.Context, userID string) ([]*store.Conversation, error) {
	var cs []*store.Conversation
	err := queryAll(ctx, s.db, func(r Rows) error {
		c, err := s.scanConversation(r)
		cs = append(cs, c)
		return err
	}, `SELECT `+conversationColumns+` FROM conversations WHERE user_id = $1 ORDER BY created_at, id`, userID)
	return cs, err
}

func (s *Store) ConversationByID(ctx context.Context, userID, id string) (*store.Conversation, error) {
	var c *store.Conversation
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		c, err = s.scanConversation(r)
		return err
	}, `SELECT `+conversationColumns+` FROM conversations WHERE user_id = $1 AND id = $2`, userID, id)
	return c, err
}

func (s *Store) RenameConversation(ctx context.Context, userID, id, title string) error {
	sealed, err := s.sealString(title, "conversations", "title", userID, id)
	if err != nil {
		return err
	}
	return changed(s.db.Exec(ctx, `UPDATE conversations SET title = $3 WHERE user_id = $1 AND id = $2`, userID, id, sealed))
}

// DeleteConversation deletes the conversation; its messages go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteConversation(ctx context.Context, userID, id string) error {
	return changed(s.db.Exec(ctx, `DELETE FROM conversations WHERE user_id = $1 AND id = $2`, userID, id))
}

const messageColumns = `conversation_id, seq, id, role, content, run_id, tool_calls, refs, input_tokens, output_tokens, created_at`

// AppendMessages reserves sequence numbers by raising the conversation's
// last_seq in the transaction that inserts the messages: the UPDATE holds
// the conversation's row lock (PostgreSQL) or the database's write lock
// (SQLite) until commit, so concurrent appends, from any replica, take
// turns and never interleave.
func (s *Store) AppendMessages(ctx context.Context, userID, conversationID string, msgs ...*store.Message) error {
	now := s.now().UTC()
	type sealedMessage struct{ content, toolCalls, refs []byte }
	sealed := make([]sealedMessage, len(msgs))
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = newID()
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		var err error
		key := []string{userID, conversationID, m.ID}
		if sealed[i].content, err = s.sealString(m.Text, "messages", "content", key...); err != nil {
			return err
		}
		if sealed[i].toolCalls, err = s.seal(m.ToolCalls, "messages", "tool_calls", key...); err != nil {
			return err
		}
		if sealed[i].refs, err = s.seal(m.References, "messages", "refs", key...); err != nil {
			return err
		}
	}
	var last int64
	err := s.db.Tx(ctx, func(q Querier) error {
		err := queryOne(ctx, q, func(r Rows) error { return r.Scan(&last) },
			`UPDATE conversations SET last_seq = last_seq + $3, updated_at = $4 WHERE user_id = $1 AND id = $2 RETURNING last_seq`,
			userID, conversationID, len(msgs), ts(now))
		if err != nil {
			return err
		}
		first := last - int64(len(msgs)) + 1
		for i, m := range msgs {
			_, err := q.Exec(ctx, `INSERT INTO messages (user_id, `+messageColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				userID, conversationID, first+int64(i), m.ID, m.Role, sealed[i].content, m.RunID, sealed[i].toolCalls, sealed[i].refs,
				m.InputTokens, m.OutputTokens, ts(m.CreatedAt))
			if err != nil {
				return s.insertErr("append message", err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("conversation %w", store.ErrNotFound)
		}
		return err
	}
	first := last - int64(len(msgs)) + 1
	for i, m := range msgs {
		m.ConversationID, m.Seq = conversationID, first+int64(i)
	}
	return nil
}

func (s *Store) scanMessage(userID string, r Rows) (*store.Message, error) {
	var m store.Message
	var content, toolCalls, refs []byte
	var input, output, created int64
	if err := r.Scan(&m.ConversationID, &m.Seq, &m.ID, &m.Role, &content, &m.RunID, &toolCalls, &refs, &input, &output, &created); err != nil {
		return nil, err
	}
	key := []string{userID, m.ConversationID, m.ID}
	var err error
	if m.Text, err = s.openString(content, "messages", "content", key...); err != nil {
		return nil, err
	}
	if m.ToolCalls, err = s.open(toolCalls, "messages", "tool_calls", key...); err != nil {
		return nil, err
	}
	if m.References, err = s.open(refs, "messages", "refs", key...); err != nil {
		return nil, err
	}
	m.InputTokens, m.OutputTokens = int(input), int(output)
	m.CreatedAt = tm(created)
	return &m, nil
}

// messages returns the messages a query selects, after checking that the
// conversation exists, so that an unknown one is ErrNotFound rather than
// empty.
func (s *Store) messages(ctx context.Context, userID, conversationID, query string, args ...any) ([]*store.Message, error) {
	ok, err := exists(ctx, s.db, `SELECT 1 FROM conversations WHERE user_id = $1 AND id = $2`, userID, conversationID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("conversation %w", store.ErrNotFound)
	}
	var ms []*store.Message
	err = queryAll(ctx, s.db, func(r Rows) error {
		m, err := s.scanMessage(userID, r)
		ms = append(ms, m)
		return err
	}, query, append([]any{userID, conversationID}, args...)...)
	return ms, err
}

func (s *Store) Messages(ctx context.Context, userID, conversationID string) ([]*store.Message, error) {
	return s.messages(ctx, userID, conversationID, `SELECT `+messageColumns+` FROM messages
		WHERE user_id = $1 AND conversation_id = $2 ORDER BY seq`)
}

func (s *Store) RecentMessages(ctx context.Context, userID, conversationID string, limit int) ([]*store.Message, error) {
	ms, err := s.messages(ctx, userID, conversationID, `SELECT `+messageColumns+` FROM messages
		WHERE user_id = $1 AND conversation_id = $2 ORDER BY seq DESC LIMIT $3`, max(limit, 0))
	slices.Reverse(ms)
	return ms, err
}

// Agents.

const agentColumns = `user_id, id, definition, created_at, updated_at`

func (s *Store) scanAgent(r Rows) (*store.Agent, error) {
	var a store.Agent
	var def []byte
	var created, updated int64
	if err := r.Scan(&a.UserID, &a.ID, &def, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if a.Definition, err = s.open(def, "agents", "definition", a.UserID, a.ID); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = tm(created), tm(updated)
	return &a, nil
}

// PutAgent creates or replaces an agent; RETURNING tells the CreatedAt of
// the agent it replaced.
func (s *Store) PutAgent(ctx context.Context, a *store.Agent) error {
	if a.ID == "" {
		a.ID = newID()
	}
	a.UpdatedAt = s.now().UTC()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = a.UpdatedAt
	}
	def, err := s.seal(a.Definition, "agents", "definition", a.UserID, a.ID)
	if err != nil {
		return err
	}
	var created int64
	err = s.db.Tx(ctx, func(q Querier) error {
		return queryOne(ctx, q, func(r Rows) error { return r.Scan(&created) },
			`INSERT INTO agents (`+agentColumns+`) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (user_id, id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
			RETURNING created_at`,
			a.UserID, a.ID, def, ts(a.CreatedAt), ts(a.UpdatedAt))
	})
	if err != nil {
		return s.insertErr("put agent", err)
	}
	a.CreatedAt = tm(created)
	return nil
}

func (s *Store) AgentByID(ctx context.Context, userID, id string) (*store.Agent, error) {
	var a *store.Agent
	err := queryOne(ctx, s.db, func(r Rows) (err error) {
		a, err = s.scanAgent(r)
		return err
	}, `SELECT `+agentColumns+` FROM agents WHERE user_id = $1 AND id = $2`, userID, id)
	return a, err
}

func (s *Store) ListAgents(ctx context.Context, userID string) ([]*store.Agent, error) {
	var as []*store.Agent
	err := queryAll(ctx, s.db, func(r Rows) error {
		a, err := s.scanAgent(r)
		as = append(as, a)
		return err
	}, `SELECT `+agentColumns+` FROM agents WHERE user_id = $1 ORDER BY created_at, id`, userID)
	return as, err
}

func (s *Store) DeleteAgent(ctx context.Context, userID, id string) error {
	return changed(s.db.Exec(ctx, `DELETE FROM agents WHERE user_id = $1 AND id = $2`, userID, id))
}
