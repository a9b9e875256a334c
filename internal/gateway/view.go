package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// view is one downstream MCP server: either the transparent mirror of one
// upstream server (single != "") or the aggregate of all of them. It keeps an
// SDK server whose tools, resources and prompts follow the upstream catalogs
// and whose handlers forward to the hub.
type view struct {
	g      *Gateway
	key    viewKey
	single string                   // the upstream server's name; "" for the aggregate
	modern bool                     // serves 2026-07-28 clients from the hub's links of that revision
	allow  func(server string) bool // nil: every server
	user   string                   // whose per-user bindings the view shows; "": shared ones only
	asUser string                   // every request is this user's (a stdio view); "": the verified user
	server *mcp.Server
	init   *mcp.InitializeResult // the upstream's, for a single view

	mu        sync.Mutex        // guards the fields below
	tools     map[string][]byte // registered name -> JSON of the tool, to skip unchanged ones
	prompts   map[string][]byte
	resources map[string][]byte
	templates map[string][]byte
	toolRefs  *hub.Names
	promptRef *hub.Names
	resRefs   map[string]hub.Ref // downstream URI -> upstream server and URI
	tmplRefs  map[string]hub.Ref // downstream URI template -> upstream server and template
	tmplOrder []string
	seen      map[string]*hub.Catalog // server -> catalog last synced
}

func (g *Gateway) newView(key viewKey, init *mcp.InitializeResult) *view {
	single := key.single
	v := &view{g: g, key: key, single: single, init: init, modern: key.modern, user: key.user,
		tools: map[string][]byte{}, prompts: map[string][]byte{}, resources: map[string][]byte{}, templates: map[string][]byte{}}
	opts := &mcp.ServerOptions{
		Logger:             g.sdkLogger,
		CompletionHandler:  v.complete,
		SubscribeHandler:   v.subscribe,
		UnsubscribeHandler: v.unsubscribe,
		KeepAlive:          0,
	}
	impl := &mcp.Implementation{Name: "switchboard", Title: "Switchboard", Version: g.version}
	if single != "" && init != nil {
		// A transparent proxy shows the upstream's identity, instructions
		// and capabilities exactly.
		if init.ServerInfo != nil {
			impl = init.ServerInfo
		}
		opts.Instructions = init.Instructions
		caps := &mcp.ServerCapabilities{}
		if init.Capabilities != nil {
			c := *init.Capabilities
			caps = &c
		}
		opts.Capabilities = caps
		if caps.Completions == nil {
			opts.CompletionHandler = nil
		}
		if caps.Resources == nil || !caps.Resources.Subscribe {
			opts.SubscribeHandler, opts.UnsubscribeHandler = nil, nil
		}
	} else {
		opts.Instructions = g.aggregateInstructions(key.user, nil)
		opts.Capabilities = &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Logging:     &mcp.LoggingCapabilities{},
			Completions: &mcp.CompletionCapabilities{},
		}
	}
	v.server = mcp.NewServer(impl, opts)
	v.server.AddReceivingMiddleware(v.setLevelMiddleware)
	if single == "" {
		v.server.AddReceivingMiddleware(v.instructionsMiddleware)
	}
	return v
}

// servers returns the upstream connections this view shows.
func (v *view) servers() []*hub.Conn {
	var cs []*hub.Conn
	if v.single != "" {
		c, err := v.g.hub.Conn(v.single)
		if err != nil {
			return nil
		}
		cs = []*hub.Conn{c}
	} else {
		cs = v.g.hub.Conns()
	}
	out := make([]*hub.Conn, 0, len(cs))
	for _, c := range cs {
		if v.allow != nil && !v.allow(c.Name()) {
			continue
		}
		if c.UserScoped() {
			if v.user == "" {
				continue
			}
			u, err := c.ForUser(v.user)
			if err != nil {
				continue
			}
			c = u
		}
		out = append(out, c)
	}
	return out
}

// catalog returns what the view shows of binding c: for a modern view the
// catalog of the binding's 2026-07-28 link when that link is up (an HTTP
// server may answer the two revisions differently), else the binding's
// last listed catalog, also while it is down or reconnecting: its tools
// stay listed, and a call while it is down gets an isError result naming
// the server.
func (v *view) catalog(c *hub.Conn) *hub.Catalog {
	if v.modern {
		if cat := c.ModernCatalog(); cat != nil {
			return cat
		}
	}
	return c.Catalog()
}

func (v *view) shows(server string) bool {
	if v.single != "" {
		return v.single == server
	}
	return v.allow == nil || v.allow(server)
}

// sync brings the SDK server's lists in line with the upstream catalogs.
func (v *view) sync() {
	v.mu.Lock()
	defer v.mu.Unlock()
	type entry struct {
		ref  hub.Ref
		item any
	}
	var toolRefs, promptRefs []hub.Ref
	var tools, prompts, resources, templates []entry
	if v.seen == nil {
		v.seen = map[string]*hub.Catalog{}
	}
	// announced: servers that announced a list change since the last sync.
	announced := map[string]string{}
	for _, c := range v.servers() {
		cat := v.catalog(c)
		if cat == nil {
			// A server the user has not authorized yet offers, in the
			// aggregate, one tool that hands out the sign-in link: without
			// it an MCP client would see nothing to call and never learn
			// that signing in would bring the server's tools.
			st := c.Status()
			if v.user != "" && st.Authorization == hub.AuthNeedsAuthorization {
				// StatusFor notices an authorization completed at another
				// replica, and then connects.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if s2, err := v.g.hub.StatusFor(ctx, v.user, c.Name()); err == nil {
					st = s2
				}
				cancel()
			}
			if v.single == "" && st.Authorization == hub.AuthNeedsAuthorization && st.OAuthURL != "" {
				ref := hub.Ref{Server: c.Name(), Name: authorizeTool}
				toolRefs = append(toolRefs, ref)
				tools = append(tools, entry{ref, authorizeToolFor(c.Name())})
			}
			continue
		}
		if v.seen[c.Name()] != cat {
			if cat.Trigger != "" {
				announced[c.Name()] = cat.Trigger
			}
			v.seen[c.Name()] = cat
		}
		for _, t := range cat.Tools {
			toolRefs = append(toolRefs, hub.Ref{Server: c.Name(), Name: t.Name})
			tools = append(tools, entry{hub.Ref{Server: c.Name(), Name: t.Name}, t})
		}
		for _, p := range cat.Prompts {
			promptRefs = append(promptRefs, hub.Ref{Server: c.Name(), Name: p.Name})
			prompts = append(prompts, entry{hub.Ref{Server: c.Name(), Name: p.Name}, p})
		}
		for _, r := range cat.Resources {
			resources = append(resources, entry{hub.Ref{Server: c.Name(), Name: r.URI}, r})
		}
		for _, t := range cat.Templates {
			templates = append(templates, entry{hub.Ref{Server: c.Name(), Name: t.URITemplate}, t})
		}
	}
	v.toolRefs = hub.NewNames(toolRefs)
	v.promptRef = hub.NewNames(promptRefs)

	// Tools.
	want := map[string][]byte{}
	for _, e := range tools {
		t := *e.item.(*mcp.Tool)
		if v.single == "" {
			t.Name, _ = v.toolRefs.Name(e.ref)
			if t.Title == "" {
				t.Title = e.item.(*mcp.Tool).Name
			}
		}
		if !validInputSchema(t.InputSchema) {
			v.g.logger.Warn("tool skipped: input schema is not an object schema", slog.String("server", e.ref.Server), slog.String("tool", e.ref.Name))
			continue
		}
		b, _ := json.Marshal(&t)
		want[t.Name] = b
		if string(v.tools[t.Name]) != string(b) || announced[e.ref.Server] == "tools" {
			// Re-adding an unchanged tool makes the SDK announce the
			// list change that the upstream server announced.
			h := v.toolHandler(e.ref)
			if t.Meta[authorizeMeta] != nil {
				h = v.authorizeHandler(e.ref.Server)
			}
			v.server.AddTool(&t, h)
			if announced[e.ref.Server] == "tools" {
				delete(announced, e.ref.Server)
			}
		}
	}
	v.tools = removeMissing(v.tools, want, v.server.RemoveTools)

	// Prompts.
	want = map[string][]byte{}
	for _, e := range prompts {
		p := *e.item.(*mcp.Prompt)
		if v.single == "" {
			p.Name, _ = v.promptRef.Name(e.ref)
			if p.Title == "" {
				p.Title = e.item.(*mcp.Prompt).Name
			}
		}
		b, _ := json.Marshal(&p)
		want[p.Name] = b
		if string(v.prompts[p.Name]) != string(b) || announced[e.ref.Server] == "prompts" {
			v.server.AddPrompt(&p, v.promptHandler(e.ref))
			if announced[e.ref.Server] == "prompts" {
				delete(announced, e.ref.Server)
			}
		}
	}
	v.prompts = removeMissing(v.prompts, want, v.server.RemovePrompts)

	// Resources: URIs stay as they are unless two servers offer the same
	// one; the later server's copy is then addressed under a switchboard:
	// URI naming its server.
	v.resRefs = map[string]hub.Ref{}
	want = map[string][]byte{}
	for _, e := range resources {
		r := *e.item.(*mcp.Resource)
		if _, taken := v.resRefs[r.URI]; taken {
			r.URI = collisionURI(e.ref.Server, r.URI)
		}
		v.resRefs[r.URI] = e.ref
		b, _ := json.Marshal(&r)
		want[r.URI] = b
		if string(v.resources[r.URI]) != string(b) || announced[e.ref.Server] == "resources" {
			v.server.AddResource(&r, v.readHandler)
			if announced[e.ref.Server] == "resources" {
				delete(announced, e.ref.Server)
			}
		}
	}
	v.resources = removeMissing(v.resources, want, v.server.RemoveResources)

	v.tmplRefs = map[string]hub.Ref{}
	v.tmplOrder = v.tmplOrder[:0]
	want = map[string][]byte{}
	for _, e := range templates {
		t := *e.item.(*mcp.ResourceTemplate)
		if _, taken := v.tmplRefs[t.URITemplate]; taken {
			t.URITemplate = collisionURI(e.ref.Server, t.URITemplate)
		}
		v.tmplRefs[t.URITemplate] = e.ref
		v.tmplOrder = append(v.tmplOrder, t.URITemplate)
		b, _ := json.Marshal(&t)
		want[t.URITemplate] = b
		if string(v.templates[t.URITemplate]) != string(b) {
			if err := addTemplate(v.server, &t, v.readHandler); err != nil {
				v.g.logger.Warn("resource template skipped", slog.String("server", e.ref.Server), slog.String("template", t.URITemplate), slog.String("error", err.Error()))
				delete(want, t.URITemplate)
			}
		}
	}
	v.templates = removeMissing(v.templates, want, v.server.RemoveResourceTemplates)
}

func addTemplate(s *mcp.Server, t *mcp.ResourceTemplate, h mcp.ResourceHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	s.AddResourceTemplate(t, h)
	return nil
}

func removeMissing(have, want map[string][]byte, remove func(...string)) map[string][]byte {
	var gone []string
	for k := range have {
		if _, ok := want[k]; !ok {
			gone = append(gone, k)
		}
	}
	if len(gone) > 0 {
		remove(gone...)
	}
	return want
}

const collisionScheme = "switchboard"

func collisionURI(server, uri string) string {
	return collisionScheme + "://" + url.PathEscape(server) + "/" + uri
}

func validInputSchema(s any) bool {
	if s == nil {
		return false
	}
	var m map[string]any
	b, err := json.Marshal(s)
	if err != nil || json.Unmarshal(b, &m) != nil {
		return false
	}
	return m["type"] == "object"
}

func (v *view) conn(server string) (*hub.Conn, error) { return v.g.hub.Conn(server) }

func (v *view) toolHandler(ref hub.Ref) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, err := v.conn(ref.Server)
		if err != nil {
			return nil, err
		}
		caller := v.caller(ctx, req)
		p := &mcp.CallToolParams{Meta: req.Params.Meta, Name: ref.Name, InputResponses: req.Params.InputResponses, RequestState: req.Params.RequestState}
		if len(req.Params.Arguments) > 0 {
			p.Arguments = req.Params.Arguments
		}
		if p.RequestState == authorizeState {
			// The retry of a call whose answer asked a 2026-07-28 client
			// to open the sign-in page (see authorizeInBand).
			if err := awaitInBandAuthorization(ctx, c, caller, p.InputResponses); err != nil {
				return v.g.toolError(ref, err, caller.Lang)
			}
			p.InputResponses, p.RequestState = nil, ""
		}
		res, err := c.CallTool(ctx, caller, p)
		var ae *hub.AuthorizationError
		if errors.As(err, &ae) {
			if res := authorizeInBand(caller, ae); res != nil {
				return res, nil
			}
			if askToAuthorize(ctx, c, caller, ae) {
				res, err = c.CallTool(ctx, caller, p)
			}
		}
		if err != nil {
			return v.g.toolError(ref, err, caller.Lang)
		}
		return res, nil
	}
}

func (v *view) promptHandler(ref hub.Ref) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		c, err := v.conn(ref.Server)
		if err != nil {
			return nil, err
		}
		p := *req.Params
		p.Name = ref.Name
		res, err := c.GetPrompt(ctx, v.caller(ctx, req), &p)
		return res, rpcError(err)
	}
}

// resolveURI maps a downstream resource URI to its server and upstream URI.
func (v *view) resolveURI(uri string) (hub.Ref, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.resRefs[uri]; ok {
		return r, true
	}
	if rest, ok := strings.CutPrefix(uri, collisionScheme+"://"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 {
			if server, err := url.PathUnescape(rest[:i]); err == nil {
				return hub.Ref{Server: server, Name: rest[i+1:]}, true
			}
		}
	}
	// A URI matched by a template: the first template (in catalog order)
	// whose pattern matches wins, as in the SDK's own lookup.
	for _, t := range v.tmplOrder {
		if templateMatches(t, uri) {
			return hub.Ref{Server: v.tmplRefs[t].Server, Name: uri}, true
		}
	}
	if v.single != "" {
		return hub.Ref{Server: v.single, Name: uri}, true
	}
	return hub.Ref{}, false
}

func (v *view) readHandler(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	ref, ok := v.resolveURI(req.Params.URI)
	if !ok {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	c, err := v.conn(ref.Server)
	if err != nil {
		return nil, err
	}
	p := *req.Params
	p.URI = ref.Name
	res, err := c.ReadResource(ctx, v.caller(ctx, req), &p)
	if err != nil {
		return nil, rpcError(err)
	}
	if ref.Name != req.Params.URI {
		for _, rc := range res.Contents {
			if rc.URI == ref.Name {
				rc.URI = req.Params.URI
			}
		}
	}
	return res, nil
}

func (v *view) complete(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := *req.Params
	if p.Ref == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing ref"}
	}
	ref := *p.Ref
	var server string
	switch ref.Type {
	case "ref/prompt":
		if v.single != "" {
			server = v.single
		} else {
			v.mu.Lock()
			r, ok := v.promptRef.Lookup(ref.Name)
			v.mu.Unlock()
			if !ok {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown prompt %q", ref.Name)}
			}
			server, ref.Name = r.Server, r.Name
		}
	case "ref/resource":
		r, ok := v.resolveTemplate(ref.URI)
		if !ok {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown resource %q", ref.URI)}
		}
		server, ref.URI = r.Server, r.Name
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown ref type %q", ref.Type)}
	}
	p.Ref = &ref
	c, err := v.conn(server)
	if err != nil {
		return nil, err
	}
	res, err := c.Complete(ctx, v.caller(ctx, req), &p)
	return res, rpcError(err)
}

func (v *view) resolveTemplate(uri string) (hub.Ref, bool) {
	if v.single != "" {
		return hub.Ref{Server: v.single, Name: uri}, true
	}
	v.mu.Lock()
	r, ok := v.tmplRefs[uri]
	v.mu.Unlock()
	if ok {
		return r, true
	}
	return v.resolveURI(uri)
}

func (v *view) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	ref, ok := v.resolveURI(req.Params.URI)
	if !ok {
		return mcp.ResourceNotFoundError(req.Params.URI)
	}
	c, err := v.conn(ref.Server)
	if err != nil {
		return err
	}
	return rpcError(c.Subscribe(ctx, v.caller(ctx, req), ref.Name))
}

func (v *view) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	ref, ok := v.resolveURI(req.Params.URI)
	if !ok {
		return nil
	}
	c, err := v.conn(ref.Server)
	if err != nil {
		return err
	}
	return rpcError(c.Unsubscribe(ctx, v.caller(ctx, req), ref.Name))
}

// downstreamURI maps an upstream resource URI back to the view's URI.
func (v *view) downstreamURI(server, uri string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.resRefs[uri]; ok && r.Server == server {
		return uri
	}
	if r, ok := v.resRefs[collisionURI(server, uri)]; ok && r.Server == server {
		return collisionURI(server, uri)
	}
	return uri
}

// instructionsMiddleware answers initialize with the aggregated
// serverInstructions as they are now: servers that connected after the
// view was made (at start, or a user's per-user servers) sent theirs since.
func (v *view) instructionsMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if ir, ok := res.(*mcp.InitializeResult); ok && err == nil {
			ir.Instructions = v.g.aggregateInstructions(v.user, v.allow)
		}
		return res, err
	}
}

// setLevelMiddleware passes logging/setLevel on to the upstream servers; the
// SDK server records the level for its own filtering as well.
func (v *view) setLevelMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method != "logging/setLevel" {
			return next(ctx, method, req)
		}
		p, _ := req.GetParams().(*mcp.SetLoggingLevelParams)
		if p != nil {
			for _, c := range v.servers() {
				cat := c.Catalog()
				if cat == nil || cat.Init == nil || cat.Init.Capabilities == nil || cat.Init.Capabilities.Logging == nil {
					continue
				}
				if err := c.SetLoggingLevel(ctx, v.caller(ctx, req), p.Level); err != nil && v.single != "" {
					return nil, rpcError(err)
				}
			}
		}
		return next(ctx, method, req)
	}
}

// caller returns the hub caller of a request to the view.
func (v *view) caller(ctx context.Context, req mcp.Request) hub.Caller {
	c := callerOf(ctx, req)
	if v.asUser != "" {
		c.User = v.asUser
	}
	return c
}

// rpcError passes an upstream JSON-RPC error through unchanged and turns the
// hub's own errors into internal errors with a message for people.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	var rpc *jsonrpc.Error
	var ue *hub.UnavailableError
	if !errors.As(err, &ue) && errors.As(err, &rpc) {
		return rpc
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
}

// toolError reports a failure to reach the tool as a tool result with
// isError, so that a model sees it, and passes protocol errors from the
// upstream server through unchanged.
func (g *Gateway) toolError(ref hub.Ref, err error, lang string) (*mcp.CallToolResult, error) {
	var rpc *jsonrpc.Error
	var ue *hub.UnavailableError
	if !errors.As(err, &ue) && errors.As(err, &rpc) {
		return nil, rpc
	}
	if errors.Is(err, context.Canceled) {
		return nil, err
	}
	g.logger.Warn("tool call failed", slog.String("server", ref.Server), slog.String("tool", ref.Name), slog.String("error", err.Error()))
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: hub.Message(err, lang)}}}, nil
}
