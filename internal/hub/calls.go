package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// InputPassthrough is implemented by a Downstream that answers 2026-07-28
// input requests itself (the gateway hands them to its client). For any other
// Downstream the hub answers them by asking the Downstream and retrying.
type InputPassthrough interface {
	PassInputRequests() bool
}

const maxInputRounds = 10

// CallTool calls a tool on the server.
func (c *Conn) CallTool(ctx context.Context, p *mcp.CallToolParams) (*mcp.CallToolResult, error) {
	q := *p
	if q.RequestState == authorizeState {
		// The retry of a call whose answer asked a 2026-07-28 client to
		// open the sign-in page (see authorizeInBand).
		if err := c.awaitInBandAuthorization(ctx, q.InputResponses); err != nil {
			return nil, err
		}
		q.InputResponses, q.RequestState = nil, ""
	}
	for round := 0; ; round++ {
		q.Meta = withMeta(p.Meta)
		if c.builtin != nil {
			if u := UserFrom(ctx); u != "" {
				q.Meta[UserMetaKey] = u
			}
		}
		var res *mcp.CallToolResult
		err := c.do(ctx, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
			var err error
			res, err = cs.CallTool(ctx, &q)
			return err
		})
		if err != nil && round == 0 {
			if res := c.authorizeInBand(ctx, err); res != nil {
				return res, nil
			}
			if c.askToAuthorize(ctx, err) {
				continue
			}
		}
		if err != nil || len(res.InputRequests) == 0 || passesInput(ctx) {
			return res, err
		}
		if round >= maxInputRounds {
			return nil, fmt.Errorf("%s: too many input request rounds", c.name)
		}
		q.InputResponses, err = answerInputs(ctx, res.InputRequests)
		if err != nil {
			return nil, err
		}
		q.RequestState = res.RequestState
	}
}

// ReadResource reads a resource.
func (c *Conn) ReadResource(ctx context.Context, p *mcp.ReadResourceParams) (*mcp.ReadResourceResult, error) {
	q := *p
	q.Meta = withMeta(p.Meta)
	var res *mcp.ReadResourceResult
	err := c.do(ctx, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.ReadResource(ctx, &q)
		return err
	})
	return res, err
}

// GetPrompt gets a prompt.
func (c *Conn) GetPrompt(ctx context.Context, p *mcp.GetPromptParams) (*mcp.GetPromptResult, error) {
	q := *p
	q.Meta = withMeta(p.Meta)
	var res *mcp.GetPromptResult
	err := c.do(ctx, &q, func(ctx context.Context, cs *mcp.ClientSession) error {
		var err error
		res, err = cs.GetPrompt(ctx, &q)
		return err
	})
	return res, err
}

// Complete asks for argument completions.
func (c *Conn) Complete(ctx context.Context, p *mcp.CompleteParams) (*mcp.CompleteResult, error) {
	var res *mcp.CompleteResult
	err := c.do(ctx, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
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
func (c *Conn) SetLoggingLevel(ctx context.Context, level mcp.LoggingLevel) error {
	c = c.link(ctx)
	c.mu.Lock()
	cur := c.logLevel
	c.mu.Unlock()
	if cur != "" && logRank[level] >= logRank[cur] {
		return nil
	}
	err := c.do(ctx, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
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
func (c *Conn) Subscribe(ctx context.Context, uri string) error {
	c = c.link(ctx)
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
	err := c.do(ctx, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
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
func (c *Conn) Unsubscribe(ctx context.Context, uri string) error {
	c = c.link(ctx)
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
	return c.do(ctx, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri})
	})
}

// Ping checks that the server answers.
func (c *Conn) Ping(ctx context.Context) error {
	return c.do(ctx, nil, func(ctx context.Context, cs *mcp.ClientSession) error {
		return cs.Ping(ctx, nil)
	})
}

// URLElicitor is implemented by a Downstream whose client can be asked to
// open a URL (MCP URL-mode elicitation).
type URLElicitor interface {
	CanElicitURL() bool
}

// authorizeWait bounds how long a tool call waits for the user to finish an
// authorization it asked for through elicitation.
const authorizeWait = 5 * time.Minute

// askToAuthorize handles a call that failed because the user must
// authorize the upstream server: a downstream client that supports URL-mode
// elicitation is asked to open the authorization URL, and once the user has
// authorized (the shared callback completed) the call is made again. It
// reports whether to retry.
func (c *Conn) askToAuthorize(ctx context.Context, err error) bool {
	var ae *AuthorizationError
	if !errors.As(err, &ae) {
		return false
	}
	d := downstreamFrom(ctx)
	if e, ok := d.(URLElicitor); !ok || !e.CanElicitURL() {
		return false
	}
	u := c.link(ctx)
	res, eerr := d.Elicit(ctx, &mcp.ElicitParams{
		Mode:          "url",
		Message:       fmt.Sprintf("%s needs you to sign in before Switchboard can use it for you.", c.name),
		URL:           ae.URL,
		ElicitationID: randomID(),
	})
	if eerr != nil || res == nil || res.Action != "accept" {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, authorizeWait)
	defer cancel()
	return u.waitAuthorized(wctx) == nil
}

// authorizeState is the request state of a call that is waiting for the
// user to authorize an upstream server; authorizeInput is its input request.
const (
	authorizeState = "io.switchboard/authorize"
	authorizeInput = "io.switchboard/authorize"
)

// authorizeInBand answers a call that failed for want of the user's
// authorization, made by a 2026-07-28 client (which cannot be sent a
// request: its sessions are stateless), with an input-required result that
// asks it to open the sign-in page. The client answers and retries the call,
// and CallTool then waits for the authorization before calling again. It
// returns nil when the call is not such a case.
func (c *Conn) authorizeInBand(ctx context.Context, err error) *mcp.CallToolResult {
	var ae *AuthorizationError
	if !errors.As(err, &ae) || !passesInput(ctx) {
		return nil
	}
	m, ok := downstreamFrom(ctx).(Modern)
	if !ok || !m.Modern() {
		return nil
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{authorizeInput: &mcp.ElicitParams{
			Mode:          "url",
			Message:       fmt.Sprintf("%s needs you to sign in before Switchboard can use it for you.", c.name),
			URL:           ae.URL,
			ElicitationID: randomID(),
		}},
		RequestState: authorizeState,
	}
}

// awaitInBandAuthorization waits, after the client agreed to open the
// sign-in page, until the user has authorized.
func (c *Conn) awaitInBandAuthorization(ctx context.Context, answers mcp.InputResponseMap) error {
	res, _ := answers[authorizeInput].(*mcp.ElicitResult)
	if res == nil || res.Action != "accept" {
		return fmt.Errorf("%s: the sign-in was declined", c.name)
	}
	wctx, cancel := context.WithTimeout(ctx, authorizeWait)
	defer cancel()
	return c.link(ctx).waitAuthorized(wctx)
}

func passesInput(ctx context.Context) bool {
	p, ok := downstreamFrom(ctx).(InputPassthrough)
	return ok && p.PassInputRequests()
}

// answerInputs answers 2026-07-28 input requests by asking the downstream
// party, as the SDK's client does for its own callers.
func answerInputs(ctx context.Context, reqs mcp.InputRequestMap) (mcp.InputResponseMap, error) {
	d := downstreamFrom(ctx)
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
