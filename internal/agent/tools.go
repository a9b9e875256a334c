package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// ToolInfo describes one tool of one server.
type ToolInfo struct {
	Server      string
	Name        string // the server's own name for the tool
	Title       string
	Description string
	Schema      map[string]any // the tool's input schema
}

// ServerInfo describes one server for agents and the chat menu.
type ServerInfo struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	// ChatMenu is false for servers only agents may use (LibreChat's
	// chatMenu: false).
	ChatMenu bool `json:"chatMenu"`
	// Instructions is the server's serverInstructions text to append to
	// the system prompt; empty when not enabled.
	Instructions string `json:"-"`
}

// ToolCaller lists and calls tools on behalf of a user. Calls carry the
// run's hub.Downstream in their context (hub.WithDownstream), so that
// sampling, elicitation and progress of a call reach that run only.
type ToolCaller interface {
	Servers(ctx context.Context, user string) ([]ServerInfo, error)
	Tools(ctx context.Context, user string, servers []string) ([]ToolInfo, error)
	Call(ctx context.Context, user, server, tool string, args json.RawMessage) (*mcp.CallToolResult, error)
}

// HubTools is a ToolCaller over a hub.
//
// The hub has one connection per server today, shared by every user;
// Visible restricts which servers a user sees. When the hub gains per-user
// connections, user selects the connection here and nowhere else.
type HubTools struct {
	h *hub.Hub
	// Visible reports whether user may use server. Nil: every server.
	Visible func(user, server string) bool
}

var _ ToolCaller = (*HubTools)(nil)

// NewHubTools returns a ToolCaller over h.
func NewHubTools(h *hub.Hub) *HubTools { return &HubTools{h: h} }

func (t *HubTools) visible(user, server string) bool {
	return t.Visible == nil || t.Visible(user, server)
}

// Servers lists the servers user may use, the built-in one first.
func (t *HubTools) Servers(ctx context.Context, user string) ([]ServerInfo, error) {
	var out []ServerInfo
	for _, c := range t.h.Conns() {
		if !t.visible(user, c.Name()) {
			continue
		}
		si := ServerInfo{Name: c.Name(), ChatMenu: true}
		cat := c.Catalog()
		own := ""
		if cat != nil && cat.Init != nil {
			own = cat.Init.Instructions
		}
		if cfg := c.Config(); cfg != nil {
			si.Title = cfg.Title
			si.ChatMenu = cfg.ChatMenu
			if cfg.ServerInstructions.Enabled {
				si.Instructions = cfg.ServerInstructions.Text
				if si.Instructions == "" {
					si.Instructions = own
				}
			}
		} else {
			// The built-in server's instructions are Switchboard's own.
			si.Instructions = own
		}
		out = append(out, si)
	}
	return out, nil
}

// Tools lists the tools of servers, connecting to a server that has not
// connected yet. A server that cannot be reached contributes no tools.
func (t *HubTools) Tools(ctx context.Context, user string, servers []string) ([]ToolInfo, error) {
	var out []ToolInfo
	for _, name := range servers {
		if !t.visible(user, name) {
			continue
		}
		c, err := t.h.Conn(name)
		if err != nil {
			return nil, err
		}
		cat := c.Catalog()
		if cat == nil {
			if _, err := c.Session(ctx); err != nil {
				continue
			}
			cat = c.Catalog()
		}
		if cat == nil {
			continue
		}
		for _, tool := range cat.Tools {
			out = append(out, ToolInfo{Server: name, Name: tool.Name, Title: tool.Title, Description: tool.Description, Schema: schemaMap(tool.InputSchema)})
		}
	}
	return out, nil
}

// Call calls a tool as user.
func (t *HubTools) Call(ctx context.Context, user, server, tool string, args json.RawMessage) (*mcp.CallToolResult, error) {
	if !t.visible(user, server) {
		return nil, fmt.Errorf("%w %q", hub.ErrUnknown, server)
	}
	c, err := t.h.Conn(server)
	if err != nil {
		return nil, err
	}
	// The tools act for the user: built-in tools learn who calls (their
	// calendar, their tokens) from the hub.
	return c.CallTool(hub.WithUser(ctx, user), &mcp.CallToolParams{Name: tool, Arguments: args})
}

func schemaMap(s any) map[string]any {
	switch v := s.(type) {
	case nil:
		return nil
	case map[string]any:
		return v
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}
