package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
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

// ToolCaller lists and calls tools on behalf of a user. A call's caller
// carries the run's hub.Downstream, so that sampling, elicitation and
// progress of a call reach that run only.
type ToolCaller interface {
	Servers(ctx context.Context, user string) ([]ServerInfo, error)
	Tools(ctx context.Context, user string, servers []string) ([]ToolInfo, error)
	Call(ctx context.Context, caller hub.Caller, server, tool string, args json.RawMessage) (*mcp.CallToolResult, error)
}

// HubTools is a ToolCaller over a hub: each user's tools come from the
// user's own bindings of per-user servers and from the shared bindings of
// the others.
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

// Servers lists the servers user may use, the built-in one first, with
// their serverInstructions as user's bindings have them. A per-user
// server is listed only for a signed-in user.
func (t *HubTools) Servers(ctx context.Context, user string) ([]ServerInfo, error) {
	var out []ServerInfo
	for _, c := range t.h.Conns() {
		if !t.visible(user, c.Name()) || (c.UserScoped() && user == "") {
			continue
		}
		si := ServerInfo{Name: c.Name(), ChatMenu: true, Instructions: c.Instructions(user)}
		if cfg := c.Config(); cfg != nil {
			si.Title = cfg.Title
			si.ChatMenu = cfg.ChatMenu
		}
		out = append(out, si)
	}
	return out, nil
}

// Tools lists the tools of servers from user's bindings, connecting a
// binding that has not connected yet. A binding that is down contributes
// the tools it last listed (a call then says the server is unavailable);
// one that never connected contributes none.
func (t *HubTools) Tools(ctx context.Context, user string, servers []string) ([]ToolInfo, error) {
	var out []ToolInfo
	for _, name := range servers {
		if !t.visible(user, name) {
			continue
		}
		if _, err := t.h.Conn(name); err != nil {
			return nil, err
		}
		b, err := t.h.Binding(name, user)
		if err != nil {
			continue // a per-user server and no user
		}
		cat := b.Catalog()
		if cat == nil {
			if _, err := b.Session(ctx); err != nil {
				continue
			}
			cat = b.Catalog()
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

// Call calls a tool as caller.User. When the user must first authorize
// the upstream server, the run is told (through its Downstream, as a
// URL-mode elicitation it shows as auth.required), and the call waits,
// bounded by ctx, for the authorization before it is made again.
func (t *HubTools) Call(ctx context.Context, caller hub.Caller, server, tool string, args json.RawMessage) (*mcp.CallToolResult, error) {
	if !t.visible(caller.User, server) {
		return nil, fmt.Errorf("%w %q", hub.ErrUnknown, server)
	}
	c, err := t.h.Conn(server)
	if err != nil {
		return nil, err
	}
	p := &mcp.CallToolParams{Name: tool, Arguments: args}
	res, err := c.CallTool(ctx, caller, p)
	var ae *hub.AuthorizationError
	if errors.As(err, &ae) && caller.Downstream != nil {
		er, eerr := caller.Downstream.Elicit(ctx, &mcp.ElicitParams{Mode: "url", Message: hub.Message(ae, caller.Lang), URL: ae.URL, ElicitationID: rand.Text()})
		if eerr == nil && er != nil && er.Action == "accept" && c.WaitAuthorized(ctx, caller) == nil {
			return c.CallTool(ctx, caller, p)
		}
	}
	return res, err
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
