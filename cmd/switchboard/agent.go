package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
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
func newAgentHost(cfg *config.Config, a *app, stores agentStores, visible func(user, server string) bool, logger *slog.Logger) (*agent.Host, error) {
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

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

// cmdChat is `switchboard chat`: an interactive (or, with -p, one-shot)
// chat with an agent, in this process or against a running Switchboard.
func cmdChat(ctx context.Context, args []string, e *env) error {
	fs := newFlags("chat", e)
	cfgPath := fs.String("config", "", "config file (local mode)")
	agentName := fs.String("agent", "", "agent to chat with")
	model := fs.String("model", "", "model as provider/model (default: llm.default)")
	var servers stringList
	fs.Var(&servers, "server", "server whose tools the chat may use (repeatable; default: all in the chat menu)")
	prompt := fs.String("p", "", "ask one question, print the answer and exit")
	asJSON := fs.Bool("json", false, "print the run's events as JSON lines")
	remote := fs.String("url", "", "base URL of a running Switchboard to chat through (default: run locally)")
	token := fs.String("token", "", "bearer token or personal API key for --url (default: $SWITCHBOARD_TOKEN)")
	lang := fs.String("lang", "ko", "language of labels and answers: ko or en")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := agent.ChatOptions{
		Agent: *agentName, Model: *model, Servers: servers, Prompt: *prompt, JSON: *asJSON, Language: *lang,
	}
	if *remote != "" {
		opts.Remote = strings.TrimRight(*remote, "/")
		opts.Token = *token
		if opts.Token == "" {
			opts.Token, _ = e.lookupEnv("SWITCHBOARD_TOKEN")
		}
		opts.HTTPClient = http.DefaultClient
	} else {
		a, err := localApp(ctx, *cfgPath, e)
		if err != nil {
			return err
		}
		defer a.close()
		if len(a.cfg.LLM.Providers) == 0 {
			return errors.New("no model configured: add an llm section to the config (see README), or use --url to chat through a running Switchboard")
		}
		host, err := newAgentHost(a.cfg, a, agentStores{}, nil, newLogger(e.stderr, slog.LevelWarn))
		if err != nil {
			return err
		}
		defer host.Close()
		opts.Host = host
	}
	// Ctrl-C cancels the current run (main leaves SIGINT to this command).
	if opts.Prompt == "" && e.stdin == os.Stdin {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		defer signal.Stop(sig)
		intr := make(chan struct{}, 1)
		opts.Interrupt = intr
		go func() {
			for range sig {
				select {
				case intr <- struct{}{}:
				default:
				}
			}
		}()
	}
	return agent.Chat(ctx, e.stdin, e.stdout, opts)
}

// visibleFor applies the config's access rules to a user's agent runs.
func visibleFor(cfg *config.Config, s store.Store) func(user, server string) bool {
	return func(user, server string) bool {
		if server == hub.BuiltinName {
			return true
		}
		u, err := s.UserByID(context.Background(), user)
		if err != nil {
			return false
		}
		return cfg.Access.Allows(server, string(u.Role), u.Username, u.Email)
	}
}

// newAgentStores persists the agent host's conversations and agents in s.
func newAgentStores(s store.Store) agentStores {
	return agentStores{conversations: newConversationStore(s), agents: newAgentStore(s)}
}
