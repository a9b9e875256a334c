package hub

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const maxInputRounds = 10

// CallTool calls a tool on caller's link to the server. A 2026-07-28
// input-required result goes back to a caller with PassInput as it is;
// for any other caller the hub asks caller.Downstream and calls again.
//
// When the user must first authorize the upstream server, the error is an
// *AuthorizationError carrying the URL: asking the person to open it is the
// caller's business (WaitAuthorized then waits for the outcome).
func (c *Conn) CallTool(ctx context.Context, caller Caller, p *mcp.CallToolParams) (*mcp.CallToolResult, error) {
	q := *p
	for round := 0; ; round++ {
		q.Meta = withMeta(p.Meta)
		if c.builtin != nil && caller.User != "" {
			q.Meta[UserMetaKey] = caller.User
		}
		var res *mcp.CallToolResult
		err := c.do(ctx, caller, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
			var err error
			res, err = cs.CallTool(ctx, &q)
			return err
		})
		if err != nil || len(res.InputRequests) == 0 || caller.PassInput {
			return res, err
		}
		if round >= maxInputRounds {
			return nil, fmt.Errorf("%s: too many input request rounds", c.name)
		}
		q.InputResponses, err = answerInputs(ctx, caller.Downstream, res.InputRequests)
		if err != nil {
			return nil, err
		}
		q.RequestState = res.RequestState
	}
}

// ReadResource reads a resource.
func (c *Conn) ReadResource(ctx context.Context, caller Caller, p *mcp.ReadResourceParams) (*mcp.ReadResourceResult, error) {
	q := *p
	q.Meta = withMeta(p.Meta)
	var res *mcp.ReadResourceResult
	err := c.do(ctx, caller, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.ReadResource(ctx, &q)
		return err
	})
	return res, err
}

// GetPrompt gets a prompt.
func (c *Conn) GetPrompt(ctx context.Context, caller Caller, p *mcp.GetPromptParams) (*mcp.GetPromptResult, error) {
	q := *p
	q.Meta = withMeta(p.Meta)
	var res *mcp.GetPromptResult
	err := c.do(ctx, caller, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.GetPrompt(ctx, &q)
		return err
	})
	return res, err
}

// Complete asks for argument completions.
func (c *Conn) Complete(ctx context.Context, caller Caller, p *mcp.CompleteParams) (*mcp.CompleteResult, error) {
	var res *mcp.CompleteResult
	err := c.do(ctx, caller, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.Complete(ctx, p)
		return err
	})
	return res, err
}

// logRank orders log levels from the most verbose.
var logRank = map[mcp.LoggingLevel]int{"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7}

// SetLoggingLevel asks the server for log messages of level and above. The
// upstream session is shared by downstream sessions with levels of their
// own, so the server is only ever asked for more, never for less: each
// downstream session filters by its own level. The level is asked for again
// after a reconnect.
func (c *Conn) SetLoggingLevel(ctx context.Context, caller Caller, level mcp.LoggingLevel) error {
	c = c.link(caller)
	c.mu.Lock()
	cur := c.logLevel
	c.mu.Unlock()
	if cur != "" && logRank[level] >= logRank[cur] {
		return nil
	}
	err := c.do(ctx, caller, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level})
	})
	if err == nil {
		c.mu.Lock()
		if c.logLevel == "" || logRank[level] < logRank[c.logLevel] {
			c.logLevel = level
		}
		c.mu.Unlock()
	}
	return err
}

// Subscribe subscribes to a resource's updates. Subscriptions are counted so
// that several downstream subscribers share one upstream subscription.
func (c *Conn) Subscribe(ctx context.Context, caller Caller, uri string) error {
	c = c.link(caller)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[string]int)
	}
	c.subs[uri]++
	first := c.subs[uri] == 1
	c.mu.Unlock()
	if !first {
		return nil
	}
	err := c.do(ctx, caller, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri})
	})
	if err != nil {
		c.mu.Lock()
		c.subs[uri]--
		c.mu.Unlock()
	}
	return err
}

// Unsubscribe drops one subscriber; the last one unsubscribes upstream.
func (c *Conn) Unsubscribe(ctx context.Context, caller Caller, uri string) error {
	c = c.link(caller)
	c.mu.Lock()
	if c.subs[uri] == 0 {
		c.mu.Unlock()
		return nil
	}
	c.subs[uri]--
	last := c.subs[uri] == 0
	if last {
		delete(c.subs, uri)
	}
	c.mu.Unlock()
	if !last {
		return nil
	}
	return c.do(ctx, caller, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri})
	})
}

// Ping checks that the server answers.
func (c *Conn) Ping(ctx context.Context, caller Caller) error {
	return c.do(ctx, caller, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Ping(ctx, nil)
	})
}

// WaitAuthorized waits until a pending upstream authorization of caller's
// binding completes, or ctx ends. The callback may reach another replica:
// a new token in the store counts as completion too. It returns at once
// when nothing is pending.
func (c *Conn) WaitAuthorized(ctx context.Context, caller Caller) error {
	l, err := c.LinkFor(caller)
	if err != nil {
		return err
	}
	return l.waitAuthorized(ctx)
}

// answerInputs answers 2026-07-28 input requests by asking the downstream
// party, as the SDK's client does for its own callers.
func answerInputs(ctx context.Context, d Downstream, reqs mcp.InputRequestMap) (mcp.InputResponseMap, error) {
	if d == nil {
		return nil, fmt.Errorf("server needs input: %w", ErrNoDownstream)
	}
	out := make(mcp.InputResponseMap, len(reqs))
	for id, r := range reqs {
		var (
			resp mcp.InputResponse
			err  error
		)
		switch p := r.(type) {
		case *mcp.ElicitParams:
			resp, err = d.Elicit(ctx, p)
		case *mcp.CreateMessageWithToolsParams:
			resp, err = d.CreateMessage(ctx, p)
		case *mcp.CreateMessageParams:
			var res *mcp.CreateMessageWithToolsResult
			res, err = d.CreateMessage(ctx, samplingWithTools(p))
			if err == nil {
				resp = res
			}
		case *mcp.ListRootsParams:
			resp, err = d.ListRoots(ctx, p)
		default:
			err = fmt.Errorf("unsupported input request %T", r)
		}
		if err != nil {
			return nil, fmt.Errorf("input request %q: %w", id, err)
		}
		out[id] = resp
	}
	return out, nil
}
