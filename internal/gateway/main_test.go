package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

// upstreamEnv makes the test binary, re-executed by the hub as a stdio
// server, serve upstreamServer instead of running the tests.
const upstreamEnv = "SWITCHBOARD_GWTEST_UPSTREAM"

// downEnv names a file whose existence makes the stdio upstream exit at
// start, as a server that is down would.
const downEnv = "SWITCHBOARD_GWTEST_DOWN"

// spawnEnv names a file the stdio upstream appends its pid to at start.
const spawnEnv = "SWITCHBOARD_GWTEST_SPAWNS"

func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) == "1" {
		if f := os.Getenv(spawnEnv); f != "" {
			if w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
				fmt.Fprintln(w, os.Getpid())
				w.Close()
			}
		}
		if f := os.Getenv(downEnv); f != "" {
			if _, err := os.Stat(f); err == nil {
				fmt.Fprintln(os.Stderr, "down on purpose")
				os.Exit(1)
			}
		}
		srv := newUpstream("alpha", func(s string) { fmt.Fprintln(os.Stderr, s) })
		if err := srv.Run(context.Background(), &mcp.StdioTransport{}); err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// watchedURI is the subscribable resource every upstream offers.
const watchedURI = "test://watched"

// upstreamArgs are the arguments of every upstream tool.
type upstreamArgs struct {
	// Tag names the downstream caller; it is echoed in every message the
	// tool sends back, so a test can tell whose call caused it.
	Tag string `json:"tag"`
	// Gate, if set, is a file the notification tools wait for after their
	// first notification, so that a test can hold several calls in flight
	// at once.
	Gate string `json:"gate,omitempty"`
}

// newUpstream builds the upstream test server called "gwtest-"+name. note
// receives what the test observes from outside: "slow started TAG" and
// "slow cancelled TAG".
func newUpstream(name string, note func(string)) *mcp.Server {
	impl := &mcp.Implementation{Name: "gwtest-" + name, Version: "1.2.3"}
	var srv *mcp.Server
	srv = mcp.NewServer(impl, &mcp.ServerOptions{
		Instructions:       "Instructions of " + name + ".",
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	add := func(tool string, h mcp.ToolHandlerFor[upstreamArgs, any]) {
		mcp.AddTool(srv, &mcp.Tool{Name: tool, Description: tool + " on " + name}, h)
	}

	add("sample", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			MaxTokens: 16,
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: impl.Name + " asks " + in.Tag}}},
		})
		if err != nil {
			return nil, nil, err
		}
		tc, _ := res.Content.(*mcp.TextContent)
		if tc == nil {
			return nil, nil, fmt.Errorf("sampling reply is %T, not text", res.Content)
		}
		return text(tc.Text), nil, nil
	})
	add("ask", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Mode:    "form",
			Message: impl.Name + " asks " + in.Tag,
			RequestedSchema: map[string]any{
				"type":       "object",
				"properties": map[string]any{"answer": map[string]any{"type": "string"}},
				"required":   []string{"answer"},
			},
		})
		if err != nil {
			return nil, nil, err
		}
		answer, _ := res.Content["answer"].(string)
		return text(res.Action + ": " + answer), nil, nil
	})
	add("roots", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return text(strings.Join(uris, ",")), nil, nil
	})
	add("progress", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		if tok == nil {
			return nil, nil, errors.New("no progress token")
		}
		for i := 1; i <= 3; i++ {
			if i == 2 {
				if err := waitGate(ctx, in.Gate); err != nil {
					return nil, nil, err
				}
			}
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: tok, Progress: float64(i), Total: 3,
				Message: fmt.Sprintf("%s progress %d for %s", impl.Name, i, in.Tag),
			})
			if err != nil {
				return nil, nil, err
			}
		}
		return text("done"), nil, nil
	})
	add("log", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		for i, level := range []mcp.LoggingLevel{"info", "debug"} {
			if i == 1 {
				if err := waitGate(ctx, in.Gate); err != nil {
					return nil, nil, err
				}
			}
			err := req.Session.Log(ctx, &mcp.LoggingMessageParams{
				Level: level, Logger: impl.Name,
				Data: fmt.Sprintf("%s %s log for %s", impl.Name, level, in.Tag),
			})
			if err != nil {
				return nil, nil, err
			}
		}
		return text("logged"), nil, nil
	})
	add("slow", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		note("slow started " + in.Tag)
		<-ctx.Done()
		note("slow cancelled " + in.Tag)
		return nil, nil, ctx.Err()
	})
	add("touch", func(ctx context.Context, req *mcp.CallToolRequest, in upstreamArgs) (*mcp.CallToolResult, any, error) {
		if err := srv.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: watchedURI}); err != nil {
			return nil, nil, err
		}
		return text("touched"), nil, nil
	})
	srv.AddResource(&mcp.Resource{URI: watchedURI, Name: "watched", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: watchedURI, MIMEType: "text/plain", Text: impl.Name}}}, nil
		})
	return srv
}

// waitGate waits until the file gate exists. The upstream may be another
// process, so a file is the simplest signal both kinds of upstream share;
// polling is bounded by ctx and a deadline.
func waitGate(ctx context.Context, gate string) error {
	if gate == "" {
		return nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(gate); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gate %s not opened in time", gate)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
