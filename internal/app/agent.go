package app

import (
	"fmt"
	"log/slog"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// agentStores persist conversations and API-defined agents; nil members
// leave the host without them.
type agentStores struct {
	conversations agent.Conversations
	agents        agent.Agents
}

// newAgentHost builds the agent host from the llm and agents sections.
// visible, if non-nil, limits the servers a user's runs may use.
func newAgentHost(cfg *config.Config, a *App, stores agentStores, visible func(user, server string) bool, logger *slog.Logger) (*agent.Host, error) {
	provs := make(map[string]llm.ProviderConfig, len(cfg.LLM.Providers))
	for _, p := range cfg.LLM.Providers {
		provs[p.Name] = llm.ProviderConfig{
			Type: p.Type, BaseURL: p.BaseURL, APIKey: p.APIKey, Models: p.Models,
			Headers: p.Headers, MaxRetries: p.MaxRetries, RetryDelay: p.RetryDelay,
		}
	}
	reg, err := llm.NewRegistry(provs, cfg.LLM.Default, nil)
	if err != nil {
		return nil, fmt.Errorf("llm: %w", err)
	}
	var agents []agent.Agent
	for _, ca := range cfg.Agents {
		agents = append(agents, agent.Agent{
			ID: ca.Name, Name: ca.Name, Instructions: ca.Instructions, Model: ca.Model,
			Temperature: ca.Temperature, MaxTokens: ca.MaxTokens, Language: ca.Language,
			Servers: ca.Servers, Tools: ca.Tools, Capabilities: ca.Capabilities,
			MaxIterations: ca.MaxIterations, Source: "config",
		})
	}
	tools := agent.NewHubTools(a.hub)
	tools.Visible = visible
	return agent.New(&agent.Options{
		Models: reg, Tools: tools, Agents: agents,
		AgentStore: stores.agents, Conversations: stores.conversations,
		Logger: logger,
	}), nil
}

// agentRoutes are the paths the agent host's handler serves under /api.
var agentRoutes = []string{"/api/chat", "/api/chat/", "/api/agents", "/api/agents/", "/api/conversations", "/api/conversations/"}

// newAgentStores persists the agent host's conversations and agents in s.
func newAgentStores(s store.Store) agentStores {
	return agentStores{conversations: newConversationStore(s), agents: newAgentStore(s)}
}
