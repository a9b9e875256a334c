package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"syscall"

	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

// State is a connection's lifecycle state.
type State string

const (
	StateDisconnected State = "disconnected" // not connected yet (startup: false) or closed
	StateConnecting   State = "connecting"
	StateConnected    State = "connected"
	StateFailed       State = "failed"
	StateDisabled     State = "disabled" // cannot run in this build or configuration
)

// Errors a caller may branch on.
var (
	ErrTimeout      = errors.New("request timed out")
	ErrUnavailable  = errors.New("server unavailable")
	ErrDisabled     = errors.New("server disabled")
	ErrUnknown      = errors.New("unknown server")
	ErrHubClosed    = errors.New("hub closed")
	errCircuitOpen  = errors.New("circuit open")
	errProbeTimeout = errors.New("server did not answer a ping after a timed-out request")
)

const (
	defaultTimeout     = 60 * time.Second
	defaultInitTimeout = 30 * time.Second
	backoffBase        = 500 * time.Millisecond
	backoffMax         = 30 * time.Second
	// defaultBreakerThreshold consecutive failures open the circuit: no
	// automatic or on-demand attempt is made until the cool-down has
	// passed; then one half-open attempt is let through, and a server that
	// is back is used again within the cool-down.
	defaultBreakerThreshold = 5
	defaultBreakerCooldown  = 5 * time.Second
	// stableAfter is how long a session must live for its server to count as
	// healthy again; a server that keeps dying sooner is flapping and its
	// failures accumulate.
	stableAfter  = 10 * time.Second
	probeTimeout = 5 * time.Second
)

// Catalog is what an upstream server offers, as last listed.
type Catalog struct {
	Init      *mcp.InitializeResult
	Tools     []*mcp.Tool
	Resources []*mcp.Resource
	Templates []*mcp.ResourceTemplate
	Prompts   []*mcp.Prompt
	// Trigger names the list ("tools", "prompts" or "resources") whose
	// list_changed notification caused this listing; empty for the listing
	// made on connect. A server may announce a change that leaves the list
	// as it was, and a transparent gateway still passes the announcement on.
	Trigger string
}

// Conn is the hub's connection to one upstream server. It connects lazily or
// at start-up, reconnects with capped exponential backoff and a circuit
// breaker, and routes server-to-client traffic to the downstream party that
// caused it.
type Conn struct {
	name    string
	cfg     *config.Server // nil for the built-in server
	builtin *mcp.Server
	hub     *Hub
	stderr  *ring
	flight  inflight
	// protocol is the protocol version the link asks for. A server is
	// reached over up to two links: the primary one speaks 2025-11-25, whose
	// server-to-client requests and notifications match what pre-2026
	// downstream clients expect, and a second one speaks 2026-07-28 for
	// downstream clients of that revision, so that its stateless,
	// multi-round-trip flow passes through unchanged.
	protocol  string
	secondary bool
	primary   *Conn // for a secondary link, its primary link

	// user is the user a per-user connection serves, and parent the
	// server's app-level entry that created it; "" and nil otherwise.
	user   string
	parent *Conn
	// scoped marks the app-level entry of a server that connects once per
	// user: by its config or because it asked for OAuth.
	scoped atomic.Bool
	umu    sync.Mutex       // guards users
	users  map[string]*Conn // per-user connections, by user id

	mu          sync.Mutex // guards the fields below
	state       State
	since       time.Time
	lastErr     error
	cs          *mcp.ClientSession
	notifs      *notifCounter // of cs
	connectedAt time.Time
	catalog     *Catalog
	connecting  chan struct{} // non-nil while a connect attempt runs; closed when it ends
	failures    int           // consecutive
	retryAt     time.Time
	retryTimer  *time.Timer
	elicits     map[string]Downstream // URL-mode elicitation id -> who was asked
	subs        map[string]int        // resource URI -> downstream subscriber count
	modern      *Conn                 // the 2026-07-28 link, created on first use
	logLevel    mcp.LoggingLevel      // the most verbose level asked of the server
	slot        bool                  // counts against the per-user connection caps
	lastUsed    time.Time             // per-user connections: last request
	idle        bool                  // closed for being idle; the catalog is kept
	authState   AuthState             // upstream OAuth, on the primary link
	authURL     string                // where the user authorizes, while AuthNeedsAuthorization
	authDone    chan struct{}         // closed when a pending authorization completes
	oauth       *oauthClient          // upstream OAuth client, on the primary link; nil until needed
	hung        *mcp.ClientSession    // the session probe closed because it stopped answering
	gone        *sessionWatch         // of cs: notes the server forgetting the session (HTTP 404)
}

// Name returns the server's configured name.
func (c *Conn) Name() string { return c.name }

// Config returns the server's configuration; nil for the built-in server.
func (c *Conn) Config() *config.Server { return c.cfg }

func (c *Conn) timeout() time.Duration {
	if c.cfg != nil && c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	return defaultTimeout
}

func (c *Conn) initTimeout() time.Duration {
	if c.cfg != nil && c.cfg.InitTimeout > 0 {
		return c.cfg.InitTimeout
	}
	return defaultInitTimeout
}

func (c *Conn) changed() { c.hub.changed(c.name) }

// Protocol versions of the two links.
const (
	legacyProtocol = "2025-11-25"
	modernProtocol = "2026-07-28"
)

// link returns the link that serves caller's requests: the caller's binding
// and, for a 2026-07-28 caller, the binding's link of that revision.
func (c *Conn) link(caller Caller) *Conn {
	if c.template() {
		u, err := c.ForUser(caller.User)
		if err != nil {
			return c // its Session reports why
		}
		c = u
	}
	if !caller.Modern() {
		return c
	}
	return c.Modern()
}

// LinkFor returns the link that serves caller's requests to the server:
// its binding for caller.User (the shared binding of a server that does
// not connect per user) and, for a 2026-07-28 caller, the binding's link
// of that revision.
func (c *Conn) LinkFor(caller Caller) (*Conn, error) {
	if c.template() && caller.User == "" {
		return nil, fmt.Errorf("%s: %w", c.name, ErrNeedsUser)
	}
	return c.link(caller), nil
}

// Modern returns the server's 2026-07-28 link, which connects on first use.
// For the built-in server, and for a link itself, it is the receiver.
//
// A stdio server gets a second child for it too. Bridging 2026-07-28
// callers onto the first link (one child per binding) was measured: per
// call it costs the same, but the 2026-07-28 conformance suite through a
// stdio server drops from 165 to 144 checks passed, with 12 failures
// outside tasks-*: the upstream's own 2026-07-28 session is what turns its
// sampling, elicitation and roots requests into input-required results
// (SEP-2322) and judges each request's declared capabilities (SEP-2575).
// Bridging needs the hub to play that part first.
func (c *Conn) Modern() *Conn {
	if c.secondary || c.builtin != nil || c.template() {
		return c
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateDisabled {
		return c
	}
	if c.modern == nil {
		c.modern = &Conn{name: c.name, cfg: c.cfg, hub: c.hub, stderr: c.stderr, protocol: modernProtocol, secondary: true,
			primary: c, user: c.user, parent: c.parent, state: StateDisconnected, since: c.hub.now(), lastUsed: c.hub.now()}
	}
	return c.modern
}

// Connected reports whether the link has a live session.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs != nil
}

func (c *Conn) log() *slog.Logger { return c.hub.logger.With(slog.String(attrServer, c.name)) }

func (c *Conn) setStateLocked(s State, err error) {
	if c.state != s {
		c.since = c.hub.now()
	}
	c.state = s
	c.lastErr = redactErr(err)
}

func (c *Conn) logLevelNow() mcp.LoggingLevel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logLevel
}

// Catalog returns the last listed catalog, or nil if the server has never
// connected.
func (c *Conn) Catalog() *Catalog {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catalog
}

// Session returns a connected session, connecting first if needed. It waits
// at most until ctx is done.
//
// For the entry of a server that connects per user it returns
// ErrNeedsUser: connect a binding (ForUser, LinkFor) instead.
func (c *Conn) Session(ctx context.Context) (*mcp.ClientSession, error) {
	if c.template() {
		return nil, fmt.Errorf("%s: %w", c.name, ErrNeedsUser)
	}
	c.touch()
	for {
		c.mu.Lock()
		if c.cs != nil {
			cs := c.cs
			c.mu.Unlock()
			return cs, nil
		}
		if c.state == StateDisabled {
			err := c.lastErr
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %s: %v", ErrDisabled, c.name, err)
		}
		if c.hub.closing() {
			c.mu.Unlock()
			return nil, ErrHubClosed
		}
		if c.connecting == nil {
			if c.failures >= c.hub.breakerN && c.hub.now().Before(c.retryAt) {
				err := c.lastErr
				until := c.retryAt
				c.mu.Unlock()
				return nil, &UnavailableError{Server: c.name, Cause: fmt.Errorf("%v (%w; next attempt at %s)", err, errCircuitOpen, until.Format(time.TimeOnly))}
			}
			if err := c.pendingAuthLocked(ctx); err != nil {
				c.mu.Unlock()
				return nil, err
			}
			if err := c.acquireSlotLocked(); err != nil {
				c.mu.Unlock()
				return nil, err
			}
			c.startConnectLocked()
		}
		ch := c.connecting
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		cs, err := c.cs, c.lastErr
		c.mu.Unlock()
		if cs != nil {
			return cs, nil
		}
		if err != nil {
			if userActionNeeded(err) {
				return nil, err
			}
			return nil, &UnavailableError{Server: c.name, Cause: err}
		}
	}
}

// startConnectLocked starts one connect attempt in a goroutine owned by the hub.
func (c *Conn) startConnectLocked() {
	if c.retryTimer != nil {
		c.retryTimer.Stop()
		c.retryTimer = nil
	}
	ch := make(chan struct{})
	c.connecting = ch
	c.setStateLocked(StateConnecting, c.lastErr)
	c.hub.wg.Add(1)
	go func() {
		defer c.hub.wg.Done()
		cs, notifs, gone, cat, err := c.dial(c.hub.ctx)
		c.mu.Lock()
		c.connecting = nil
		if err == nil && c.hub.closing() {
			err = ErrHubClosed
			cs.Close()
		}
		if err != nil {
			c.releaseSlotLocked()
			if c.onUserActionLocked(err) {
				// Waiting for the user (variables, authorization): no
				// failure to count and nothing to retry until they act.
				c.mu.Unlock()
				close(ch)
				c.log().Info("connect waits for the user", slog.String(attrUser, c.user), slog.String(attrError, redactURLs(err.Error())))
				c.changed()
				return
			}
			c.failures++
			c.setStateLocked(StateFailed, err)
			c.scheduleRetryLocked()
			tail := c.stderr.Tail(5)
			c.mu.Unlock()
			close(ch)
			c.log().Warn("connect failed", slog.String(attrUser, c.user), slog.String(attrError, redactURLs(err.Error())), slog.Any(attrStderr, tail))
			c.changed()
			return
		}
		c.cs = cs
		c.notifs = notifs
		c.gone = gone
		c.catalog = cat
		c.idle = false
		c.connectedAt = c.hub.now()
		c.lastUsed = c.hub.now()
		c.setStateLocked(StateConnected, nil)
		c.mu.Unlock()
		c.noteAuthorized()
		close(ch)
		c.log().Info("connected", slog.Int("tools", len(cat.Tools)), slog.String("protocol", cat.Init.ProtocolVersion))
		if lvl := c.logLevelNow(); lvl != "" {
			// A new session starts without the level downstream asked for.
			sctx, cancel := context.WithTimeout(c.hub.ctx, c.timeout())
			if err := cs.SetLoggingLevel(sctx, &mcp.SetLoggingLevelParams{Level: lvl}); err != nil {
				c.log().Warn("restore log level", slog.String(attrError, redactURLs(err.Error())))
			}
			cancel()
		}
		c.changed()
		c.hub.wg.Add(1)
		go func() {
			defer c.hub.wg.Done()
			err := cs.Wait()
			c.onClosed(cs, err)
		}()
	}()
}

func (c *Conn) backoffLocked() time.Duration {
	if c.failures >= c.hub.breakerN {
		// Open: the next attempt, after the cool-down, is the half-open
		// probe. A little jitter keeps many bindings apart.
		return c.hub.breakerCool + time.Duration(rand.Float64()*0.1*float64(c.hub.breakerCool))
	}
	d := backoffBase << (c.failures - 1)
	if d > backoffMax || d <= 0 {
		d = backoffMax
	}
	// No step of the backoff waits longer than an open circuit would.
	d = min(d, c.hub.breakerCool)
	// ±25% jitter so that many servers (or replicas) don't retry in lockstep.
	j := time.Duration((rand.Float64() - 0.5) * 0.5 * float64(d))
	return d + j
}

func (c *Conn) scheduleRetryLocked() {
	if c.hub.closing() || c.state == StateDisabled {
		return
	}
	d := c.backoffLocked()
	c.retryAt = c.hub.now().Add(d)
	if c.user != "" && c.catalog == nil {
		// A user's binding that never connected (a first attempt that
		// failed) waits for its next use; one that did reconnects on its
		// own like a shared one. The jitter and the breaker keep many
		// users' bindings to one failing server from retrying in step.
		return
	}
	if c.retryTimer != nil {
		c.retryTimer.Stop()
	}
	c.retryTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.retryTimer = nil
		if c.cs == nil && c.connecting == nil && !c.hub.closing() && c.state != StateDisabled && !c.idle {
			if c.acquireSlotLocked() != nil {
				return
			}
			c.startConnectLocked()
		}
	})
}

// onClosed runs when a session ends: by our Close, by the server, or because
// the transport broke.
func (c *Conn) onClosed(cs *mcp.ClientSession, err error) {
	c.mu.Lock()
	if c.cs != cs {
		c.mu.Unlock()
		return
	}
	c.cs = nil
	c.releaseSlotLocked()
	if c.hub.closing() {
		c.setStateLocked(StateDisconnected, nil)
		c.mu.Unlock()
		return
	}
	if c.hub.now().Sub(c.connectedAt) >= stableAfter {
		c.failures = 0
	}
	c.failures++
	cause := "connection closed"
	if c.hung == cs {
		c.hung = nil
		cause += ": " + errProbeTimeout.Error()
	} else if err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
		cause += ": " + err.Error()
	}
	if tail := c.stderr.Tail(1); len(tail) > 0 {
		cause += " (stderr: " + tail[0] + ")"
	}
	c.setStateLocked(StateFailed, errors.New(cause))
	c.scheduleRetryLocked()
	retry := c.retryAt
	c.mu.Unlock()
	c.log().Warn("disconnected", slog.String(attrError, redactURLs(cause)), slog.Time("retry_at", retry))
	c.changed()
}

// Reinitialize drops the session of caller's binding, if any, and connects
// again, resetting the backoff and the circuit breaker. For a server that
// does not connect per user that is the shared binding, which every user
// shares: see Hub.Reinitialize for who may do that.
func (c *Conn) Reinitialize(ctx context.Context, caller Caller) error {
	if c.template() {
		if caller.User == "" {
			return fmt.Errorf("%s: %w", c.name, ErrNeedsUser)
		}
		u, err := c.ForUser(caller.User)
		if err != nil {
			return err
		}
		return u.Reinitialize(ctx, caller)
	}
	if err := c.reset(); err != nil {
		return err
	}
	_, err := c.Session(ctx)
	return err
}

// reset drops the binding's session and its failure count, so that the
// next use connects at once.
func (c *Conn) reset() error {
	c.mu.Lock()
	if c.state == StateDisabled {
		err := c.lastErr
		c.mu.Unlock()
		return fmt.Errorf("%w: %s: %v", ErrDisabled, c.name, err)
	}
	cs, modern := c.cs, c.modern
	c.cs = nil
	c.releaseSlotLocked()
	c.failures = 0
	c.retryAt = time.Time{}
	if c.authState == AuthFailed {
		c.authState = AuthNotRequired
	}
	c.mu.Unlock()
	if cs != nil {
		cs.Close()
	}
	if modern != nil {
		modern.close() // reconnects on its next use
	}
	return nil
}

// ReinitializeAll reconnects the server for everyone: its shared binding,
// or every user's binding of a server that connects per user (those
// reconnect in the background). It is for administrators; a user's own
// reinitialize is Conn.Reinitialize.
func (h *Hub) ReinitializeAll(ctx context.Context, name string) error {
	c, err := h.Conn(name)
	if err != nil {
		return err
	}
	if !c.template() {
		return c.Reinitialize(ctx, Caller{})
	}
	for _, u := range c.userConns() {
		if err := u.reset(); err != nil {
			return err
		}
		u.connectNow()
	}
	h.changed(name)
	return nil
}

// close ends the session; used by Hub.Close.
func (c *Conn) close() {
	for _, u := range c.userConns() {
		u.close()
	}
	c.mu.Lock()
	cs, modern := c.cs, c.modern
	c.cs = nil
	c.releaseSlotLocked()
	if c.retryTimer != nil {
		c.retryTimer.Stop()
		c.retryTimer = nil
	}
	if c.state != StateDisabled {
		c.setStateLocked(StateDisconnected, nil)
	}
	c.mu.Unlock()
	if cs != nil {
		cs.Close()
	}
	if modern != nil {
		modern.close()
	}
}

// dial makes one connection attempt and lists the server's catalog.
func (c *Conn) dial(ctx context.Context) (*mcp.ClientSession, *notifCounter, *sessionWatch, *Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, c.initTimeout())
	defer cancel()
	n := &notifCounter{}
	gone := &sessionWatch{}
	t, err := c.transport(ctx, n, gone)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "switchboard", Title: "Switchboard", Version: c.hub.version}, c.clientOptions())
	client.AddReceivingMiddleware(n.middleware, c.passMiddleware)
	var proc *process
	if st, ok := t.(*stdioTransport); ok {
		proc = st.p
	}
	if _, ok := t.(*mcp.StreamableClientTransport); !ok {
		// Streamable HTTP counts at the HTTP level (see sseCounter).
		t = &countingTransport{Transport: t, n: n}
	}
	cs, err := client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: c.protocol})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer to initialize within %s", c.initTimeout())
		} else {
			err = fmt.Errorf("initialize: %w", err)
		}
		if p := proc; p != nil {
			c.hub.wg.Add(1)
			go func() {
				defer c.hub.wg.Done()
				p.stop()
			}()
			select {
			case <-p.exited: // a server that fails at start has usually exited already
				err = fmt.Errorf("%w (%v)", err, p.err)
			case <-time.After(100 * time.Millisecond):
			}
			if tail := c.stderr.Tail(1); len(tail) > 0 {
				err = fmt.Errorf("%w (stderr: %s)", err, tail[0])
			}
		}
		return nil, nil, nil, nil, err
	}
	cat, err := listCatalog(ctx, cs)
	if err != nil {
		cs.Close()
		return nil, nil, nil, nil, fmt.Errorf("list catalog: %w", err)
	}
	return cs, n, gone, cat, nil
}

func (c *Conn) transport(ctx context.Context, n *notifCounter, gone *sessionWatch) (mcp.Transport, error) {
	if c.builtin != nil {
		ct, st := mcp.NewInMemoryTransports()
		if _, err := c.builtin.Connect(ctx, st, nil); err != nil {
			return nil, err
		}
		return ct, nil
	}
	srv := c.cfg
	userURL := false
	if c.user != "" {
		var err error
		if srv, userURL, err = c.hub.userConfig(ctx, c.cfg, c.user); err != nil {
			return nil, err
		}
	}
	switch srv.Type {
	case config.Stdio:
		p, err := startProcess(srv, c.hub.lookupEnv, c.stderr)
		if err != nil {
			return nil, err
		}
		return &stdioTransport{p: p}, nil
	case config.SSE, config.StreamableHTTP:
		headers := make(map[string]string, len(srv.Headers)+1)
		for k, v := range srv.Headers {
			headers[k] = v
		}
		ak, err := apiKeyHeaders(srv.APIKey)
		if err != nil {
			return nil, err
		}
		for k, v := range ak {
			headers[k] = v
		}
		base := c.hub.httpTransport
		if userURL {
			// A URL a user's value helped write may point anywhere: it
			// gets the SSRF policy that discovered URLs get.
			base = c.hub.userURLTransport(c.timeout())
		}
		if base, err = c.oauthTransport(ctx, srv, base); err != nil {
			return nil, err
		}
		hc := &http.Client{Transport: &headerTransport{base: base, headers: headers}}
		if srv.Type == config.SSE {
			return &mcp.SSEClientTransport{Endpoint: srv.URL, HTTPClient: hc}, nil
		}
		hc.Transport = &sseCounter{base: &sessionWatchTransport{base: hc.Transport, w: gone}, n: n}
		return &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc, MaxRetries: -1}, nil
	}
	return nil, fmt.Errorf("%w %q", errUnsupportedTransport, srv.Type)
}

func listCatalog(ctx context.Context, cs *mcp.ClientSession) (*Catalog, error) {
	cat := &Catalog{Init: cs.InitializeResult()}
	caps := cat.Init.Capabilities
	if caps == nil {
		caps = &mcp.ServerCapabilities{}
	}
	var err error
	if caps.Tools != nil {
		if cat.Tools, err = collect(cs.Tools(ctx, nil)); err != nil {
			return nil, fmt.Errorf("tools: %w", err)
		}
	}
	if caps.Resources != nil {
		if cat.Resources, err = collect(cs.Resources(ctx, nil)); err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		if cat.Templates, err = collect(cs.ResourceTemplates(ctx, nil)); err != nil {
			return nil, fmt.Errorf("resource templates: %w", err)
		}
	}
	if caps.Prompts != nil {
		if cat.Prompts, err = collect(cs.Prompts(ctx, nil)); err != nil {
			return nil, fmt.Errorf("prompts: %w", err)
		}
	}
	return cat, nil
}

func collect[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// refresh re-lists the catalog after a list_changed notification.
func (c *Conn) refresh(trigger string) {
	c.mu.Lock()
	cs := c.cs
	c.mu.Unlock()
	if cs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.hub.ctx, c.timeout())
	defer cancel()
	cat, err := listCatalog(ctx, cs)
	if err != nil {
		c.log().Warn("refresh catalog", slog.String(attrError, redactURLs(err.Error())))
		return
	}
	cat.Trigger = trigger
	c.mu.Lock()
	if c.cs == cs {
		c.catalog = cat
	}
	c.mu.Unlock()
	c.changed()
}

func (c *Conn) refreshAsync(trigger string) {
	if c.hub.closing() {
		return
	}
	c.hub.wg.Add(1)
	go func() {
		defer c.hub.wg.Done()
		c.refresh(trigger)
	}()
}

// progressPrefix starts the progress tokens the hub makes up: for a request
// whose caller sent none (the hub still watches progress, which resets the
// timeout), or whose token another request in flight on the link already
// uses.
const progressPrefix = "switchboard-"

// do runs fn against the session of caller's link with the server's
// request timeout, which restarts whenever the server reports progress.
// params, if non-nil, carries a progress token the upstream server sees:
// the caller's own, unless another request in flight on the same link uses
// the same one (then a token of the hub's, mapped back on the way down).
//
// An HTTP server that forgot the session (it restarted and answers 404 to
// the old session id) has not handled the request: the link starts a new
// session and fn runs once more, as the spec asks of a client.
func (c *Conn) do(ctx context.Context, caller Caller, params interface {
	GetProgressToken() any
	SetProgressToken(any)
}, fn func(ctx context.Context, cs *mcp.ClientSession) error) error {
	c = c.link(caller)
	var token any
	if params != nil {
		token = params.GetProgressToken()
	}
	for attempt := 0; ; attempt++ {
		cs, err := c.Session(ctx)
		if err != nil {
			return err
		}
		w := c.watchOf(cs)
		err = c.doOnce(ctx, caller, cs, params, token, fn)
		if err != nil && attempt < 2 && w.gone.Load() {
			c.log().Info("the server forgot the session; starting a new one", slog.String(attrUser, c.user))
			c.dropSession(cs, errSessionGone)
			continue
		}
		var ue *UnavailableError
		if err != nil && !errors.As(err, &ue) && !errors.Is(err, ErrTimeout) && !c.holds(cs) {
			// The connection ended under the request (a broken stream,
			// the process gone): the server is unavailable, not the tool
			// failing.
			return &UnavailableError{Server: c.name, Cause: redactErr(err)}
		}
		if err != nil && w.broken.Swap(false) {
			// The HTTP server did not answer (refused, 5xx): the session
			// ends as a broken connection would, which counts a failure
			// and schedules the reconnect.
			cs.Close()
			return &UnavailableError{Server: c.name, Cause: redactErr(err)}
		}
		return err
	}
}

var errSessionGone = errors.New("the server ended the session (HTTP 404 for its session id)")

func (c *Conn) doOnce(ctx context.Context, caller Caller, cs *mcp.ClientSession, params interface {
	GetProgressToken() any
	SetProgressToken(any)
}, token any, fn func(ctx context.Context, cs *mcp.ClientSession) error) error {
	c.touch()
	timeout := c.timeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(timeout, func() { cancel(ErrTimeout) })
	defer timer.Stop()
	if params != nil && !modernSession(cs) {
		// SEP-2575's per-request triple (the downstream client's revision,
		// identity and capabilities) means something to an upstream of
		// that revision, which judges the request by them; one that speaks
		// an earlier revision would refuse a request carrying it.
		if m, ok := params.(interface{ GetMeta() map[string]any }); ok {
			meta := m.GetMeta()
			delete(meta, mcp.MetaKeyProtocolVersion)
			delete(meta, mcp.MetaKeyClientInfo)
			delete(meta, mcp.MetaKeyClientCapabilities)
		}
	}
	cl := &call{downstream: caller.Downstream, reset: func() { timer.Reset(timeout) }}
	if params != nil {
		cl.token = token
	}
	done := c.flight.add(cl, params != nil)
	defer done()
	if params != nil {
		params.SetProgressToken(cl.upstream)
	}
	err := fn(ctx, cs)
	if err == nil {
		c.mu.Lock()
		n := c.notifs
		c.mu.Unlock()
		if n != nil {
			n.wait(ctx)
		}
	}
	if err != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		c.hub.wg.Add(1)
		go func() {
			defer c.hub.wg.Done()
			c.probe(cs)
		}()
		return fmt.Errorf("%s: %w after %s without progress (cancellation sent)", c.name, ErrTimeout, timeout)
	}
	// A stdio child that died a moment ago shows as a failed write to its
	// stdin (EPIPE, or the pipe already closed) before the link notices.
	if err != nil && (errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrClosed)) {
		return &UnavailableError{Server: c.name, Cause: errors.New("connection lost during the request")}
	}
	return redactErr(err)
}

// holds reports whether cs is still the link's session.
func (c *Conn) holds(cs *mcp.ClientSession) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs == cs
}

// watchOf returns what watches cs's HTTP exchanges: whether the server
// answered 404 to its session id (gone), or failed below MCP (broken: no
// connection, or a server error status). Other transports are never so.
func (c *Conn) watchOf(cs *mcp.ClientSession) *sessionWatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cs == cs && c.gone != nil {
		return c.gone
	}
	return &sessionWatch{}
}

// dropSession ends cs as if the server had closed it, without counting a
// failure: the next use connects at once.
func (c *Conn) dropSession(cs *mcp.ClientSession, cause error) {
	c.mu.Lock()
	if c.cs != cs {
		c.mu.Unlock()
		return
	}
	c.cs = nil
	c.releaseSlotLocked()
	c.setStateLocked(StateDisconnected, cause)
	c.mu.Unlock()
	cs.Close()
	c.changed()
}

// sessionWatch notes that a streamable-HTTP server answered 404 to a
// request carrying the session id: it no longer knows the session (MCP
// streamable HTTP, session management: a client receiving 404 for its
// session id must start a new session).
type sessionWatch struct {
	gone   atomic.Bool
	broken atomic.Bool // a request got no answer or a 5xx since last asked
}

type sessionWatchTransport struct {
	base http.RoundTripper
	w    *sessionWatch
}

func (t *sessionWatchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	switch {
	case r.Method == http.MethodDelete:
	case err == nil && resp.StatusCode == http.StatusNotFound && r.Header.Get("Mcp-Session-Id") != "":
		// Also on the standalone GET stream: its failure ends the SDK's
		// connection, and a request in flight then fails with it.
		t.w.gone.Store(true)
	case r.Method != http.MethodPost:
	case err != nil && r.Context().Err() == nil, err == nil && resp.StatusCode >= 500:
		t.w.broken.Store(true)
	}
	return resp, err
}

// probe checks, after a timed-out request, that the server still answers.
// One that does not is considered hung and its session is dropped, which for
// a stdio server kills the process; the reconnect logic then restarts it.
func (c *Conn) probe(cs *mcp.ClientSession) {
	ctx, cancel := context.WithTimeout(c.hub.ctx, probeTimeout)
	defer cancel()
	if err := cs.Ping(ctx, nil); err == nil || c.hub.closing() {
		return
	}
	c.log().Warn("server hung; restarting", slog.String(attrError, errProbeTimeout.Error()))
	c.mu.Lock()
	if c.cs == cs {
		c.hung = cs
	}
	c.mu.Unlock()
	cs.Close()
}

func modernSession(cs *mcp.ClientSession) bool {
	r := cs.InitializeResult()
	return r != nil && r.ProtocolVersion >= modernProtocol
}

// withMeta copies a request's _meta so that setting the hub's progress token
// does not change the caller's params.
func withMeta(m mcp.Meta) mcp.Meta {
	out := make(mcp.Meta, len(m)+1)
	for k, v := range m {
		if k == UserMetaKey {
			continue // only the hub says who calls
		}
		out[k] = v
	}
	return out
}
