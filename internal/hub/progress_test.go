package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// progressDownstream records the progress notifications it receives.
type progressDownstream struct {
	testDownstream
	mu  sync.Mutex // guards got
	got []any      // progress tokens, in order
}

func (d *progressDownstream) Progress(_ context.Context, p *mcp.ProgressNotificationParams) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, p.ProgressToken)
	return nil
}

func (d *progressDownstream) tokens() []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]any(nil), d.got...)
}

// The progress token a caller sends is the one the upstream server sees;
// only when another request in flight on the same link already uses it
// does the hub send one of its own, and the caller still gets its own
// token back on every progress notification.
func TestProgressTokenPassedThrough(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	s := mcp.NewServer(&mcp.Implementation{Name: "progress", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "token"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		Hold bool `json:"hold"`
	}) (*mcp.CallToolResult, any, error) {
		tok := req.Params.GetProgressToken()
		if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2}); err != nil {
			return nil, nil, err
		}
		if in.Hold {
			started <- struct{}{}
			<-release
		}
		return textResult(fmt.Sprint(tok)), nil, nil
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() {
		ts.Close()
		for ss := range s.Sessions() {
			ss.Close()
		}
	})
	h, _ := newHub(t, nil, &config.Server{Name: "p", Type: config.StreamableHTTP, URL: ts.URL, Startup: true})
	c := conn(t, h, "p")

	callWith := func(d *progressDownstream, tok any, hold bool) (string, error) {
		p := &mcp.CallToolParams{Name: "token", Arguments: map[string]any{"hold": hold}}
		p.SetProgressToken(tok)
		res, err := c.CallTool(t.Context(), hub.Caller{Downstream: d}, p)
		if err != nil {
			return "", err
		}
		return text(res), nil
	}

	tests := []struct {
		name string
		tok  any
		want string
	}{
		{"string token", "client-7", "client-7"},
		{"number token", 42, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &progressDownstream{}
			got, err := callWith(d, tt.tok, false)
			if err != nil || got != tt.want {
				t.Fatalf("upstream saw token %q (%v), want %q", got, err, tt.want)
			}
			if toks := d.tokens(); len(toks) != 1 || fmt.Sprint(toks[0]) != tt.want {
				t.Errorf("downstream got progress tokens %v, want [%s]", toks, tt.want)
			}
		})
	}

	t.Run("same token twice in flight", func(t *testing.T) {
		first, second := &progressDownstream{}, &progressDownstream{}
		var wg sync.WaitGroup
		var firstSaw string
		wg.Go(func() {
			var err error
			if firstSaw, err = callWith(first, "shared", true); err != nil {
				t.Error(err)
			}
		})
		<-started
		secondSaw, err := callWith(second, "shared", false)
		close(release)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if firstSaw != "shared" {
			t.Errorf("the first call's upstream token %q, want its own %q", firstSaw, "shared")
		}
		if secondSaw == "shared" {
			t.Errorf("the second call reached the upstream with the token in use by the first")
		}
		for name, d := range map[string]*progressDownstream{"first": first, "second": second} {
			if toks := d.tokens(); len(toks) != 1 || toks[0] != "shared" {
				t.Errorf("%s downstream got progress tokens %v, want [shared]", name, toks)
			}
		}
	})
}
