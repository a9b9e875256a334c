package agent_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/agent"
)

// memory is a test-only Conversations and Agents store. The product
// store lives in internal/store.
type memory struct {
	mu     sync.Mutex
	convs  map[string]*agent.Conversation // id -> conversation
	agents map[string]map[string]agent.Agent
}

var (
	_ agent.Conversations = (*memory)(nil)
	_ agent.Agents        = agentStore{}
)

func newMemory() *memory {
	return &memory{convs: map[string]*agent.Conversation{}, agents: map[string]map[string]agent.Agent{}}
}

func (m *memory) own(user, id string) (*agent.Conversation, error) {
	c, ok := m.convs[id]
	if !ok || c.UserID != user {
		return nil, agent.ErrNotFound
	}
	return c, nil
}

func (m *memory) Create(_ context.Context, user string, c *agent.Conversation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := *c
	cp.UserID = user
	m.convs[c.ID] = &cp
	return nil
}

func (m *memory) List(_ context.Context, user string) ([]agent.Conversation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []agent.Conversation
	for _, c := range m.convs {
		if c.UserID == user {
			cp := *c
			cp.Messages = nil
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b agent.Conversation) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (m *memory) Get(_ context.Context, user, id string) (*agent.Conversation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.own(user, id)
	if err != nil {
		return nil, err
	}
	cp := *c
	cp.Messages = slices.Clone(c.Messages)
	return &cp, nil
}

func (m *memory) Rename(_ context.Context, user, id, title string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.own(user, id)
	if err != nil {
		return err
	}
	c.Title = title
	return nil
}

func (m *memory) Delete(_ context.Context, user, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.own(user, id); err != nil {
		return err
	}
	delete(m.convs, id)
	return nil
}

func (m *memory) Append(_ context.Context, user, id string, msgs ...agent.StoredMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.own(user, id)
	if err != nil {
		return err
	}
	c.Messages = append(c.Messages, msgs...)
	c.Updated = time.Now()
	return nil
}

func (m *memory) Recent(_ context.Context, user, id string, limit int) ([]agent.StoredMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.own(user, id)
	if err != nil {
		return nil, err
	}
	ms := c.Messages
	if len(ms) > limit {
		ms = ms[len(ms)-limit:]
	}
	return slices.Clone(ms), nil
}

// agentStore adapts memory to agent.Agents (its List and Get clash with
// the conversation methods).
type agentStore struct{ m *memory }

func (s agentStore) List(_ context.Context, user string) ([]agent.Agent, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	var out []agent.Agent
	for _, a := range s.m.agents[user] {
		out = append(out, a)
	}
	return out, nil
}

func (s agentStore) Get(_ context.Context, user, id string) (*agent.Agent, error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	a, ok := s.m.agents[user][id]
	if !ok {
		return nil, agent.ErrNotFound
	}
	return &a, nil
}

func (s agentStore) Put(_ context.Context, user string, a *agent.Agent) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.agents[user] == nil {
		s.m.agents[user] = map[string]agent.Agent{}
	}
	s.m.agents[user][a.ID] = *a
	return nil
}

func (s agentStore) Delete(_ context.Context, user, id string) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if _, ok := s.m.agents[user][id]; !ok {
		return agent.ErrNotFound
	}
	delete(s.m.agents[user], id)
	return nil
}
