package tools

import (
	"context"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves the built-in tools alone over stdin/stdout until ctx is
// done or the client disconnects ("switchboard serve-tools"). Without the
// hub there is no signed-in user, so tools that act for a user answer that
// sign-in is needed unless opts supplies one through its hooks.
func ServeStdio(ctx context.Context, opts *Options) error {
	return NewServer(opts).Run(ctx, &mcp.StdioTransport{})
}

// NewHandler serves the built-in tools alone over MCP's streamable HTTP
// transport ("switchboard serve-tools --http"). HTTP-API tools with auth
// mode "forward" forward the Authorization header of each request. The
// caller adds authentication, Origin checks and body limits in front.
func NewHandler(opts *Options) http.Handler {
	s := NewServer(opts)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}
