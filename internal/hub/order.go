package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// notifCounter keeps a request's result behind the notifications the server
// sent before it. The SDK completes a call as soon as its response is read,
// while notifications read earlier (log messages, progress) are still queued
// for their handlers; a gateway that answered at once would deliver them
// after the result, or not at all. Counting notifications read and handled
// lets a call wait, briefly, for the ones that preceded its response.
type notifCounter struct {
	read    atomic.Int64
	handled atomic.Int64
}

// maxOrderWait bounds how long a result waits for earlier notifications.
const maxOrderWait = 500 * time.Millisecond

// wait returns once every notification read so far has been handled.
func (n *notifCounter) wait(ctx context.Context) {
	target := n.read.Load()
	if n.handled.Load() >= target {
		return
	}
	deadline := time.Now().Add(maxOrderWait)
	for i := 0; n.handled.Load() < target; i++ {
		if i < 50 {
			runtime.Gosched()
			continue
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// middleware counts handled notifications; it must be the outermost
// receiving middleware.
func (n *notifCounter) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if len(method) < 14 || method[:14] != "notifications/" {
			return next(ctx, method, req)
		}
		defer n.handled.Add(1)
		return next(ctx, method, req)
	}
}

type countingTransport struct {
	mcp.Transport
	n *notifCounter
}

func (t *countingTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Connection: c, n: t.n}, nil
}

type countingConn struct {
	mcp.Connection
	n *notifCounter
}

func (c *countingConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	m, err := c.Connection.Read(ctx)
	if r, ok := m.(*jsonrpc.Request); ok && !r.IsCall() {
		c.n.read.Add(1)
	}
	return m, err
}

// sseCounter counts the notifications a streamable-HTTP server sends, at the
// HTTP level: wrapping the SDK's connection (as countingTransport does for
// the other transports) would hide the unexported hooks through which the
// SDK opens the standalone stream that carries notifications not tied to a
// request (resources/updated, list_changed).
type sseCounter struct {
	base http.RoundTripper
	n    *notifCounter
}

func (t *sseCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		resp.Body = &sseCountingBody{ReadCloser: resp.Body, n: t.n}
	}
	return resp, nil
}

// sseCountingBody scans an event stream as the SDK reads it and counts the
// JSON-RPC notifications in it. Only complete events are counted, when
// their terminating blank line has been read: by then the SDK will read the
// event too.
type sseCountingBody struct {
	io.ReadCloser
	n       *notifCounter
	line    []byte // the current line so far
	data    []byte // the current event's data
	tooLong bool
}

// maxCountedEvent bounds the event data kept for inspection; a longer event
// is a result, not a notification worth waiting for.
const maxCountedEvent = 1 << 20

func (b *sseCountingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			if len(b.line) < maxCountedEvent {
				b.line = append(b.line, c)
			}
			continue
		}
		line := bytes.TrimSuffix(b.line, []byte("\r"))
		b.line = b.line[:0]
		if len(line) == 0 {
			b.event()
			continue
		}
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			d = bytes.TrimPrefix(d, []byte(" "))
			if len(b.data)+len(d) > maxCountedEvent {
				b.tooLong = true
				continue
			}
			if len(b.data) > 0 {
				b.data = append(b.data, '\n')
			}
			b.data = append(b.data, d...)
		}
	}
	return n, err
}

func (b *sseCountingBody) event() {
	data, tooLong := b.data, b.tooLong
	b.data, b.tooLong = b.data[:0], false
	if tooLong || len(data) == 0 {
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(data, &m) == nil && m.Method != "" && len(m.ID) == 0 {
		b.n.read.Add(1)
	}
}
