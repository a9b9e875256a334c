package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

// catalog is a ToolCaller with fixed servers, for tool selection tests.
type catalog struct{}

func (catalog) Servers(context.Context, string) ([]agent.ServerInfo, error) {
	return []agent.ServerInfo{
		{Name: "switchboard", ChatMenu: true},
		{Name: "github", ChatMenu: true, Instructions: "Prefer search_code."},
		{Name: "hr", ChatMenu: false, Instructions: "Only for the HR agent."},
	}, nil
}

func (catalog) Tools(_ context.Context, _ string, servers []string) ([]agent.ToolInfo, error) {
	all := map[string][]string{"switchboard": {"web_search", "web_read", "get_current_time"}, "github": {"search_code", "create_issue"}, "hr": {"salary"}}
	var out []agent.ToolInfo
	for _, s := range servers {
		for _, n := range all[s] {
			out = append(out, agent.ToolInfo{Server: s, Name: n, Schema: map[string]any{"type": "object"}})
		}
	}
	return out, nil
}

func (catalog) Call(context.Context, hub.Caller, string, string, json.RawMessage) (*mcp.CallToolResult, error) {
	return &mcp.CallToolResult{}, nil
}

func TestToolSelection(t *testing.T) {
	model := llmtest.NewOpenAI()
	defer model.Close()
	reg, _ := llm.NewRegistry(map[string]llm.ProviderConfig{"fake": {Type: "openai", BaseURL: model.URL}}, "fake/m", nil)
	h := agent.New(&agent.Options{Models: reg, Tools: catalog{}, Agents: []agent.Agent{
		{Name: "hr-bot", Servers: []string{"hr", "github"}, Tools: map[string][]string{"github": {"search_code"}}, Language: "en"},
		{Name: "no-web", Servers: []string{"switchboard"}, Capabilities: map[string]bool{"webSearch": false}},
	}})
	defer h.Close()

	for _, tc := range []struct {
		name      string
		req       agent.ChatRequest
		tools     []string
		system    []string // substrings of the system prompt
		notSystem []string
		err       error
	}{
		{name: "chat menu default", req: agent.ChatRequest{},
			tools:     []string{"switchboard__web_search", "switchboard__web_read", "switchboard__get_current_time", "github__search_code", "github__create_issue"},
			system:    []string{"한국어로 답하세요", "# MCP Server Instructions\n\nThe following MCP servers are available with their specific instructions:\n\n## github MCP Server Instructions\n\nPrefer search_code.\n\nPlease follow these instructions when using tools from the respective MCP servers."},
			notSystem: []string{"HR agent"}},
		{name: "chat menu pick", req: agent.ChatRequest{Servers: []string{"github"}}, tools: []string{"github__search_code", "github__create_issue"}},
		{name: "chatMenu false refused", req: agent.ChatRequest{Servers: []string{"hr"}}, err: agent.ErrServerRefused},
		{name: "web search off", req: agent.ChatRequest{Servers: []string{"switchboard"}, Capabilities: map[string]bool{"webSearch": false}},
			tools: []string{"switchboard__get_current_time"}, notSystem: []string{"web"}},
		{name: "agent with allow-list", req: agent.ChatRequest{Agent: "hr-bot"}, tools: []string{"hr__salary", "github__search_code"},
			system: []string{"Answer in English", "## hr MCP Server Instructions\n\nOnly for the HR agent.", "## github MCP Server Instructions"}},
		{name: "agent capability off", req: agent.ChatRequest{Agent: "no-web"}, tools: []string{"switchboard__get_current_time"}},
		{name: "unknown agent", req: agent.ChatRequest{Agent: "ghost"}, err: agent.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Message = "hi"
			n := len(model.Requests())
			if tc.err == nil {
				model.Push(llmtest.Turn{Text: []string{"ok"}})
			}
			r, err := h.Start(t.Context(), "alice", tc.req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			<-r.Done()
			req := model.Requests()[n]
			if d := cmp.Diff(tc.tools, req.ToolNames()); d != "" {
				t.Errorf("tools (-want +got):\n%s", d)
			}
			msgs := req.Body["messages"].([]any)
			sys := msgs[0].(map[string]any)["content"].(string)
			for _, s := range tc.system {
				if !strings.Contains(sys, s) {
					t.Errorf("system prompt lacks %q:\n%s", s, sys)
				}
			}
			for _, s := range tc.notSystem {
				if strings.Contains(sys, s) && !slices.Contains(tc.system, s) {
					t.Errorf("system prompt has %q:\n%s", s, sys)
				}
			}
		})
	}
}
