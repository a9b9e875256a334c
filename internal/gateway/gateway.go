// Package gateway is Switchboard's downstream MCP server. It serves every
// upstream server the hub reaches, transparently at /mcp/{server} and
// aggregated at /mcp (tools and prompts named "{server}__{name}"), over
// streamable HTTP, the legacy SSE transport and stdio, and forwards every
// protocol feature in both directions.
//
// cmd/switchboard imports it; it imports hub and the MCP SDK.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"

	"github.com/switchboard-mcp/switchboard/internal/cluster"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// Options configure a Gateway. The zero value is valid.
type Options struct {
	// Logger receives the gateway's logs. Nil discards them.
	Logger *slog.Logger
	// Version is reported as the aggregate server's version. Empty: "dev".
	Version string
	// AllowedOrigins lists browser origins, besides loopback ones and
	// PublicURL's, allowed to call the MCP endpoints. Nil: none.
	AllowedOrigins []string
	// PublicURL is the gateway's public address; its origin is allowed.
	PublicURL string
	// MaxRequestBytes bounds a request body. Zero: 4 MiB.
	MaxRequestBytes int64
	// SessionTimeout closes downstream sessions idle for this long. Zero: 1 h.
	SessionTimeout time.Duration
	// MaxSessionsPerUser bounds the stateful sessions (streamable HTTP and
	// SSE) one user holds on this replica: at the limit, opening another
	// closes the user's longest-idle session, or is refused with 429 when
	// all of them have a request in flight. Zero:
	// DefaultMaxSessionsPerUser. Negative: no limit.
	MaxSessionsPerUser int
	// UserOf names the user a request is made by ("" for anonymous). A
	// session belongs to the user who opened it: presented by anyone else
	// it does not exist (404). Nil: sessions are not bound to users.
	UserOf func(r *http.Request) string
	// Access returns which servers the request's user may use, and a key
	// that is equal for requests with equal access (for example the sorted
	// list of allowed servers). Nil: everyone may use every server.
	Access func(r *http.Request) (key string, allow func(server string) bool)

	// Sessions, with ReplicaURL and SignForward, shares stateful sessions
	// between replicas behind one load balancer: every session this
	// replica opens (streamable HTTP and legacy SSE) is claimed for it with
	// its user, and a request for a session that another replica holds is
	// passed to that replica. Wrap the protected handler in
	// AcceptForwarded so that such requests are accepted. Nil: sessions
	// are known only to the replica that opened them.
	Sessions cluster.Directory
	// ReplicaURL is this replica's internal base URL, where the other
	// replicas reach it (e.g. "http://10.0.0.5:8080"). Required with
	// Sessions.
	ReplicaURL string
	// SignForward authenticates the user and session of a request passed
	// between replicas; every replica must compute the same MAC (for
	// example secrets.Keyring.MAC with a fixed purpose over a shared key
	// file). Required with Sessions.
	SignForward func(data []byte) []byte
	// ForwardTransport carries requests passed to other replicas. Nil:
	// http.DefaultTransport.
	ForwardTransport http.RoundTripper
}

// Gateway serves the hub's servers to MCP clients.
type Gateway struct {
	hub       *hub.Hub
	opts      Options
	logger    *slog.Logger
	sdkLogger *slog.Logger
	version   string
	origins   map[string]bool
	caps      *sessionCap // nil: no limit

	kick chan struct{} // asks the sync loop to re-sync views
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex       // guards the fields below
	agg      *view            // for clients before 2026-07-28, all servers
	aggM     *view            // for 2026-07-28 clients, all servers
	aggs     map[string]*view // aggregate views for other access sets, by access key ("+m" for modern)
	singles  map[string]*view // by server name, "+m" appended for modern views
	handlers map[string]http.Handler
	owners   map[string]owner // downstream session id -> who opened it
}

// owner is what the gateway knows of a session it holds.
type owner struct {
	user    string
	hkey    string // key in handlers of the SDK handler holding the session
	seen    time.Time
	claimed time.Time // last Claim in opts.Sessions; zero: not claimed
}

// New creates a gateway over h. Call Changed, ResourceUpdated and Log from
// the hub's callbacks, and Close when done.
func New(h *hub.Hub, opts *Options) *Gateway {
	g := &Gateway{hub: h, singles: map[string]*view{}, handlers: map[string]http.Handler{},
		aggs: map[string]*view{}, owners: map[string]owner{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if opts != nil {
		g.opts = *opts
	}
	g.logger = g.opts.Logger
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	g.sdkLogger = hub.SDKLogger(g.logger)
	g.version = g.opts.Version
	if g.version == "" {
		g.version = "dev"
	}
	if g.opts.MaxRequestBytes == 0 {
		g.opts.MaxRequestBytes = 4 << 20
	}
	if g.opts.SessionTimeout == 0 {
		g.opts.SessionTimeout = time.Hour
	}
	g.origins = map[string]bool{}
	for _, o := range g.opts.AllowedOrigins {
		g.origins[strings.TrimRight(o, "/")] = true
	}
	if u, err := url.Parse(g.opts.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
		g.origins[u.Scheme+"://"+u.Host] = true
	}
	if g.opts.Sessions != nil && (g.opts.ReplicaURL == "" || g.opts.SignForward == nil) {
		panic("gateway: Options.Sessions needs ReplicaURL and SignForward")
	}
	g.opts.ReplicaURL = strings.TrimRight(g.opts.ReplicaURL, "/")
	g.caps = newSessionCap(g.opts.MaxSessionsPerUser, g.opts.SessionTimeout, time.Now)
	g.agg = g.newView("", nil, false)
	g.aggM = g.newView("", nil, true)
	g.agg.sync()
	g.aggM.sync()
	go g.syncLoop()
	return g
}

// Close stops the gateway's background work and closes the downstream
// sessions still open, whose connections would otherwise keep their
// goroutines until the idle timeout.
func (g *Gateway) Close() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
	for _, v := range g.allViews() {
		for ss := range v.server.Sessions() {
			ss.Close()
		}
	}
}

func (g *Gateway) syncLoop() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
		}
		g.Sync()
	}
}

// Changed tells the gateway that a server's state or catalog changed.
func (g *Gateway) Changed(server string) {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Sync re-syncs every view now; tests and start-up use it to avoid waiting
// for the background loop.
func (g *Gateway) Sync() {
	for _, v := range g.allViews() {
		v.sync()
	}
}

func (g *Gateway) allViews() []*view {
	g.mu.Lock()
	defer g.mu.Unlock()
	views := []*view{g.agg, g.aggM}
	for _, v := range g.aggs {
		views = append(views, v)
	}
	for _, v := range g.singles {
		views = append(views, v)
	}
	return views
}

// views returns the views showing server. For what a user's own
// connection sent (user != ""), only that user's views.
func (g *Gateway) views(server, user string) []*view {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*view
	if user == "" {
		out = append(out, g.agg, g.aggM)
	}
	for _, v := range g.aggs {
		if v.shows(server) && (user == "" || v.user == user) {
			out = append(out, v)
		}
	}
	for _, v := range g.singles {
		if v.single == server && (user == "" || v.user == user) {
			out = append(out, v)
		}
	}
	return out
}

// ResourceUpdated passes a resources/updated notification to the downstream
// sessions subscribed to that resource.
func (g *Gateway) ResourceUpdated(server string, p *mcp.ResourceUpdatedNotificationParams) {
	g.resourceUpdated(g.views(server, ""), server, p)
}

// UserResourceUpdated is ResourceUpdated for a user's own connection: only
// that user's sessions hear of it.
func (g *Gateway) UserResourceUpdated(user, server string, p *mcp.ResourceUpdatedNotificationParams) {
	g.resourceUpdated(g.views(server, user), server, p)
}

func (g *Gateway) resourceUpdated(views []*view, server string, p *mcp.ResourceUpdatedNotificationParams) {
	for _, v := range views {
		q := *p
		q.URI = v.downstreamURI(server, p.URI)
		v.server.ResourceUpdated(context.Background(), &q)
	}
}

// Log passes a log message that no request caused to the sessions of the
// views showing server; each session's own level filters it.
func (g *Gateway) Log(server string, p *mcp.LoggingMessageParams) {
	g.log(g.views(server, ""), server, p)
}

// UserLog is Log for a user's own connection.
func (g *Gateway) UserLog(user, server string, p *mcp.LoggingMessageParams) {
	g.log(g.views(server, user), server, p)
}

func (g *Gateway) log(views []*view, server string, p *mcp.LoggingMessageParams) {
	for _, v := range views {
		q := *p
		if v.single == "" && q.Logger == "" {
			q.Logger = server
		}
		for ss := range v.server.Sessions() {
			ss.Log(context.Background(), &q)
		}
	}
}

// ServeStdio serves the aggregate view over t (for example stdin/stdout)
// until the client disconnects or ctx is done.
func (g *Gateway) ServeStdio(ctx context.Context, t mcp.Transport) error {
	return g.agg.server.Run(ctx, t)
}

// ServeStdioAs serves user's aggregate view over t: the servers allow
// admits, per-user ones with user's credentials and OAuth tokens. akey
// names the set allow admits, as Options.Access does.
func (g *Gateway) ServeStdioAs(ctx context.Context, t mcp.Transport, user, akey string, allow func(string) bool) error {
	// The view is this process's alone (switchboard stdio --user), so its
	// requests can be marked as the user's before they reach the view.
	v := g.aggregate(akey+"\x00stdio-user="+user, allow, false, user)
	v.server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			return next(hub.WithUser(ctx, user), method, req)
		}
	})
	return v.server.Run(ctx, t)
}

// Aggregate returns the SDK server of the aggregate view, for in-process use.
func (g *Gateway) Aggregate() *mcp.Server { return g.agg.server }

// single returns the transparent view of one server, connecting to it first
// if needed (for servers with startup: false).
func (g *Gateway) single(ctx context.Context, name string, modern bool, user string) (*view, error) {
	key := name
	if user != "" {
		key += "@" + user
	}
	if modern {
		key += "+m"
	}
	g.mu.Lock()
	v := g.singles[key]
	g.mu.Unlock()
	if v != nil {
		return v, nil
	}
	c, err := g.hub.Conn(name)
	if err != nil {
		return nil, err
	}
	if c, err = c.ForUser(user); err != nil {
		return nil, err
	}
	if modern {
		c = c.Modern()
	}
	if _, err := c.Session(hub.WithUser(ctx, user)); err != nil {
		return nil, err
	}
	cat := c.Catalog()
	g.mu.Lock()
	defer g.mu.Unlock()
	if v := g.singles[key]; v != nil {
		return v, nil
	}
	v = g.newView(name, cat.Init, modern)
	v.user = user
	v.sync()
	g.singles[key] = v
	return v, nil
}

// Handler serves the MCP endpoints:
//
//	/mcp              aggregate view, streamable HTTP
//	/mcp/{server}     one server, transparently, streamable HTTP
//	/sse, /sse/{server}  the same over the legacy HTTP+SSE transport
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.endpoint("", false))
	mux.Handle("/mcp/{server}", g.endpoint("{server}", false))
	mux.Handle("/sse", g.endpoint("", true))
	mux.Handle("/sse/{server}", g.endpoint("{server}", true))
	return g.checkOrigin(mux)
}

func (g *Gateway) endpoint(pattern string, sse bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if pattern != "" {
			name = r.PathValue("server")
		}
		akey, allow := "", func(string) bool { return true }
		if g.opts.Access != nil {
			akey, allow = g.opts.Access(r)
		}
		user := ""
		if g.opts.UserOf != nil {
			user = g.opts.UserOf(r)
		}
		// A user who sees a server that connects per user gets views of
		// their own, showing their connections' catalogs.
		vuser := ""
		if user != "" && g.seesUserScoped(name, allow) {
			vuser = user
			akey += "\x00user=" + user
		}
		if name != "" && !allow(name) {
			// Not "forbidden": a server the user may not use does not
			// exist for them.
			writeJSONError(w, http.StatusNotFound, fmt.Sprintf("%v %q", hub.ErrUnknown, name))
			return
		}
		hkey := handlerKey(name, sse, akey, vuser)
		sid := sessionOf(r, sse)
		if sid != "" {
			if !g.ownedBy(sid, user) {
				writeJSONError(w, http.StatusNotFound, "session not found")
				return
			}
			if g.forward(w, r, sid, user, hkey) {
				return
			}
		}
		h, err := g.handler(r.Context(), name, sse, akey, allow, vuser)
		if err != nil {
			status := http.StatusBadGateway
			if _, unknown := g.hub.Conn(name); unknown != nil {
				status = http.StatusNotFound
			}
			writeJSONError(w, status, err.Error())
			return
		}
		g.serve(w, r, h, sse, sid, user, hkey)
	})
}

// sessionOf returns the session a request is for: its Mcp-Session-Id, or
// for the legacy SSE transport the sessionid of a message POST.
func sessionOf(r *http.Request, sse bool) string {
	if sse {
		if r.Method != http.MethodPost {
			return ""
		}
		return r.URL.Query().Get("sessionid")
	}
	return r.Header.Get("Mcp-Session-Id")
}

// serve passes a request to the SDK handler h, noting the sessions it
// opens and closes.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, h http.Handler, sse bool, sid, user, hkey string) {
	if user != "" {
		h = withUser(user, h)
	}
	switch {
	case sid != "":
		g.refresh(r.Context(), sid)
		end := func() {}
		if r.Method == http.MethodPost {
			end = g.caps.begin(sid)
		}
		rec := &sessionRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		end()
		if r.Method == http.MethodDelete && rec.status >= 200 && rec.status < 300 {
			g.closed(sid)
		}
	case sse && r.Method == http.MethodGet:
		adm, err := g.caps.admit(user)
		if err != nil {
			writeTooManySessions(w, g.caps.max)
			return
		}
		defer adm.release()
		// The SSE session lives as long as this request; the SDK names
		// it in the first event it writes.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		r = r.WithContext(ctx)
		ended := make(chan struct{})
		defer close(ended)
		rec := &sseRecorder{ResponseWriter: w}
		rec.record = func(sid string) {
			rec.sid.Store(&sid)
			g.opened(r.Context(), sid, user, hkey)
			// Closing waits until the SDK has forgotten the session.
			adm.opened(sid, func() { cancel(); <-ended })
		}
		stop := g.keepClaimed(rec.id)
		h.ServeHTTP(rec, r)
		stop()
		if id := rec.id(); id != "" {
			g.closed(id)
		}
	case !sse && r.Method == http.MethodPost && !stateless(r):
		// Without a session id, a POST is an initialize that opens one.
		adm, err := g.caps.admit(user)
		if err != nil {
			writeTooManySessions(w, g.caps.max)
			return
		}
		defer adm.release()
		h.ServeHTTP(&sessionRecorder{ResponseWriter: w, record: func(sid string) {
			g.opened(r.Context(), sid, user, hkey)
			adm.opened(sid, func() { g.endSession(h, sid, user) })
		}}, r)
	default:
		h.ServeHTTP(&sessionRecorder{ResponseWriter: w, record: func(sid string) { g.opened(r.Context(), sid, user, hkey) }}, r)
	}
}

// withUser hands the signed-in user to the SDK, which keeps it with the
// session (refusing the session to anyone else) and passes it to handlers
// in RequestExtra.TokenInfo. The SDK accepts it only from its own bearer
// middleware, so that middleware is given the user directly; the request
// was authorized before it reached the gateway and carries no token.
func withUser(user string, h http.Handler) http.Handler {
	verify := func(context.Context, string, *http.Request) (*auth.TokenInfo, error) {
		return &auth.TokenInfo{UserID: user, Expiration: time.Now().Add(time.Hour)}, nil
	}
	inner := auth.RequireBearerToken(verify, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization")
		h.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer authorized-upstream-of-the-gateway")
		inner.ServeHTTP(w, r)
	})
}

// seesUserScoped reports whether the endpoint for name (all servers when
// "") shows a server that connects per user.
func (g *Gateway) seesUserScoped(name string, allow func(string) bool) bool {
	for _, c := range g.hub.Conns() {
		if (name == "" || c.Name() == name) && allow(c.Name()) && c.UserScoped() {
			return true
		}
	}
	return false
}

// handlerKey names the SDK handler serving an endpoint for an access set.
func handlerKey(name string, sse bool, akey, user string) string {
	key := name
	if sse {
		key = "sse/" + name
	}
	if name == "" && akey != "" {
		key += "|" + akey
	}
	if name != "" && user != "" {
		key += "@" + user
	}
	return key
}

func (g *Gateway) handler(ctx context.Context, name string, sse bool, akey string, allow func(string) bool, user string) (http.Handler, error) {
	key := handlerKey(name, sse, akey, user)
	g.mu.Lock()
	h := g.handlers[key]
	g.mu.Unlock()
	if h != nil {
		return h, nil
	}
	v, vm := g.agg, g.aggM
	if name == "" && akey != "" {
		v, vm = g.aggregate(akey, allow, false, user), g.aggregate(akey, allow, true, user)
	}
	if name != "" {
		var err error
		if v, err = g.single(ctx, name, false, user); err != nil {
			return nil, err
		}
		if !sse {
			if vm, err = g.single(ctx, name, true, user); err != nil {
				return nil, err
			}
		}
	}
	srv, srvM := v.server, vm.server
	get := func(*http.Request) *mcp.Server { return srv }
	getM := func(*http.Request) *mcp.Server { return srvM }
	if sse {
		h = mcp.NewSSEHandler(get, &mcp.SSEOptions{MaxRequestBodyBytes: g.opts.MaxRequestBytes})
	} else {
		h = &versionRouter{
			stateful: mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{
				Logger:              g.sdkLogger,
				MaxRequestBodyBytes: g.opts.MaxRequestBytes,
				SessionTimeout:      g.opts.SessionTimeout,
			}),
			stateless: mcp.NewStreamableHTTPHandler(getM, &mcp.StreamableHTTPOptions{
				Logger:              g.sdkLogger,
				MaxRequestBodyBytes: g.opts.MaxRequestBytes,
				Stateless:           true,
			}),
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if h2 := g.handlers[key]; h2 != nil {
		return h2, nil
	}
	g.handlers[key] = h
	return h, nil
}

// aggregate returns the aggregate view for one access set.
func (g *Gateway) aggregate(akey string, allow func(string) bool, modern bool, user string) *view {
	k := akey
	if modern {
		k += "+m"
	}
	g.mu.Lock()
	v := g.aggs[k]
	g.mu.Unlock()
	if v != nil {
		return v
	}
	v = g.newView("", nil, modern)
	v.allow = allow
	v.user = user
	if user != "" {
		// First use: the user's connections start connecting so that
		// their tools appear (list_changed follows).
		for _, c := range g.hub.Conns() {
			if allow(c.Name()) && c.UserScoped() {
				if u, err := c.ForUser(user); err == nil {
					u.Warm()
				}
			}
		}
	}
	v.sync()
	g.mu.Lock()
	defer g.mu.Unlock()
	if v2 := g.aggs[k]; v2 != nil {
		return v2
	}
	g.aggs[k] = v
	return v
}

func (g *Gateway) ownedBy(sid, user string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	o, ok := g.owners[sid]
	if !ok {
		// Unknown to us: another replica may hold it (see forward), or
		// the SDK answers for sessions it does not have.
		return true
	}
	if o.user != user {
		return false
	}
	o.seen = time.Now()
	g.owners[sid] = o
	return true
}

// opened notes a session the SDK just opened, and claims it for this
// replica.
func (g *Gateway) opened(ctx context.Context, sid, user, hkey string) {
	now := time.Now()
	g.mu.Lock()
	if len(g.owners)%1024 == 1023 {
		for k, o := range g.owners {
			if now.Sub(o.seen) > g.opts.SessionTimeout {
				delete(g.owners, k)
			}
		}
	}
	g.owners[sid] = owner{user: user, hkey: hkey, seen: now}
	g.mu.Unlock()
	// Claimed before the client learns the id, so that its next request
	// finds the session wherever it lands.
	g.claim(ctx, sid)
}

// closed forgets a session the client ended.
func (g *Gateway) closed(sid string) {
	g.mu.Lock()
	delete(g.owners, sid)
	g.mu.Unlock()
	g.caps.forget(sid)
	g.release(sid)
}

// sessionRecorder notes the session id the SDK assigns in its response to
// an initialize request, and the response's status.
type sessionRecorder struct {
	http.ResponseWriter
	record func(sid string) // nil: record nothing
	status int              // 0 until WriteHeader
}

func (s *sessionRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if sid := s.Header().Get("Mcp-Session-Id"); sid != "" && s.record != nil {
			s.record(sid)
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

func (s *sessionRecorder) Flush() {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *sessionRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// versionRouter sends requests of the 2026-07-28 revision, which has no
// sessions, to a stateless handler, and everything else to a stateful one,
// so that one endpoint serves clients of every revision.
type versionRouter struct {
	stateful, stateless http.Handler
}

func (v *versionRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if stateless(r) {
		v.stateless.ServeHTTP(w, r)
		return
	}
	v.stateful.ServeHTTP(w, r)
}

// stateless reports whether r is of the 2026-07-28 revision, which has no
// sessions.
func stateless(r *http.Request) bool {
	return r.Header.Get("Mcp-Session-Id") == "" && r.Header.Get("Mcp-Protocol-Version") >= "2026-07-28"
}

// checkOrigin refuses browser requests from foreign origins (DNS rebinding
// and cross-site requests): only loopback origins, the public URL's origin
// and configured ones are allowed. Requests without an Origin header are not
// from a browser page and pass.
func (g *Gateway) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !g.originAllowed(o) {
			writeJSONError(w, http.StatusForbidden, "origin "+o+" is not allowed")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gateway) originAllowed(o string) bool {
	o = strings.TrimRight(o, "/")
	if g.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": -32000, "message": msg},
	})
}

// aggregateInstructions joins the instructions of servers configured with
// serverInstructions, in LibreChat's manner.
func (g *Gateway) aggregateInstructions() string {
	var b strings.Builder
	for _, c := range g.hub.Conns() {
		cfg := c.Config()
		if cfg == nil || !cfg.ServerInstructions.Enabled {
			continue
		}
		text := cfg.ServerInstructions.Text
		if text == "" {
			if cat := c.Catalog(); cat != nil && cat.Init != nil {
				text = cat.Init.Instructions
			}
		}
		if text == "" {
			continue
		}
		b.WriteString("## " + c.Name() + " MCP server instructions\n\n" + text + "\n\n")
	}
	return strings.TrimSpace(b.String())
}

func templateMatches(tmpl, uri string) bool {
	t, err := uritemplate.New(tmpl)
	if err != nil {
		return false
	}
	return t.Regexp().MatchString(uri)
}
