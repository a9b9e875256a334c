package agent

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// ErrNotFound is returned for a conversation, agent or run that does not
// exist or belongs to another user.
var ErrNotFound = errors.New("not found")

// Conversation is one chat of one user.
type Conversation struct {
	ID      string    `json:"id"`
	UserID  string    `json:"-"`
	Title   string    `json:"title"`
	Agent   string    `json:"agent,omitempty"`
	Model   string    `json:"model,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Messages is filled by Get only.
	Messages []StoredMessage `json:"messages,omitempty"`
}

// StoredMessage is one message of a conversation.
type StoredMessage struct {
	ID         string           `json:"id"`
	Role       llm.Role         `json:"role"` // user or assistant
	Text       string           `json:"text"`
	RunID      string           `json:"runId,omitempty"`
	ToolCalls  []ToolCallRecord `json:"toolCalls,omitempty"`
	References []Reference      `json:"references,omitempty"`
	Usage      llm.Usage        `json:"usage,omitzero"`
	Created    time.Time        `json:"created"`
}

// ToolCallRecord is a tool call made while answering, with its summary.
type ToolCallRecord struct {
	ID         string          `json:"id"`
	Server     string          `json:"server"`
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments"`
	Summary    string          `json:"summary"`
	IsError    bool            `json:"isError"`
	DurationMS int64           `json:"durationMs"`
}

// Conversations stores conversations per user. Every method acts only on
// user's own conversations: another user's id is ErrNotFound. The store
// package implements it on SQLite and PostgreSQL.
type Conversations interface {
	Create(ctx context.Context, user string, c *Conversation) error
	List(ctx context.Context, user string) ([]Conversation, error)
	// Get returns the conversation with all its messages.
	Get(ctx context.Context, user, id string) (*Conversation, error)
	Rename(ctx context.Context, user, id, title string) error
	Delete(ctx context.Context, user, id string) error
	// Append adds messages and updates the conversation's Updated time.
	Append(ctx context.Context, user, id string, msgs ...StoredMessage) error
	// Recent returns the last limit messages, oldest first.
	Recent(ctx context.Context, user, id string, limit int) ([]StoredMessage, error)
}

// Agents stores agents defined through the API, per user.
type Agents interface {
	List(ctx context.Context, user string) ([]Agent, error)
	Get(ctx context.Context, user, id string) (*Agent, error)
	Put(ctx context.Context, user string, a *Agent) error // creates or replaces
	Delete(ctx context.Context, user, id string) error
}
