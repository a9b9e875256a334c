package gateway

import (
	"context"

	"golang.org/x/text/language"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// downstream is one downstream request, seen from the hub: whatever an
// upstream server sends while handling it goes back on that request.
type downstream struct {
	// ctx is the downstream request's context. It is kept because the SDK
	// sends a server-to-client message on the response stream of the request
	// whose context it is given, which is exactly the routing wanted here; it
	// is never used after the request ends.
	ctx context.Context
	ss  *mcp.ServerSession
}

var _ hub.Downstream = (*downstream)(nil)

// canElicitURL reports whether the client declared URL-mode elicitation.
func (d *downstream) canElicitURL() bool {
	p := d.ss.InitializeParams()
	return p != nil && p.Capabilities != nil && p.Capabilities.Elicitation != nil && p.Capabilities.Elicitation.URL != nil
}

func (d *downstream) CreateMessage(_ context.Context, p *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error) {
	return d.ss.CreateMessageWithTools(d.ctx, p)
}

func (d *downstream) Elicit(_ context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	return d.ss.Elicit(d.ctx, p)
}

func (d *downstream) ListRoots(_ context.Context, p *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	return d.ss.ListRoots(d.ctx, p)
}

func (d *downstream) Log(_ context.Context, p *mcp.LoggingMessageParams) error {
	return d.ss.Log(d.ctx, p)
}

func (d *downstream) Progress(_ context.Context, p *mcp.ProgressNotificationParams) error {
	return d.ss.NotifyProgress(d.ctx, p)
}

func (d *downstream) ElicitationComplete(ctx context.Context, p *mcp.ElicitationCompleteParams) error {
	// The completion may arrive after the originating request has ended, so
	// it is sent on the session rather than on the request's stream.
	return d.ss.NotifyElicitationComplete(ctx, p)
}

// callerOf returns the hub caller of a downstream request: the user the
// SDK verified the request for, the session, the client's revision and
// language. 2026-07-28 input requests go to the downstream client as they
// are: a client on that revision answers them itself, and for older
// clients the SDK server asks them on its behalf.
func callerOf(ctx context.Context, req mcp.Request) hub.Caller {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	c := hub.Caller{Downstream: &downstream{ctx: ctx, ss: ss}, PassInput: true}
	if ex := req.GetExtra(); ex != nil {
		if ex.TokenInfo != nil {
			c.User = ex.TokenInfo.UserID
		}
		c.Lang = langOf(ex.Header.Get("Accept-Language"))
	}
	if ss != nil {
		if p := ss.InitializeParams(); p != nil {
			c.Revision = p.ProtocolVersion
		}
	}
	return c
}

// langOf picks Korean or English from an Accept-Language header.
func langOf(accept string) string {
	tags, _, err := language.ParseAcceptLanguage(accept)
	if err != nil {
		return ""
	}
	if _, i, conf := language.NewMatcher([]language.Tag{language.English, language.Korean}).Match(tags...); conf != language.No && i == 1 {
		return "ko"
	}
	return ""
}
