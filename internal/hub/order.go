package hub

import (
	"context"
	"runtime"
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
