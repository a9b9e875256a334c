package hub

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Caller is who a request to an upstream server is made for and by: the
// signed-in user whose binding serves it, and the downstream party that
// what the upstream server sends while handling the request goes back to.
// The gateway, the agent, the command line and the HTTP API each build one
// per request and pass it explicitly.
type Caller struct {
	// User is the signed-in user's id; "" for the application itself (the
	// command line without --user, an anonymous session). A server that
	// connects once per user refuses a caller without one (ErrNeedsUser).
	User string
	// Downstream receives the sampling, elicitation, roots, progress and
	// log messages the upstream server sends while handling the request.
	// Nil: such requests are refused with ErrNoDownstream, and the rest is
	// dropped.
	Downstream Downstream
	// Revision is the MCP revision the downstream client speaks; "" for a
	// caller that is no MCP client (the agent, the command line).
	Revision string
	// PassInput: 2026-07-28 input requests (input-required results) are
	// returned to the caller as they are, for its client to answer. False:
	// the hub answers them by asking Downstream and calls again.
	PassInput bool
	// Lang is the caller's preferred language for the messages the hub
	// writes for people ("ko" or "en", from Accept-Language or the chat's
	// language). Empty: English.
	Lang string
}

// Modern reports whether the caller speaks the 2026-07-28 revision.
func (c Caller) Modern() bool { return c.Revision >= modernProtocol }

// Downstream is the party on whose behalf a request is sent upstream.
// Server-to-client traffic that an upstream server sends while handling that
// request (sampling, elicitation, roots, progress, log messages) is delivered
// to it and to nobody else. The gateway implements it for each downstream MCP
// session; the agent implements it for a run; the command line for a call.
type Downstream interface {
	CreateMessage(ctx context.Context, p *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error)
	Elicit(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error)
	// ElicitationComplete tells the downstream party that a URL-mode
	// elicitation it was asked finished; it may arrive after the request.
	ElicitationComplete(ctx context.Context, p *mcp.ElicitationCompleteParams) error
	ListRoots(ctx context.Context, p *mcp.ListRootsParams) (*mcp.ListRootsResult, error)
	Log(ctx context.Context, p *mcp.LoggingMessageParams) error
	Progress(ctx context.Context, p *mcp.ProgressNotificationParams) error
}

// Observer hears what changes in the hub that no request caused. Its
// methods must not block. user is "" for a shared binding (every session
// showing the server hears of it) and the user's id for that user's own
// binding (only that user's sessions do).
type Observer interface {
	// Changed: a binding of server changed state or catalog.
	Changed(server string)
	// ResourceUpdated: a resources/updated notification.
	ResourceUpdated(user, server string, p *mcp.ResourceUpdatedNotificationParams)
	// Log: a log message that no request in flight caused.
	Log(user, server string, p *mcp.LoggingMessageParams)
}

// SetObserver makes o the hub's observer (the gateway registers itself).
// Nil: changes are heard by nobody.
func (h *Hub) SetObserver(o Observer) {
	if o == nil {
		h.observer.Store(nil)
		return
	}
	h.observer.Store(&o)
}

func (h *Hub) observe() Observer {
	if p := h.observer.Load(); p != nil {
		return *p
	}
	return nil
}
