package hub

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrNoDownstream is returned to an upstream server when it sends a request
// (sampling, elicitation, roots) that no downstream party can answer.
var ErrNoDownstream = errors.New("no downstream client is able to answer this request")

// Downstream is the party on whose behalf a request is sent upstream.
// Server-to-client traffic that an upstream server sends while handling that
// request (sampling, elicitation, roots, progress, log messages) is delivered
// to it and to nobody else. The gateway implements it for each downstream MCP
// session; the agent implements it for a run.
type Downstream interface {
	CreateMessage(ctx context.Context, p *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error)
	Elicit(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error)
	ListRoots(ctx context.Context, p *mcp.ListRootsParams) (*mcp.ListRootsResult, error)
	Log(ctx context.Context, p *mcp.LoggingMessageParams) error
	Progress(ctx context.Context, p *mcp.ProgressNotificationParams) error
}

type downstreamKey struct{}

type userKey struct{}

// UserMetaKey is the _meta key under which the hub tells the built-in
// in-process server who is calling: the caller's context does not cross the
// in-memory transport. The gateway removes the key from downstream requests,
// so only the hub sets it.
const UserMetaKey = "io.switchboard/user"

// WithUser returns a context whose upstream requests are made for the
// signed-in user id.
func WithUser(ctx context.Context, userID string) context.Context {
	return context.WithValue(ctx, userKey{}, userID)
}

// UserFrom returns the user id WithUser stored, or "".
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// WithDownstream returns a context whose upstream requests are made on behalf
// of d.
func WithDownstream(ctx context.Context, d Downstream) context.Context {
	return context.WithValue(ctx, downstreamKey{}, d)
}

func downstreamFrom(ctx context.Context) Downstream {
	d, _ := ctx.Value(downstreamKey{}).(Downstream)
	return d
}

// call is one request in flight on an upstream connection.
type call struct {
	seq        uint64
	downstream Downstream // nil when nobody downstream is waiting
	token      any        // the downstream's progress token, nil if it asked for none
	reset      func()     // restarts the call's timeout; progress resets it
}

// inflight tracks the requests in flight on one upstream session so that
// server-to-client messages find the downstream party that caused them.
//
// A message is routed, in order of preference, by (1) the context the SDK
// hands to the client handler (multi-round-trip input requests carry the
// originating call's context), (2) its progress token, (3) the single request
// in flight on the connection. When several downstream parties have requests
// in flight on one shared connection and the message carries nothing that
// identifies its request (stdio and pre-2026 HTTP servers send sampling and
// log messages without a request id), the most recently started request wins.
type inflight struct {
	mu    sync.Mutex // guards the fields below
	next  uint64
	calls map[uint64]*call
}

func (f *inflight) add(c *call) (done func()) {
	f.mu.Lock()
	f.next++
	c.seq = f.next
	if f.calls == nil {
		f.calls = make(map[uint64]*call)
	}
	f.calls[c.seq] = c
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.calls, c.seq)
		f.mu.Unlock()
	}
}

// busy reports whether any request is in flight.
func (f *inflight) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls) > 0
}

func (f *inflight) byProgressToken(tok any) *call {
	seq, ok := progressSeq(tok)
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[seq]
}

// latest returns the most recently started call with a downstream party.
func (f *inflight) latest() *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best *call
	for _, c := range f.calls {
		if c.downstream != nil && (best == nil || c.seq > best.seq) {
			best = c
		}
	}
	return best
}

// downstreams returns the distinct downstream parties with calls in flight,
// oldest first.
func (f *inflight) downstreams() []Downstream {
	f.mu.Lock()
	defer f.mu.Unlock()
	cs := make([]*call, 0, len(f.calls))
	for _, c := range f.calls {
		if c.downstream != nil {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq < cs[j].seq })
	seen := make(map[Downstream]bool)
	var out []Downstream
	for _, c := range cs {
		if !seen[c.downstream] {
			seen[c.downstream] = true
			out = append(out, c.downstream)
		}
	}
	return out
}

func (f *inflight) route(ctx context.Context) Downstream {
	if d := downstreamFrom(ctx); d != nil {
		return d
	}
	if c := f.latest(); c != nil {
		return c.downstream
	}
	return nil
}
