package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

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
		caller := v.caller(ctx, req)
		if v.user != "" {
			if c, err = c.ForUser(v.user); err != nil {
				return v.g.toolError(hub.Ref{Server: server, Name: authorizeTool}, err, caller.Lang)
			}
		}
		st := c.Status()
		if st.Authorization != hub.AuthNeedsAuthorization || st.OAuthURL == "" {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
				Text: fmt.Sprintf("%s needs no sign-in now; its tools are in the tool list.", server)}}}, nil
		}
		text := fmt.Sprintf("Open this link to sign in to %s: %s\nAfter signing in, the server's tools appear in the tool list.", server, st.OAuthURL)
		d := &downstream{ctx: ctx, ss: req.Session}
		if d.canElicitURL() {
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

// authorizeWait bounds how long a tool call waits for the user to finish an
// authorization it asked for.
const authorizeWait = 5 * time.Minute

// authorizeState is the request state of a call that is waiting for the
// user to authorize an upstream server; authorizeInput is its input request.
const (
	authorizeState = "io.switchboard/authorize"
	authorizeInput = "io.switchboard/authorize"
)

// askToAuthorize handles a call that failed because the user must
// authorize the upstream server: a client that supports URL-mode
// elicitation is asked to open the authorization URL, and once the user
// has authorized (the shared callback completed) the call may be made
// again. It reports whether to retry.
func askToAuthorize(ctx context.Context, c *hub.Conn, caller hub.Caller, ae *hub.AuthorizationError) bool {
	d, ok := caller.Downstream.(*downstream)
	if !ok || d.ss == nil || !d.canElicitURL() || caller.Modern() {
		return false
	}
	res, err := d.Elicit(ctx, &mcp.ElicitParams{
		Mode:          "url",
		Message:       fmt.Sprintf("%s needs you to sign in before Switchboard can use it for you.", ae.Server),
		URL:           ae.URL,
		ElicitationID: rand.Text(),
	})
	if err != nil || res == nil || res.Action != "accept" {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, authorizeWait)
	defer cancel()
	return c.WaitAuthorized(wctx, caller) == nil
}

// authorizeInBand answers a call that failed for want of the user's
// authorization, made by a 2026-07-28 client (which cannot be sent a
// request: its sessions are stateless), with an input-required result that
// asks it to open the sign-in page. The client answers and retries the call,
// and the tool handler then waits for the authorization before calling
// again. It returns nil when the call is not such a case.
func authorizeInBand(caller hub.Caller, ae *hub.AuthorizationError) *mcp.CallToolResult {
	if !caller.PassInput || !caller.Modern() {
		return nil
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{authorizeInput: &mcp.ElicitParams{
			Mode:          "url",
			Message:       fmt.Sprintf("%s needs you to sign in before Switchboard can use it for you.", ae.Server),
			URL:           ae.URL,
			ElicitationID: rand.Text(),
		}},
		RequestState: authorizeState,
	}
}

// awaitInBandAuthorization waits, after the client agreed to open the
// sign-in page, until the user has authorized.
func awaitInBandAuthorization(ctx context.Context, c *hub.Conn, caller hub.Caller, answers mcp.InputResponseMap) error {
	res, _ := answers[authorizeInput].(*mcp.ElicitResult)
	if res == nil || res.Action != "accept" {
		return fmt.Errorf("%s: the sign-in was declined", c.Name())
	}
	wctx, cancel := context.WithTimeout(ctx, authorizeWait)
	defer cancel()
	return c.WaitAuthorized(wctx, caller)
}
