package hub

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// clientOptions builds the upstream client's handlers. Every server-to-client
// message is passed on to the downstream party that caused it (see inflight).
func (c *Conn) clientOptions() *mcp.ClientOptions {
	return &mcp.ClientOptions{
		Logger: c.hub.sdkLogger,
		// The gateway can answer sampling (with tools), elicitation (form and
		// URL) and roots whenever the downstream client can; a request the
		// downstream cannot answer gets an error.
		Capabilities: &mcp.ClientCapabilities{
			RootsV2:     &mcp.RootCapabilities{ListChanged: true},
			Sampling:    &mcp.SamplingCapabilities{Tools: &mcp.SamplingToolsCapabilities{}},
			Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
		},
		CreateMessageWithToolsHandler: func(ctx context.Context, req *mcp.CreateMessageWithToolsRequest) (*mcp.CreateMessageWithToolsResult, error) {
			d := c.flight.route()
			if d == nil {
				return nil, fmt.Errorf("sampling: %w", ErrNoDownstream)
			}
			return d.CreateMessage(ctx, req.Params)
		},
		// Set so that the capability is declared; requests are answered
		// by passMiddleware before the SDK would validate their schema.
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return c.elicit(ctx, req.Params)
		},
		ElicitationCompleteHandler: func(ctx context.Context, req *mcp.ElicitationCompleteNotificationRequest) {
			c.mu.Lock()
			d := c.elicits[req.Params.ElicitationID]
			delete(c.elicits, req.Params.ElicitationID)
			c.mu.Unlock()
			if d != nil {
				d.ElicitationComplete(ctx, req.Params)
			}
		},
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			if d := c.flight.route(); d != nil {
				d.Log(ctx, req.Params)
				return
			}
			// A user's binding reaches that user's sessions only.
			if o := c.hub.observe(); o != nil {
				o.Log(c.user, c.name, req.Params)
			}
		},
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			cl := c.flight.byProgressToken(req.Params.ProgressToken)
			if cl == nil {
				return
			}
			cl.reset()
			if cl.token == nil || cl.downstream == nil {
				return
			}
			p := *req.Params
			p.ProgressToken = cl.token
			cl.downstream.Progress(ctx, &p)
		},
		ToolListChangedHandler:     func(context.Context, *mcp.ToolListChangedRequest) { c.refreshAsync("tools") },
		PromptListChangedHandler:   func(context.Context, *mcp.PromptListChangedRequest) { c.refreshAsync("prompts") },
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { c.refreshAsync("resources") },
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			if o := c.hub.observe(); o != nil {
				o.ResourceUpdated(c.user, c.name, req.Params)
			}
		},
		// Input requests of the 2026-07-28 multi-round-trip flow are passed
		// through to the caller unchanged (see CallTool), so the downstream
		// client answers them itself.
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	}
}

func (c *Conn) elicit(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	d := c.flight.route()
	if d == nil {
		return nil, fmt.Errorf("elicitation: %w", ErrNoDownstream)
	}
	if id := p.ElicitationID; id != "" {
		c.mu.Lock()
		if c.elicits == nil {
			c.elicits = make(map[string]Downstream)
		}
		c.elicits[id] = d
		c.mu.Unlock()
	}
	return d.Elicit(ctx, p)
}

// passMiddleware hands server-to-client requests to the downstream party
// as they are. roots/list is answered with the roots of the downstream
// client that caused the request (the SDK client would answer with a static
// list of its own), and elicitation/create is passed on without the SDK
// client's schema checks: judging the request is the downstream client's
// business, and it may accept schemas the SDK does not know.
func (c *Conn) passMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "elicitation/create" {
			p, _ := req.GetParams().(*mcp.ElicitParams)
			if p == nil {
				return next(ctx, method, req)
			}
			return c.elicit(ctx, p)
		}
		if method != "roots/list" {
			return next(ctx, method, req)
		}
		d := c.flight.route()
		if d == nil {
			return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
		}
		p, _ := req.GetParams().(*mcp.ListRootsParams)
		if p == nil {
			p = &mcp.ListRootsParams{}
		}
		return d.ListRoots(ctx, p)
	}
}
