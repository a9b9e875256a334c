// Command stdioserver is hubtest's stdio MCP server. It records each of its
// processes in -pid-dir (see hubtest.Children) and refuses to start while
// -down-file exists, so that a test can keep a server down across restarts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub/hubtest"
)

func main() {
	name := flag.String("name", "stdio", "server name")
	value := flag.String("value", "", "what whoami answers")
	instructions := flag.String("instructions", "", "initialize instructions")
	pidDir := flag.String("pid-dir", "", "directory to record this process in")
	downFile := flag.String("down-file", "", "refuse to start while this file exists")
	flag.Parse()
	if *downFile != "" {
		if _, err := os.Stat(*downFile); err == nil {
			fmt.Fprintf(os.Stderr, "hubtest-%s is down: %s exists\n", *name, *downFile)
			os.Exit(1)
		}
	}
	if *pidDir != "" {
		if err := hubtest.RecordChild(*pidDir, *name, *value); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	s := hubtest.NewMCPServer(hubtest.ServerOptions{Name: *name, Instructions: *instructions},
		func(*mcp.CallToolRequest) string { return *value }, true)
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
		fmt.Fprintln(os.Stderr, "hubtest stdio server:", err)
		os.Exit(1)
	}
}
