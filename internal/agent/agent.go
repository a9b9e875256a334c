// Package agent owns Switchboard's agent host: agents, the tool loop that
// streams a model's answer and runs its tool calls through the hub as the
// signed-in user, the run events (Server-Sent-Events ready, resumable),
// one-line tool summaries in Korean and English, citations extracted from
// tool results, the conversation interfaces, the /api/chat, /api/agents and
// /api/conversations handlers, and the terminal chat.
//
// It imports llm and hub; cmd/switchboard and web import it.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// Languages of summaries, errors and the terminal chat.
const (
	Korean  = "ko"
	English = "en"
)

// Agent is a configured or API-defined agent.
type Agent struct {
	ID           string   `json:"id"` // config agents: their name
	Name         string   `json:"name"`
	Instructions string   `json:"instructions,omitempty"`
	Model        string   `json:"model,omitempty"` // "provider/model"; empty: the default model
	Temperature  *float64 `json:"temperature,omitempty"`
	MaxTokens    int      `json:"maxTokens,omitempty"`
	Language     string   `json:"language,omitempty"` // ko or en; empty: the host's default
	// Servers the agent may use, including those with chatMenu: false.
	Servers []string `json:"servers,omitempty"`
	// Tools is a per-server allow-list of tool names; a server missing
	// here offers all its tools.
	Tools map[string][]string `json:"tools,omitempty"`
	// Capabilities switches named groups of tools (Options.Capabilities)
	// on or off; off removes the tools. Missing: on.
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	// MaxIterations bounds the model calls of one run. 0: the host's.
	MaxIterations int `json:"maxIterations,omitempty"`
	// Source is "config" (read-only through the API) or "api".
	Source string `json:"source"`
}

// DefaultCapabilities groups built-in tools under switches a chat or agent
// can turn off: webSearch removes web_search and web_read of the built-in
// server, not just a sentence in the prompt.
var DefaultCapabilities = map[string][]string{
	"webSearch": {hub.BuiltinName + "/web_search", hub.BuiltinName + "/web_read"},
	"calendar":  {hub.BuiltinName + "/create_calendar_schedule"},
}

// Models resolves "provider/model" references; *llm.Registry implements it.
type Models interface {
	Resolve(ref string) (llm.Provider, string, error)
}

// Options configure a Host. Models and Tools are required.
type Options struct {
	Models Models
	Tools  ToolCaller
	// Agents are the agents from the config file. Nil: none.
	Agents []Agent
	// AgentStore keeps API-defined agents. Nil: the agents API is read-only.
	AgentStore Agents
	// Conversations keeps chats. Nil: runs are not stored and
	// ChatRequest.History carries the conversation.
	Conversations Conversations
	// MaxIterations bounds model calls per run. 0: 10.
	MaxIterations int
	// ToolTimeout bounds each tool call. 0: 2 minutes.
	ToolTimeout time.Duration
	// History is how many earlier messages are sent to the model. 0: 20.
	History int
	// Language is the default language. Empty: Korean.
	Language string
	// Capabilities maps capability names to "server/tool" lists. Nil:
	// DefaultCapabilities.
	Capabilities map[string][]string
	// Retention is how long a finished run's events stay available for
	// resuming. 0: 5 minutes.
	Retention time.Duration
	// DetachGrace is how long a run keeps going with no client attached
	// (waiting for a reconnect with Last-Event-ID) before it is cancelled.
	// 0: 30 seconds.
	DetachGrace time.Duration
	// Logger receives the host's logs. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Host runs agents.
type Host struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	ctx    context.Context // parent of every run; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards the fields below
	runs map[string]*Run
}

// New returns a Host.
func New(opts *Options) *Host {
	h := &Host{opts: *opts, runs: make(map[string]*Run)}
	if opts.Models == nil || opts.Tools == nil {
		panic("agent.New: Models and Tools are required")
	}
	if h.opts.MaxIterations <= 0 {
		h.opts.MaxIterations = 10
	}
	if h.opts.ToolTimeout <= 0 {
		h.opts.ToolTimeout = 2 * time.Minute
	}
	if h.opts.History <= 0 {
		h.opts.History = 20
	}
	if h.opts.Language == "" {
		h.opts.Language = Korean
	}
	if h.opts.Capabilities == nil {
		h.opts.Capabilities = DefaultCapabilities
	}
	if h.opts.Retention <= 0 {
		h.opts.Retention = 5 * time.Minute
	}
	if h.opts.DetachGrace <= 0 {
		h.opts.DetachGrace = 30 * time.Second
	}
	h.log = h.opts.Logger
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.now = h.opts.Now
	if h.now == nil {
		h.now = time.Now
	}
	for i := range h.opts.Agents {
		a := &h.opts.Agents[i]
		if a.ID == "" {
			a.ID = a.Name
		}
		a.Source = "config"
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Close cancels every run and waits for them to end.
func (h *Host) Close() error {
	h.cancel()
	h.wg.Wait()
	return nil
}

// ChatRequest starts a run.
type ChatRequest struct {
	// ConversationID continues a stored conversation; empty starts one
	// (when the host stores conversations).
	ConversationID string `json:"conversationId,omitempty"`
	Message        string `json:"message"`
	// Agent is an agent id; empty: chat-menu mode.
	Agent string `json:"agent,omitempty"`
	// Model overrides the agent's model ("provider/model").
	Model string `json:"model,omitempty"`
	// Servers picks servers in chat-menu mode; servers with chatMenu:
	// false are refused. With an agent, it narrows the agent's servers.
	Servers []string `json:"servers,omitempty"`
	// Capabilities turns capabilities off (false) for this run.
	Capabilities map[string]bool `json:"capabilities,omitempty"`
	// Language overrides the agent's language.
	Language string `json:"language,omitempty"`
	// History is the conversation so far when the host stores none
	// (the terminal chat keeps it itself).
	History []llm.Message `json:"-"`
}

// Errors of Start, shown to the user.
var (
	ErrEmptyMessage  = errors.New("message is empty")
	ErrServerRefused = errors.New("server is not available in chat")
)

// agent returns the agent a request names, checking user's access.
func (h *Host) agent(ctx context.Context, user, id string) (*Agent, error) {
	for i := range h.opts.Agents {
		if h.opts.Agents[i].ID == id {
			a := h.opts.Agents[i]
			return &a, nil
		}
	}
	if h.opts.AgentStore != nil {
		a, err := h.opts.AgentStore.Get(ctx, user, id)
		if err == nil {
			a.Source = "api"
			return a, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("agent %q: %w", id, ErrNotFound)
}

// plan is what a run needs, worked out before it starts.
type plan struct {
	agent    Agent
	provider llm.Provider
	model    string // the reference, "provider/model"
	modelID  string // the name sent to the API
	lang     string
	system   string
	tools    []toolEntry
	maxIter  int
}

type toolEntry struct {
	info  ToolInfo
	name  string // the name the model sees
	empty bool   // the schema declares no properties
}

func (h *Host) plan(ctx context.Context, user string, req *ChatRequest) (*plan, error) {
	p := &plan{}
	if req.Agent != "" {
		a, err := h.agent(ctx, user, req.Agent)
		if err != nil {
			return nil, err
		}
		p.agent = *a
	}
	servers, err := h.opts.Tools.Servers(ctx, user)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]ServerInfo, len(servers))
	for _, s := range servers {
		byName[s.Name] = s
	}
	var selected []string
	if req.Agent != "" {
		selected = p.agent.Servers
		if len(req.Servers) > 0 {
			selected = slices.DeleteFunc(slices.Clone(selected), func(s string) bool { return !slices.Contains(req.Servers, s) })
		}
	} else {
		for _, s := range req.Servers {
			si, ok := byName[s]
			if !ok || !si.ChatMenu {
				return nil, fmt.Errorf("%w: %q", ErrServerRefused, s)
			}
		}
		selected = req.Servers
		if selected == nil {
			// Chat-menu mode without a choice: every chat-menu server.
			for _, s := range servers {
				if s.ChatMenu {
					selected = append(selected, s.Name)
				}
			}
		}
	}
	selected = slices.DeleteFunc(slices.Clone(selected), func(s string) bool { _, ok := byName[s]; return !ok })

	p.model = p.agent.Model
	if req.Model != "" {
		p.model = req.Model
	}
	p.provider, p.modelID, err = h.opts.Models.Resolve(p.model)
	if err != nil {
		return nil, err
	}
	p.lang = firstNonEmpty(req.Language, p.agent.Language, h.opts.Language)
	if p.lang != English {
		p.lang = Korean
	}
	p.maxIter = p.agent.MaxIterations
	if p.maxIter <= 0 {
		p.maxIter = h.opts.MaxIterations
	}

	infos, err := h.opts.Tools.Tools(ctx, user, selected)
	if err != nil {
		return nil, err
	}
	off := map[string]bool{}
	for capName, tools := range h.opts.Capabilities {
		on := true
		if v, ok := p.agent.Capabilities[capName]; ok && !v {
			on = false
		}
		if v, ok := req.Capabilities[capName]; ok && !v {
			on = false
		}
		if !on {
			for _, t := range tools {
				off[t] = true
			}
		}
	}
	var refs []hub.Ref
	for _, ti := range infos {
		if allow, ok := p.agent.Tools[ti.Server]; ok && !slices.Contains(allow, ti.Name) {
			continue
		}
		if off[ti.Server+"/"+ti.Name] {
			continue
		}
		refs = append(refs, hub.Ref{Server: ti.Server, Name: ti.Name})
		props, _ := ti.Schema["properties"].(map[string]any)
		p.tools = append(p.tools, toolEntry{info: ti, empty: len(props) == 0})
	}
	names := hub.NewNames(refs)
	for i := range p.tools {
		p.tools[i].name, _ = names.Name(hub.Ref{Server: p.tools[i].info.Server, Name: p.tools[i].info.Name})
	}
	var instr []serverInstructions
	for _, s := range selected {
		if t := strings.TrimSpace(byName[s].Instructions); t != "" {
			instr = append(instr, serverInstructions{server: s, text: t})
		}
	}
	p.system = systemPrompt(p.agent.Instructions, p.lang, instr)
	return p, nil
}

type serverInstructions struct{ server, text string }

// systemPrompt builds the system prompt: the agent's instructions, a
// language line, and the selected servers' serverInstructions in
// LibreChat's format.
func systemPrompt(instructions, lang string, servers []serverInstructions) string {
	var parts []string
	if s := strings.TrimSpace(instructions); s != "" {
		parts = append(parts, s)
	}
	if lang == Korean {
		parts = append(parts, "사용자가 다른 언어로 묻지 않는 한 한국어로 답하세요.")
	} else {
		parts = append(parts, "Answer in English unless the user writes in another language.")
	}
	if len(servers) > 0 {
		var b strings.Builder
		b.WriteString("# MCP Server Instructions\n\nThe following MCP servers are available with their specific instructions:\n\n")
		for i, s := range servers {
			if i > 0 {
				b.WriteString("\n\n")
			}
			fmt.Fprintf(&b, "## %s MCP Server Instructions\n\n%s", s.server, s.text)
		}
		b.WriteString("\n\nPlease follow these instructions when using tools from the respective MCP servers.")
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "\n\n")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
