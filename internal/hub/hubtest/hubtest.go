// Package hubtest provides real upstream MCP servers for tests: a stdio
// server binary that records each of its processes (so a test can count the
// live children of a process and kill one), a streamable-HTTP server that
// can be killed and restarted on the same port (with or without a
// standalone GET stream, forgetting the sessions of its previous life as a
// restarted server does), and an OAuth-protected HTTP server with its own
// small authorization server. All of them are built on the official MCP SDK
// and offer the same tools, whose results name the calling user's value, so
// that a test can tell whose connection answered.
//
// Only tests import it.
package hubtest

import (
	"context"
	"os"
	"slices"
	"strconv"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tools every test upstream offers.
const (
	// ToolWhoami returns the caller's value as its only text: the -value
	// argument of a stdio server (a user's placeholder, once expanded), the
	// value header of an HTTP server, the user an OAuth server issued the
	// access token to.
	ToolWhoami = "whoami"
	// ToolEcho returns its "text" argument.
	ToolEcho = "echo"
	// ToolPID returns the process id of the server (stdio servers only).
	ToolPID = "pid"
)

// ServerOptions describe the MCP server behind a test upstream.
type ServerOptions struct {
	// Name is the server's name; its implementation name is "hubtest-"+Name.
	Name string
	// Instructions are returned by initialize. Empty: none.
	Instructions string
	// ProtocolVersions, if non-empty, restricts the protocol revisions the
	// server negotiates (the SDK's ServerOptions.SupportedProtocolVersions).
	ProtocolVersions []string
}

// LegacyProtocolVersions are the revisions the SDK speaks before
// 2026-07-28: a server restricted to them keeps a session per client
// (Mcp-Session-Id), as every streamable-HTTP server did until then.
func LegacyProtocolVersions() []string {
	return slices.DeleteFunc(mcp.SupportedProtocolVersions(), func(v string) bool { return v >= "2026-07-28" })
}

type echoIn struct {
	Text string `json:"text"`
}

// NewMCPServer returns the MCP server of a test upstream: whoami answers
// value(req), echo echoes; withPID adds the pid tool.
func NewMCPServer(opts ServerOptions, value func(*mcp.CallToolRequest) string, withPID bool) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "hubtest-" + opts.Name, Version: "1"}, &mcp.ServerOptions{
		Instructions:              opts.Instructions,
		SupportedProtocolVersions: opts.ProtocolVersions,
	})
	mcp.AddTool(s, &mcp.Tool{Name: ToolWhoami, Description: "The caller's value at " + opts.Name + "."},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return TextResult(value(req)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: ToolEcho, Description: "Echoes text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return TextResult(in.Text), nil, nil
		})
	if withPID {
		mcp.AddTool(s, &mcp.Tool{Name: ToolPID, Description: "The server's process id."},
			func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
				return TextResult(strconv.Itoa(os.Getpid())), nil, nil
			})
	}
	return s
}

// ToolNames are the tools a test upstream lists.
func ToolNames(withPID bool) []string {
	if withPID {
		return []string{ToolEcho, ToolPID, ToolWhoami}
	}
	return []string{ToolEcho, ToolWhoami}
}

// TextResult is a tool result with one text.
func TextResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
