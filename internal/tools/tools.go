// Package tools holds Switchboard's built-in tools, served by the in-process
// MCP server named "switchboard". cmd/switchboard wires it into the hub; it
// imports only the MCP SDK (and, later, hub types).
package tools

import (
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Options configure the built-in server. The zero value is valid.
type Options struct {
	// Timezone is get_current_time's default IANA zone. Empty: Asia/Seoul.
	Timezone string
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Version is the server's reported version. Empty: "dev".
	Version string
}

// NewServer returns the built-in MCP server with every enabled tool.
func NewServer(opts *Options) *mcp.Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timezone == "" {
		o.Timezone = "Asia/Seoul"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "switchboard", Title: "Switchboard built-in tools", Version: o.Version}, &mcp.ServerOptions{
		Instructions: "Built-in tools of Switchboard. Use get_current_time whenever an answer depends on today's date or the current time (e.g. 'in 3 days', 'tomorrow at 3pm').",
	})
	addClock(s, o)
	return s
}
