package tools

import (
	"context"
	"encoding/json"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// fixedNow is the clock of tests: 2026-11-18 06:00 UTC (15:00 in Seoul).
var fixedNow = time.Date(2026, 11, 18, 6, 0, 0, 0, time.UTC)

// client is an MCP client session connected to NewServer(opts) through the
// SDK's in-memory transports, as the hub connects to it. It checks that
// every tool's schemas compile and that each call's structured content
// validates against its tool's output schema.
type client struct {
	t     *testing.T
	cs    *mcp.ClientSession
	tools map[string]*mcp.Tool
	out   map[string]*jsonschema.Resolved
}

func connect(t *testing.T, opts *Options) *client {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := NewServer(opts).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Wait() })
	c := &client{t: t, cs: cs, tools: map[string]*mcp.Tool{}, out: map[string]*jsonschema.Resolved{}}
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		c.tools[tool.Name] = tool
		if tool.Description == "" {
			t.Errorf("tool %s has no description", tool.Name)
		}
		if _, err := resolveSchema(tool.InputSchema); err != nil {
			t.Errorf("tool %s: input schema: %v", tool.Name, err)
		}
		if tool.OutputSchema == nil {
			t.Errorf("tool %s has no output schema", tool.Name)
			continue
		}
		r, err := resolveSchema(tool.OutputSchema)
		if err != nil {
			t.Errorf("tool %s: output schema: %v", tool.Name, err)
			continue
		}
		c.out[tool.Name] = r
	}
	return c
}

func resolveSchema(v any) (*jsonschema.Resolved, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return s.Resolve(nil)
}

func (c *client) names() []string {
	return sortedKeys(c.tools)
}

// call calls a tool as user ("" for none) and returns the result, with its
// structured content decoded into out when out is not nil.
func (c *client) call(user, name string, args any, out any) *mcp.CallToolResult {
	c.t.Helper()
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	if user != "" {
		params.Meta = mcp.Meta{UserMetaKey: user}
	}
	res, err := c.cs.CallTool(context.Background(), params)
	if err != nil {
		c.t.Fatalf("call %s: protocol error %v", name, err)
	}
	if res.StructuredContent != nil {
		data, _ := json.Marshal(res.StructuredContent)
		var v any
		_ = json.Unmarshal(data, &v)
		if r := c.out[name]; r != nil {
			if err := r.Validate(v); err != nil {
				c.t.Errorf("call %s: structured content does not validate against the output schema: %v\n%s", name, err, data)
			}
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				c.t.Fatal(err)
			}
		}
	} else if !res.IsError {
		c.t.Errorf("call %s: success without structured content", name)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// wantError checks that res is an isError result mentioning every one of
// want.
func wantError(t *testing.T, res *mcp.CallToolResult, want ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want isError, got success: %s", text(res))
	}
	for _, w := range want {
		if !strings.Contains(text(res), w) {
			t.Errorf("error %q does not mention %q", text(res), w)
		}
	}
}

func wantOK(t *testing.T, res *mcp.CallToolResult) {
	t.Helper()
	if res.IsError {
		t.Fatalf("want success, got error: %s", text(res))
	}
}
