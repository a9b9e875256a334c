package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// conversationStore keeps the agent host's conversations in the store.
type conversationStore struct{ s store.Store }

// agentStore keeps the agents users define through the API in the store.
// It is a type of its own because agent.Agents and agent.Conversations
// both have List, Get and Delete.
type agentStore struct{ s store.Store }

var (
	_ agent.Conversations = (*conversationStore)(nil)
	_ agent.Agents        = (*agentStore)(nil)
)

func newConversationStore(s store.Store) *conversationStore { return &conversationStore{s: s} }

func newAgentStore(s store.Store) *agentStore { return &agentStore{s: s} }

// agentErr gives the agent host the not-found error it branches on.
func agentErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return agent.ErrNotFound
	}
	return err
}

func fromStoreConversation(c *store.Conversation) agent.Conversation {
	return agent.Conversation{ID: c.ID, UserID: c.UserID, Title: c.Title, Agent: c.Agent, Model: c.Model, Created: c.CreatedAt, Updated: c.UpdatedAt}
}

func (cs *conversationStore) Create(ctx context.Context, user string, c *agent.Conversation) error {
	sc := &store.Conversation{ID: c.ID, UserID: user, Title: c.Title, Agent: c.Agent, Model: c.Model, CreatedAt: c.Created, UpdatedAt: c.Updated}
	if err := cs.s.CreateConversation(ctx, sc); err != nil {
		return err
	}
	c.ID, c.Created, c.Updated = sc.ID, sc.CreatedAt, sc.UpdatedAt
	return nil
}

func (cs *conversationStore) List(ctx context.Context, user string) ([]agent.Conversation, error) {
	list, err := cs.s.ListConversations(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []agent.Conversation
	for _, c := range list {
		out = append(out, fromStoreConversation(c))
	}
	return out, nil
}

func (cs *conversationStore) Get(ctx context.Context, user, id string) (*agent.Conversation, error) {
	sc, err := cs.s.ConversationByID(ctx, user, id)
	if err != nil {
		return nil, agentErr(err)
	}
	msgs, err := cs.s.Messages(ctx, user, id)
	if err != nil {
		return nil, agentErr(err)
	}
	c := fromStoreConversation(sc)
	if c.Messages, err = fromStoreMessages(msgs); err != nil {
		return nil, fmt.Errorf("conversation %q: %w", id, err)
	}
	return &c, nil
}

func (cs *conversationStore) Rename(ctx context.Context, user, id, title string) error {
	return agentErr(cs.s.RenameConversation(ctx, user, id, title))
}

func (cs *conversationStore) Delete(ctx context.Context, user, id string) error {
	return agentErr(cs.s.DeleteConversation(ctx, user, id))
}

func (cs *conversationStore) Append(ctx context.Context, user, id string, msgs ...agent.StoredMessage) error {
	sms := make([]*store.Message, len(msgs))
	for i, m := range msgs {
		sm := &store.Message{ID: m.ID, Role: string(m.Role), Text: m.Text, RunID: m.RunID,
			InputTokens: m.Usage.Input, OutputTokens: m.Usage.Output, CreatedAt: m.Created}
		var err error
		if len(m.ToolCalls) > 0 {
			if sm.ToolCalls, err = json.Marshal(m.ToolCalls); err != nil {
				return fmt.Errorf("encode tool calls: %w", err)
			}
		}
		if len(m.References) > 0 {
			if sm.References, err = json.Marshal(m.References); err != nil {
				return fmt.Errorf("encode references: %w", err)
			}
		}
		sms[i] = sm
	}
	return agentErr(cs.s.AppendMessages(ctx, user, id, sms...))
}

func (cs *conversationStore) Recent(ctx context.Context, user, id string, limit int) ([]agent.StoredMessage, error) {
	msgs, err := cs.s.RecentMessages(ctx, user, id, limit)
	if err != nil {
		return nil, agentErr(err)
	}
	out, err := fromStoreMessages(msgs)
	if err != nil {
		return nil, fmt.Errorf("conversation %q: %w", id, err)
	}
	return out, nil
}

func fromStoreMessages(msgs []*store.Message) ([]agent.StoredMessage, error) {
	var out []agent.StoredMessage
	for _, sm := range msgs {
		m := agent.StoredMessage{ID: sm.ID, Role: llm.Role(sm.Role), Text: sm.Text, RunID: sm.RunID,
			Usage: llm.Usage{Input: sm.InputTokens, Output: sm.OutputTokens}, Created: sm.CreatedAt}
		if len(sm.ToolCalls) > 0 {
			if err := json.Unmarshal(sm.ToolCalls, &m.ToolCalls); err != nil {
				return nil, fmt.Errorf("message %q: decode tool calls: %w", sm.ID, err)
			}
		}
		if len(sm.References) > 0 {
			if err := json.Unmarshal(sm.References, &m.References); err != nil {
				return nil, fmt.Errorf("message %q: decode references: %w", sm.ID, err)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func (as *agentStore) List(ctx context.Context, user string) ([]agent.Agent, error) {
	list, err := as.s.ListAgents(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []agent.Agent
	for _, sa := range list {
		a, err := fromStoreAgent(sa)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, nil
}

func (as *agentStore) Get(ctx context.Context, user, id string) (*agent.Agent, error) {
	sa, err := as.s.AgentByID(ctx, user, id)
	if err != nil {
		return nil, agentErr(err)
	}
	return fromStoreAgent(sa)
}

func (as *agentStore) Put(ctx context.Context, user string, a *agent.Agent) error {
	def, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode agent %q: %w", a.ID, err)
	}
	sa := &store.Agent{ID: a.ID, UserID: user, Definition: def}
	if err := as.s.PutAgent(ctx, sa); err != nil {
		return err
	}
	a.ID = sa.ID
	return nil
}

func (as *agentStore) Delete(ctx context.Context, user, id string) error {
	return agentErr(as.s.DeleteAgent(ctx, user, id))
}

// fromStoreAgent decodes a definition; the row's id wins over the one in
// the JSON, which Put may have left empty for the store to assign.
func fromStoreAgent(sa *store.Agent) (*agent.Agent, error) {
	var a agent.Agent
	if err := json.Unmarshal(sa.Definition, &a); err != nil {
		return nil, fmt.Errorf("agent %q: decode definition: %w", sa.ID, err)
	}
	a.ID = sa.ID
	return &a, nil
}
