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
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/yosida95/uritemplate/v3"

	"github.com/switchboard-mcp/switchboard/internal/cluster"
	"github.com/switchboard-mcp/switchboard/internal/httpguard"
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
	// Verify checks the bearer token of every request to an MCP endpoint
	// (the authorization server's verification, as the SDK's
	// auth.TokenVerifier); the request is made by TokenInfo.UserID. A
	// session belongs to the user who opened it: presented by anyone else
	// it does not exist (404). A request without a valid token gets 401
	// with a challenge naming ResourceMetadataURL. Nil: requests are
	// anonymous and sessions are not bound to users.
	Verify auth.TokenVerifier
	// ResourceMetadataURL returns the RFC 9728 metadata URL of the
	// resource at path, named in the 401 challenge. Nil: none named.
	ResourceMetadataURL func(path string) string
	// Scope is the scope every token must carry, named in the challenge
	// (a token without it gets 403). Empty: none required.
	Scope string
	// Access returns which servers the verified caller (ti; nil without
	// Verify) may use, and a key that is equal for callers with equal
	// access (for example the sorted list of allowed servers). Nil:
	// everyone may use every server.
	Access func(r *http.Request, ti *auth.TokenInfo) (key string, allow func(server string) bool)

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
	guard     *httpguard.Policy
	caps      *sessionCap // nil: no limit

	kick chan struct{} // asks the sync loop to re-sync views
	stop chan struct{}
	done chan struct{}

	agg  *view // for clients before 2026-07-28, all servers, everyone's access
	aggM *view // the same for 2026-07-28 clients

	mu       sync.Mutex // guards the fields below
	views    map[viewKey]*view
	handlers map[handlerKey]*endpoint
	owners   map[string]owner // downstream session id -> who opened it
}

// viewKey names a view: what it shows, to whom, for which revision.
type viewKey struct {
	single string // the upstream server of a transparent view; "" for the aggregate
	access string // the access set's key; "": every server
	user   string // whose per-user bindings it shows; "": shared ones only
	modern bool   // for 2026-07-28 clients
}

// handlerKey names the SDK handler of one endpoint for one access set and
// user.
type handlerKey struct {
	single string
	sse    bool
	access string
	user   string
}

// endpoint is an SDK handler with the views it serves and its sessions.
type endpoint struct {
	h        http.Handler
	views    []viewKey
	sessions int       // open stateful sessions (see opened and closed)
	used     time.Time // last request
}

// owner is what the gateway knows of a session it holds.
type owner struct {
	user    string
	hkey    handlerKey // the SDK handler holding the session
	seen    time.Time
	claimed time.Time // last Claim in opts.Sessions; zero: not claimed
}

// New creates a gateway over h. Call Changed, ResourceUpdated and Log from
// the hub's callbacks, and Close when done.
func New(h *hub.Hub, opts *Options) *Gateway {
	g := &Gateway{hub: h, views: map[viewKey]*view{}, handlers: map[handlerKey]*endpoint{}, owners: map[string]owner{},
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
	g.guard = httpguard.New(&httpguard.Options{AllowedOrigins: g.opts.AllowedOrigins, PublicURL: g.opts.PublicURL})
	if g.opts.Sessions != nil && (g.opts.ReplicaURL == "" || g.opts.SignForward == nil) {
		panic("gateway: Options.Sessions needs ReplicaURL and SignForward")
	}
	g.opts.ReplicaURL = strings.TrimRight(g.opts.ReplicaURL, "/")
	g.caps = newSessionCap(g.opts.MaxSessionsPerUser, g.opts.SessionTimeout, time.Now)
	g.agg = g.newView(viewKey{}, nil)
	g.aggM = g.newView(viewKey{modern: true}, nil)
	g.agg.sync()
	g.aggM.sync()
	g.views[viewKey{}], g.views[viewKey{modern: true}] = g.agg, g.aggM
	h.SetObserver(g)
	go g.syncLoop()
	return g
}

var _ hub.Observer = (*Gateway)(nil)

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
	sweep := time.NewTicker(g.sweepEvery())
	defer sweep.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.kick:
			g.Sync()
		case <-sweep.C:
			g.sweep(time.Now())
		}
	}
}

func (g *Gateway) sweepEvery() time.Duration {
	return max(time.Second, min(time.Minute, g.opts.SessionTimeout/4))
}

// sweep forgets sessions unseen for the session timeout (the SDK has closed
// them) and evicts endpoints, with their views, that have no session left
// and no request for as long.
func (g *Gateway) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for sid, o := range g.owners {
		if now.Sub(o.seen) > g.opts.SessionTimeout {
			delete(g.owners, sid)
			if e := g.handlers[o.hkey]; e != nil {
				e.sessions--
			}
		}
	}
	for k, e := range g.handlers {
		if e.sessions <= 0 && now.Sub(e.used) > g.opts.SessionTimeout {
			g.evictLocked(k)
		}
	}
}

// hasUserLocked reports whether any endpoint of user is left.
func (g *Gateway) hasUserLocked(user string) bool {
	for k := range g.handlers {
		if k.user == user {
			return true
		}
	}
	return false
}

// evictLocked drops an endpoint and the views no other endpoint serves.
func (g *Gateway) evictLocked(k handlerKey) {
	e := g.handlers[k]
	if e == nil {
		return
	}
	delete(g.handlers, k)
	for _, vk := range e.views {
		if vk == (viewKey{}) || vk == (viewKey{modern: true}) {
			continue
		}
		used := false
		for _, o := range g.handlers {
			if slices.Contains(o.views, vk) {
				used = true
				break
			}
		}
		if !used {
			delete(g.views, vk)
		}
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
	views := make([]*view, 0, len(g.views))
	for _, v := range g.views {
		views = append(views, v)
	}
	return views
}

// viewsShowing returns the views showing server. For what a user's own
// binding sent (user != ""), only that user's views.
func (g *Gateway) viewsShowing(server, user string) []*view {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*view
	for k, v := range g.views {
		if v.shows(server) && (user == "" || k.user == user) {
			out = append(out, v)
		}
	}
	return out
}

// ResourceUpdated passes a resources/updated notification to the downstream
// sessions subscribed to that resource: for a user's own binding (user !=
// "") only that user's sessions hear of it.
func (g *Gateway) ResourceUpdated(user, server string, p *mcp.ResourceUpdatedNotificationParams) {
	for _, v := range g.viewsShowing(server, user) {
		q := *p
		q.URI = v.downstreamURI(server, p.URI)
		v.server.ResourceUpdated(context.Background(), &q)
	}
}

// Log passes a log message that no request caused to the sessions of the
// views showing server (for a user's own binding, that user's); each
// session's own level filters it.
func (g *Gateway) Log(user, server string, p *mcp.LoggingMessageParams) {
	for _, v := range g.viewsShowing(server, user) {
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
	// The view is this process's alone (switchboard stdio --user): every
	// request it serves is the user's.
	v := g.aggregate(ctx, akey+"\x00stdio-user="+user, allow, false, user)
	v.asUser = user
	return v.server.Run(ctx, t)
}

// Aggregate returns the SDK server of the aggregate view, for in-process use.
func (g *Gateway) Aggregate() *mcp.Server { return g.agg.server }

// single returns the transparent view of one server for user, connecting
// the binding first if needed (for servers with startup: false, and a
// user's first use).
func (g *Gateway) single(ctx context.Context, name string, modern bool, user string) (*view, error) {
	key := viewKey{single: name, user: user, modern: modern}
	g.mu.Lock()
	v := g.views[key]
	g.mu.Unlock()
	if v != nil {
		return v, nil
	}
	c, err := g.hub.Conn(name)
	if err != nil {
		return nil, err
	}
	l, err := c.LinkFor(hub.Caller{User: user, Revision: revisionOf(modern)})
	if err != nil {
		return nil, err
	}
	if _, err := l.Session(ctx); err != nil {
		return nil, err
	}
	cat := l.Catalog()
	v = g.newView(key, cat.Init)
	v.sync()
	g.mu.Lock()
	defer g.mu.Unlock()
	if v2 := g.views[key]; v2 != nil {
		return v2, nil
	}
	g.views[key] = v
	return v, nil
}

func revisionOf(modern bool) string {
	if modern {
		return "2026-07-28"
	}
	return ""
}

// Handler serves the MCP endpoints:
//
//	/mcp              aggregate view, streamable HTTP
//	/mcp/{server}     one server, transparently, streamable HTTP
//	/sse, /sse/{server}  the same over the legacy HTTP+SSE transport
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.authenticate(g.endpoint("", false)))
	mux.Handle("/mcp/{server}", g.authenticate(g.endpoint("{server}", false)))
	mux.Handle("/sse", g.authenticate(g.endpoint("", true)))
	mux.Handle("/sse/{server}", g.authenticate(g.endpoint("{server}", true)))
	return g.checkOrigin(mux)
}

// authenticate verifies the request's bearer token with Options.Verify
// through the SDK's own middleware, which hands the TokenInfo to the SDK
// handler: the SDK binds each session to its user and refuses it to
// anyone else.
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	if g.opts.Verify == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &auth.RequireBearerTokenOptions{}
		if g.opts.ResourceMetadataURL != nil {
			o.ResourceMetadataURL = g.opts.ResourceMetadataURL(r.URL.Path)
		}
		if g.opts.Scope != "" {
			o.Scopes = []string{g.opts.Scope}
		}
		auth.RequireBearerToken(g.opts.Verify, o)(next).ServeHTTP(w, r)
	})
}

// userOf returns the verified user of a request; "" when anonymous.
func userOf(r *http.Request) (string, *auth.TokenInfo) {
	ti := auth.TokenInfoFromContext(r.Context())
	if ti == nil {
		return "", nil
	}
	return ti.UserID, ti
}

func (g *Gateway) endpoint(pattern string, sse bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if pattern != "" {
			name = r.PathValue("server")
		}
		user, ti := userOf(r)
		akey, allow := "", func(string) bool { return true }
		if g.opts.Access != nil {
			akey, allow = g.opts.Access(r, ti)
		}
		if name != "" && !allow(name) {
			// Not "forbidden": a server the user may not use does not
			// exist for them.
			writeJSONError(w, http.StatusNotFound, fmt.Sprintf("%v %q", hub.ErrUnknown, name))
			return
		}
		// A user who sees a server that connects per user gets views of
		// their own, showing their bindings' catalogs.
		vuser := ""
		if user != "" && g.seesUserScoped(name, allow) {
			vuser = user
		}
		hkey := handlerKey{single: name, sse: sse, access: akey, user: vuser}
		if name != "" {
			hkey.access = "" // a transparent view shows one server; access was checked above
		}
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
		h, err := g.handler(r.Context(), hkey, allow)
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
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, h http.Handler, sse bool, sid, user string, hkey handlerKey) {
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
			adm.opened(sid, func() { g.endSession(hkey, sid, user) })
		}}, r)
	default:
		h.ServeHTTP(&sessionRecorder{ResponseWriter: w, record: func(sid string) { g.opened(r.Context(), sid, user, hkey) }}, r)
	}
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

func (g *Gateway) handler(ctx context.Context, key handlerKey, allow func(string) bool) (http.Handler, error) {
	now := time.Now()
	g.mu.Lock()
	if e := g.handlers[key]; e != nil {
		e.used = now
		g.mu.Unlock()
		return e.h, nil
	}
	g.mu.Unlock()
	v, vm := g.agg, g.aggM
	vk := []viewKey{{}, {modern: true}}
	switch {
	case key.single != "":
		var err error
		if v, err = g.single(ctx, key.single, false, key.user); err != nil {
			return nil, err
		}
		vk = []viewKey{v.key}
		if !key.sse {
			if vm, err = g.single(ctx, key.single, true, key.user); err != nil {
				return nil, err
			}
			vk = append(vk, vm.key)
		}
	case key.access != "" || key.user != "":
		v, vm = g.aggregate(ctx, key.access, allow, false, key.user), g.aggregate(ctx, key.access, allow, true, key.user)
		vk = []viewKey{v.key, vm.key}
	}
	srv, srvM := v.server, vm.server
	get := func(*http.Request) *mcp.Server { return srv }
	getM := func(*http.Request) *mcp.Server { return srvM }
	var h http.Handler
	if key.sse {
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
	if e := g.handlers[key]; e != nil {
		return e.h, nil
	}
	// The views may have been evicted while this handler was being made.
	for _, x := range []*view{v, vm} {
		if _, ok := g.views[x.key]; !ok {
			g.views[x.key] = x
		}
	}
	g.handlers[key] = &endpoint{h: h, views: vk, used: now}
	return h, nil
}

// aggregate returns the aggregate view for one access set and user. A
// user's first view waits until the user's per-user servers that can
// connect have (see hub.WarmUser), so that the first tools/list and the
// instructions show them.
func (g *Gateway) aggregate(ctx context.Context, akey string, allow func(string) bool, modern bool, user string) *view {
	key := viewKey{access: akey, user: user, modern: modern}
	g.mu.Lock()
	v := g.views[key]
	g.mu.Unlock()
	if v != nil {
		return v
	}
	if user != "" {
		g.hub.WarmUser(ctx, user, allow)
	}
	v = g.newView(key, nil)
	v.allow = allow
	v.sync()
	g.mu.Lock()
	defer g.mu.Unlock()
	if v2 := g.views[key]; v2 != nil {
		return v2
	}
	g.views[key] = v
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
	if e := g.handlers[o.hkey]; e != nil {
		e.used = o.seen
	}
	return true
}

// opened notes a session the SDK just opened, and claims it for this
// replica.
func (g *Gateway) opened(ctx context.Context, sid, user string, hkey handlerKey) {
	now := time.Now()
	g.mu.Lock()
	if _, dup := g.owners[sid]; !dup {
		if e := g.handlers[hkey]; e != nil {
			e.sessions++
		}
	}
	g.owners[sid] = owner{user: user, hkey: hkey, seen: now}
	g.mu.Unlock()
	// Claimed before the client learns the id, so that its next request
	// finds the session wherever it lands.
	g.claim(ctx, sid)
}

// closed forgets a session the client ended. The endpoint of a user's
// last session goes with it, and its views.
func (g *Gateway) closed(sid string) {
	g.mu.Lock()
	release := ""
	if o, ok := g.owners[sid]; ok {
		delete(g.owners, sid)
		if e := g.handlers[o.hkey]; e != nil {
			if e.sessions--; e.sessions <= 0 && o.hkey.user != "" {
				g.evictLocked(o.hkey)
				if !g.hasUserLocked(o.hkey.user) {
					release = o.hkey.user
				}
			}
		}
	}
	g.mu.Unlock()
	g.caps.forget(sid)
	if release != "" {
		g.hub.ReleaseUser(release)
	}
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

// checkOrigin refuses browser requests from foreign origins and hosts
// (DNS rebinding and cross-site requests), by the one policy every
// endpoint of Switchboard applies (httpguard): only loopback origins, the
// public URL's origin and configured ones are allowed.
func (g *Gateway) checkOrigin(next http.Handler) http.Handler {
	return g.guard.Handler(next, func(w http.ResponseWriter, r *http.Request, err error) {
		writeJSONError(w, http.StatusForbidden, err.Error())
	})
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0", "id": nil,
		"error": map[string]any{"code": -32000, "message": msg},
	})
}

// aggregateInstructions joins the instructions of the servers a view
// shows that are configured with serverInstructions, in LibreChat's
// manner: for a per-user server, as the user's binding has them.
func (g *Gateway) aggregateInstructions(user string, allow func(string) bool) string {
	var b strings.Builder
	for _, c := range g.hub.Conns() {
		if c.Config() == nil || (allow != nil && !allow(c.Name())) || (c.UserScoped() && user == "") {
			continue
		}
		text := c.Instructions(user)
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
