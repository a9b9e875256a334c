// Package hub owns Switchboard's connections to upstream MCP servers: stdio
// child processes and remote SSE or streamable-HTTP servers, plus the
// built-in in-process server. It connects, lists and refreshes each server's
// catalog, reconnects with backoff behind a circuit breaker, applies request
// timeouts that progress resets, and routes server-to-client traffic back to
// the downstream party that caused it. It also names tools for the
// aggregated view.
//
// The gateway, the agent and the command line import it; it imports config
// and the MCP SDK only.
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// BuiltinName is the name of the built-in in-process server.
const BuiltinName = "switchboard"

// Log attribute keys.
const (
	attrServer = "server"
	attrError  = "error"
	attrStderr = "stderr"
	attrUser   = "user"
)

// stderrBytes bounds the stderr kept per stdio server.
const stderrBytes = 16 << 10

// Options configure a Hub. The zero value is valid.
type Options struct {
	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
	// Builtin is the in-process server named "switchboard". Nil: none.
	Builtin *mcp.Server
	// BuiltinVariables are values each user enters for the built-in server
	// (the CalDAV calendar's URL and account), kept and shown like a
	// configured server's customUserVars. Nil: none.
	BuiltinVariables map[string]config.CustomUserVar
	// LookupEnv reads the parent environment for the safe subset passed to
	// stdio servers. Nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Version is reported to upstream servers as the client version. Empty: "dev".
	Version string
	// Observer hears of state and catalog changes, resource updates and
	// log messages that no request caused (SetObserver replaces it). Nil:
	// nobody.
	Observer Observer
	// BreakerThreshold is how many connect failures in a row open a
	// binding's circuit breaker, and BreakerCooldown how long it stays open
	// before one half-open attempt is let through. Zero: the config's
	// mcpSettings.breaker, else 5 failures and 5 s.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// HTTPTransport carries requests to HTTP servers. Nil: a clone of
	// http.DefaultTransport.
	HTTPTransport http.RoundTripper
	// Now is the clock. Nil: time.Now.
	Now func() time.Time

	// Store keeps users' credentials (customUserVars, API keys, upstream
	// OAuth tokens and registrations) encrypted, and the locks that make
	// token refresh single-flight across replicas. Nil: servers that need
	// stored credentials or OAuth are disabled; servers with only user
	// placeholders still connect per user.
	Store store.Store
	// UserInfo returns what placeholders may reveal of a user: names,
	// email, role, identity provider and the provider's access token. Nil:
	// only {{LIBRECHAT_USER_ID}} is known.
	UserInfo func(ctx context.Context, userID string) (*User, error)
	// IdleTimeout closes a user's connection unused for this long. Zero: 15 min.
	IdleTimeout time.Duration
	// MaxConnsPerUser caps one user's open connections (each link and each
	// stdio process counts). Zero: 32.
	MaxConnsPerUser int
	// MaxUserConns caps all users' open connections together. Zero: 2000.
	MaxUserConns int
	// OAuthRedirectURL is the one callback URL of upstream OAuth, served by
	// HandleOAuthCallback (cmd mounts it at /oauth/callback). Empty:
	// upstream OAuth is off, and servers that need it are disabled.
	OAuthRedirectURL string
	// AuthorizeLinkURL is where the single-use authorize links the hub
	// hands out (in AuthorizationError, status and auth.required) are
	// opened, served by OpenAuthorizeLink: the link binds the
	// authorization to the signed-in user and browser that open it, and
	// CompleteOAuthCallback then completes only a bound (or confirmed)
	// callback. Empty: the upstream's authorization URL is handed out as
	// is and callbacks are not bound to a browser (for embedders that
	// complete flows themselves).
	AuthorizeLinkURL string
	// ClientMetadataURL is the https URL of Switchboard's OAuth Client ID
	// Metadata Document, offered to authorization servers that accept one.
	// Empty: pre-registered clients and dynamic registration only.
	ClientMetadataURL string
	// AllowedDomains and AllowedAddresses are mcpSettings.allowedDomains
	// and allowedAddresses: the SSRF policy for URLs that users supply or
	// that remote parties name (OAuth discovery, redirects). Nil: the
	// config's mcpSettings.
	AllowedDomains   []string
	AllowedAddresses []string
	// ReplicaID names this process in cross-replica locks. Empty: random.
	ReplicaID string
}

// Hub holds one connection per configured server.
type Hub struct {
	opts          Options
	logger        *slog.Logger
	sdkLogger     *slog.Logger
	version       string
	lookupEnv     func(string) (string, bool)
	httpTransport http.RoundTripper
	now           func() time.Time

	ctx    context.Context // lives until Close; parent of every connection
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup // connection goroutines

	conns  []*Conn // config order; the built-in server first
	byName map[string]*Conn

	idleTimeout     time.Duration
	maxConnsPerUser int
	maxUserConns    int
	reaperOnce      sync.Once
	breakerN        int
	breakerCool     time.Duration
	observer        atomic.Pointer[Observer]
	guard           *urlGuard
	replica         string

	slotMu      sync.Mutex // guards the fields below
	slotsByUser map[string]int
	slotsTotal  int
}

// New creates a hub for cfg's servers. It does not connect; call Start.
func New(cfg *config.Config, opts *Options) *Hub {
	h := &Hub{}
	if opts != nil {
		h.opts = *opts
	}
	h.logger = h.opts.Logger
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	h.sdkLogger = SDKLogger(h.logger)
	h.version = h.opts.Version
	if h.version == "" {
		h.version = "dev"
	}
	h.lookupEnv = h.opts.LookupEnv
	if h.lookupEnv == nil {
		h.lookupEnv = lookupEnvOS
	}
	h.httpTransport = h.opts.HTTPTransport
	if h.httpTransport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Many downstream sessions share one upstream host; the default of
		// two idle connections per host would make concurrent calls redial.
		t.MaxIdleConnsPerHost = 64
		h.httpTransport = t
	}
	h.now = h.opts.Now
	if h.now == nil {
		h.now = time.Now
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.byName = make(map[string]*Conn)
	h.slotsByUser = make(map[string]int)
	h.idleTimeout = cmpOr(h.opts.IdleTimeout, defaultIdleTimeout)
	h.maxConnsPerUser = cmpOr(h.opts.MaxConnsPerUser, defaultMaxConnsPerUser)
	h.maxUserConns = cmpOr(h.opts.MaxUserConns, defaultMaxUserConns)
	h.replica = h.opts.ReplicaID
	if h.replica == "" {
		h.replica = randomID()
	}
	domains, addrs := h.opts.AllowedDomains, h.opts.AllowedAddresses
	if domains == nil && addrs == nil && cfg != nil {
		domains, addrs = cfg.Settings.AllowedDomains, cfg.Settings.AllowedAddresses
	}
	h.guard = newURLGuard(domains, addrs)
	h.breakerN, h.breakerCool = h.opts.BreakerThreshold, h.opts.BreakerCooldown
	if cfg != nil {
		h.breakerN = cmpOr(h.breakerN, cfg.Settings.Breaker.Threshold)
		h.breakerCool = cmpOr(h.breakerCool, cfg.Settings.Breaker.Cooldown)
	}
	h.breakerN = cmpOr(h.breakerN, defaultBreakerThreshold)
	h.breakerCool = cmpOr(h.breakerCool, defaultBreakerCooldown)
	h.SetObserver(h.opts.Observer)
	if h.opts.Builtin != nil {
		h.add(&Conn{name: BuiltinName, builtin: h.opts.Builtin})
	}
	if cfg != nil {
		for _, s := range cfg.Servers {
			c := &Conn{name: s.Name, cfg: s}
			h.add(c)
			c.scoped.Store(s.UserScoped())
			p := s.PendingFeatures()
			p = append(p, h.missingSupport(s)...)
			if len(p) > 0 {
				c.state = StateDisabled
				c.lastErr = errors.New(joinSentences(p))
			}
		}
	}
	return h
}

func (h *Hub) add(c *Conn) {
	c.hub = h
	c.protocol = legacyProtocol
	c.state = StateDisconnected
	c.since = h.now()
	c.stderr = newRing(stderrBytes, func(line string) {
		h.logger.Debug("stderr", slog.String(attrServer, c.name), slog.String("line", truncate(line, 512)))
	})
	h.conns = append(h.conns, c)
	h.byName[c.name] = c
}

// Start begins connecting every server configured with startup (the default)
// in the background. It returns at once.
func (h *Hub) Start() {
	for _, c := range h.conns {
		if c.cfg != nil && !c.cfg.Startup || c.template() {
			continue
		}
		c.mu.Lock()
		if c.state != StateDisabled && c.cs == nil && c.connecting == nil {
			c.startConnectLocked()
		}
		c.mu.Unlock()
	}
}

// WaitConnected waits until no server is connecting, or ctx is done.
func (h *Hub) WaitConnected(ctx context.Context) error {
	for _, c := range h.conns {
		c.mu.Lock()
		ch := c.connecting
		c.mu.Unlock()
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close disconnects every server, stops their processes and waits for the
// hub's goroutines to end.
func (h *Hub) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	h.cancel()
	var wg sync.WaitGroup
	for _, c := range h.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.close()
		}()
	}
	wg.Wait()
	h.wg.Wait()
	return nil
}

func (h *Hub) closing() bool { return h.closed.Load() }

func (h *Hub) changed(name string) {
	if o := h.observe(); o != nil {
		o.Changed(name)
	}
}

// Conn returns the named server's connection.
func (h *Hub) Conn(name string) (*Conn, error) {
	c, ok := h.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknown, name)
	}
	return c, nil
}

// Conns returns every connection, the built-in server first, then in config
// order.
func (h *Hub) Conns() []*Conn { return h.conns }

// Status describes one server for people and for the HTTP API.
type Status struct {
	Name              string    `json:"name"`
	Title             string    `json:"title,omitempty"`
	Description       string    `json:"description,omitempty"`
	Transport         string    `json:"transport"`
	State             State     `json:"state"`
	Since             time.Time `json:"since"`
	LastError         string    `json:"lastError,omitempty"`
	NextRetry         time.Time `json:"nextRetry,omitzero"`
	Tools             int       `json:"tools"`
	Resources         int       `json:"resources"`
	ResourceTemplates int       `json:"resourceTemplates"`
	Prompts           int       `json:"prompts"`
	ServerName        string    `json:"serverName,omitempty"`
	ServerVersion     string    `json:"serverVersion,omitempty"`
	ProtocolVersion   string    `json:"protocolVersion,omitempty"`
	StderrTail        []string  `json:"stderrTail,omitempty"`
	// UserScoped: the server connects once per user, and the fields above
	// describe the asking user's connection.
	UserScoped bool `json:"userScoped,omitempty"`
	// Authorization is the upstream OAuth state of the user's connection;
	// OAuthURL is where to authorize while it is needs_authorization.
	Authorization AuthState `json:"authorization,omitempty"`
	OAuthURL      string    `json:"oauthUrl,omitempty"`
	// Variables says which of the server's customUserVars (and
	// MCP_API_KEY for a user's apiKey) the user has set; never values.
	Variables        map[string]bool `json:"variables,omitempty"`
	MissingVariables []string        `json:"missingVariables,omitempty"`
}

// Status reports the connection's state.
func (c *Conn) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Name: c.name, State: c.state, Since: c.since, Transport: "in-process"}
	if c.cfg != nil {
		st.Transport = string(c.cfg.Type)
		st.Title = c.cfg.Title
		st.Description = c.cfg.Description
	}
	if c.lastErr != nil {
		st.LastError = c.lastErr.Error()
	}
	if c.state == StateFailed && c.cs == nil && c.connecting == nil {
		st.NextRetry = c.retryAt
		if c.failures >= c.hub.breakerN && c.hub.now().Before(c.retryAt) {
			st.LastError += fmt.Sprintf(" (failed %d times in a row: paused until %s)", c.failures, c.retryAt.Format(time.TimeOnly))
		}
	}
	if cat := c.catalog; cat != nil && c.state == StateConnected {
		st.Tools, st.Resources, st.ResourceTemplates, st.Prompts = len(cat.Tools), len(cat.Resources), len(cat.Templates), len(cat.Prompts)
		if cat.Init != nil {
			st.ProtocolVersion = cat.Init.ProtocolVersion
			if cat.Init.ServerInfo != nil {
				st.ServerName, st.ServerVersion = cat.Init.ServerInfo.Name, cat.Init.ServerInfo.Version
			}
		}
	}
	st.StderrTail = c.stderr.Tail(10)
	st.UserScoped = c.user != "" || c.scoped.Load()
	if c.template() && st.State != StateDisabled {
		st.LastError = ErrNeedsUser.Error()
	}
	if c.user != "" {
		st.Authorization = c.authState
		if st.Authorization == "" {
			st.Authorization = AuthNotRequired
		}
		st.OAuthURL = c.authURL
	}
	return st
}

// Statuses reports every server.
func (h *Hub) Statuses() []Status {
	out := make([]Status, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c.Status())
	}
	return out
}

// SDKLogger returns the logger to hand the MCP SDK: it logs every session
// opened and closed at info level, which for a gateway is noise, so only its
// warnings and errors pass.
func SDKLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn}).With(slog.String("component", "mcp-sdk"))
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(as), m.min}
}

func (m minLevel) WithGroup(g string) slog.Handler {
	return minLevel{m.Handler.WithGroup(g), m.min}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func joinSentences(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "; "
		}
		out += s
	}
	return out
}

func samplingWithTools(p *mcp.CreateMessageParams) *mcp.CreateMessageWithToolsParams {
	msgs := make([]*mcp.SamplingMessageV2, 0, len(p.Messages))
	for _, m := range p.Messages {
		msgs = append(msgs, &mcp.SamplingMessageV2{Content: []mcp.Content{m.Content}, Role: m.Role})
	}
	return &mcp.CreateMessageWithToolsParams{
		Meta: p.Meta, IncludeContext: p.IncludeContext, MaxTokens: p.MaxTokens, Messages: msgs,
		Metadata: p.Metadata, ModelPreferences: p.ModelPreferences, StopSequences: p.StopSequences,
		SystemPrompt: p.SystemPrompt, Temperature: p.Temperature,
	}
}
