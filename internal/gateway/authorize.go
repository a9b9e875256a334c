package gateway

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// authorizeTool is the name of the stand-in tool of a server the user has
// yet to authorize; authorizeMeta marks it in its _meta.
const (
	authorizeTool = "authorize"
	authorizeMeta = "io.switchboard/authorize"
)

// authorizeToolFor describes the stand-in tool of server.
func authorizeToolFor(server string) *mcp.Tool {
	return &mcp.Tool{
		Name:  authorizeTool,
		Title: "Sign in to " + server,
		Description: fmt.Sprintf("The %s server needs you to sign in before its tools are available. "+
			"Call this to get the sign-in link (clients that support it open the link directly); after "+
			"signing in, the server's tools appear in the tool list. %s 서버를 쓰려면 먼저 로그인해야 합니다.", server, server),
		InputSchema: map[string]any{"type": "object", "properties": map[string]any{}},
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
		Meta:        mcp.Meta{authorizeMeta: server},
	}
}

// authorizeHandler answers the stand-in tool with the signed-in user's
// sign-in link, asking a client that supports URL-mode elicitation to open
// it.
func (v *view) authorizeHandler(server string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, err := v.conn(server)
		if err != nil {
			return nil, err
		}
		if v.user != "" {
			if c, err = c.ForUser(v.user); err != nil {
				return v.g.toolError(hub.Ref{Server: server, Name: authorizeTool}, err)
			}
		}
		st := c.Status()
		if st.Authorization != hub.AuthNeedsAuthorization || st.OAuthURL == "" {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
				Text: fmt.Sprintf("%s needs no sign-in now; its tools are in the tool list.", server)}}}, nil
		}
		text := fmt.Sprintf("Open this link to sign in to %s: %s\nAfter signing in, the server's tools appear in the tool list.", server, st.OAuthURL)
		d := &downstream{ctx: ctx, ss: req.Session}
		if d.CanElicitURL() {
			res, err := d.Elicit(ctx, &mcp.ElicitParams{Mode: "url", Message: "Sign in to " + server, URL: st.OAuthURL})
			if err == nil && res.Action == "accept" {
				text = fmt.Sprintf("The sign-in page for %s was opened. After signing in, the server's tools appear in the tool list.", server)
			}
		}
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: text}},
			StructuredContent: map[string]any{"server": server, "url": st.OAuthURL},
		}, nil
	}
}
