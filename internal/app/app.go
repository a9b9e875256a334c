// Package app wires Switchboard together from its configuration: the hub,
// the built-in tools, the gateway, the authorization server, the agent host
// and the web API and pages, with one access policy and the HTTP mux that
// serves them. Package main only parses flags and picks a command.
package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/authserver"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/httpguard"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/tools"
	"github.com/switchboard-mcp/switchboard/internal/web"
	"github.com/switchboard-mcp/switchboard/internal/web/ui"
)

// Options are what New needs beyond the configuration. Nil options are
// valid: a hub and gateway for the command line, with no environment.
type Options struct {
	// Logger receives the log; nil discards it.
	Logger *slog.Logger
	// LookupEnv resolves ${VAR} placeholders of server entries at connect
	// time; nil resolves none.
	LookupEnv func(string) (string, bool)
	// Version is Switchboard's version, reported to servers and clients;
	// "" reports "dev".
	Version string
	// Serve builds what Handler serves: /mcp, /sse, /api, the agent host
	// and, with authorization, sign-in and the chat pages. false: the hub
	// and the gateway only, for the command line.
	Serve bool
	// Insecure serves without sign-in or tokens (--insecure-no-auth); only
	// with Serve. false: the data directory is opened and every request
	// is authorized.
	Insecure bool
	// Addr is the address the listener is bound to, the public base URL
	// when server.publicURL is empty; "" uses server.listen.
	Addr string
	// User is the local user (username or e-mail) the command line acts
	// as, without Serve: the data directory is opened, per-user servers
	// run with that user's values and OAuth tokens, and the access rules
	// apply to them. "": the operator, who sees the shared servers only.
	User string
}

// App is the wired core. Close releases everything New opened.
type App struct {
	cfg     *config.Config
	logger  *slog.Logger
	version string
	hub     *hub.Hub
	gw      *gateway.Gateway

	// With Options.Serve:
	mux  *http.ServeMux
	host *agent.Host
	// With authorization:
	st     *state
	sh     *shared
	as     *authserver.Server
	cancel context.CancelFunc // stops sweep
	policy *policy
	// user is who the command line acts as (Options.User); nil: the
	// operator.
	user *Principal
}

// New wires Switchboard from cfg. Start connects the servers.
func New(ctx context.Context, cfg *config.Config, opts *Options) (*App, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Logger = orDiscard(o.Logger)
	if o.LookupEnv == nil {
		o.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if !o.Serve {
		if o.User != "" {
			return newAsUser(ctx, cfg, &o)
		}
		return newApp(cfg, o.Logger, &o, nil, nil, nil), nil
	}
	if o.Insecure {
		return newInsecure(cfg, &o)
	}
	return newServe(ctx, cfg, &o)
}

// newApp wires the hub, the built-in tools and the gateway. gwOpts, if
// non-nil, adds per-user sessions and access rules to the gateway.
// hubOpts, if non-nil, adds per-user credentials and upstream OAuth.
func newApp(cfg *config.Config, logger *slog.Logger, o *Options, toolOpts *tools.Options, gwOpts *gateway.Options, hubOpts *hub.Options) *App {
	a := &App{cfg: cfg, logger: logger, version: o.Version}
	if toolOpts == nil {
		toolOpts = toolOptions(cfg, nil, o.Version)
	}
	toolOpts.Logger = logger
	builtin := tools.NewServer(toolOpts)
	// The hub options of the caller are kept whole, so that none is lost
	// on the way (ClientMetadataURL once was).
	ho := hub.Options{}
	if hubOpts != nil {
		ho = *hubOpts
	}
	ho.Logger, ho.Builtin, ho.LookupEnv, ho.Version = logger, builtin, o.LookupEnv, o.Version
	a.hub = hub.New(cfg, &ho)
	g := gateway.Options{}
	if gwOpts != nil {
		g = *gwOpts
	}
	g.Logger, g.Version, g.AllowedOrigins = logger, o.Version, cfg.AllowedOrigins
	g.PublicURL, g.MaxRequestBytes = cfg.PublicURL, cfg.MaxRequestBytes
	g.MaxSessionsPerUser = cfg.MaxSessionsPerUser
	a.gw = gateway.New(a.hub, &g)
	return a
}

// newInsecure is serve --insecure-no-auth: every request is the one
// anonymous user.
func newInsecure(cfg *config.Config, o *Options) (*App, error) {
	logger := o.Logger
	logger.Warn("serving WITHOUT authorization (--insecure-no-auth): every local process can use every tool")
	a := newApp(cfg, logger, o, nil, nil, nil)
	a.mux = http.NewServeMux()
	guard := browserPolicy(cfg)
	gw := a.gw.Handler()
	for _, p := range []string{"/mcp", "/mcp/", "/sse", "/sse/"} {
		a.mux.Handle(p, gw)
	}
	a.mux.Handle("/api/", browserSafe(guard, web.NewAPI(a.hub, nil).Handler()))
	host, err := newAgentHost(cfg, a, agentStores{}, nil, logger)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.host = host
	ah := browserSafe(guard, host.Handler(nil))
	for _, p := range agentRoutes {
		a.mux.Handle(p, ah)
	}
	a.mux.Handle("/healthz", web.NewAPI(a.hub, nil).Handler())
	return a, nil
}

// newServe is serve with sign-in: the data directory, the authorization
// server, per-user sessions and the access rules.
func newServe(ctx context.Context, cfg *config.Config, o *Options) (_ *App, err error) {
	logger := o.Logger
	st, err := openState(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	sh, err := newShared(ctx, cfg)
	if err != nil {
		st.close()
		return nil, err
	}
	defer func() {
		if err != nil {
			sh.close()
			st.close()
		}
	}()
	st.limiter = sh.limiter
	addr := o.Addr
	if addr == "" {
		addr = cfg.Listen
	}
	base := issuer(cfg, addr)
	as, err := newAuthServer(ctx, cfg, st, base, logger)
	if err != nil {
		return nil, err
	}
	pol := &policy{access: cfg.Access}
	var hubRef *hub.Hub // set below: the tools are built with the hub that serves them
	topts := toolOptions(cfg, as, o.Version)
	topts.UserCredential = func(ctx context.Context, userID, name string) (string, error) {
		return builtinCredential(ctx, hubRef, userID, name)
	}
	ho := hubOptions(st, as, base)
	ho.BuiltinVariables = builtinVariables(cfg)
	a := newApp(cfg, logger, o, topts, sessionOptions(&gateway.Options{
		Verify:              as.VerifyToken,
		ResourceMetadataURL: as.ResourceMetadataURL,
		Scope:               as.Scope(),
		Access: func(r *http.Request, ti *auth.TokenInfo) (string, func(string) bool) {
			if p, ok := authserver.PrincipalOf(ti); ok {
				r = r.WithContext(authserver.WithPrincipal(r.Context(), p))
			}
			return pol.request(r)
		},
	}, cfg, st, sh), ho)
	hubRef = a.hub
	pol.hub = a.hub
	a.policy = pol
	a.st, a.sh, a.as = st, sh, as
	mux := http.NewServeMux()
	guard := browserPolicy(cfg)
	gw := a.gw.AcceptForwarded(a.gw.Handler())
	for _, p := range []string{"/mcp", "/mcp/", "/sse", "/sse/"} {
		mux.Handle(p, gw)
	}
	api := web.NewAPI(a.hub, &web.Options{
		UserOf: userOf,
		Allow: func(r *http.Request, server string) bool {
			_, allow := pol.request(r)
			return allow(server)
		},
		Admin: isAdmin,
		ReinitializeAll: func(ctx context.Context, server string) (int, int, error) {
			return reinitializeAll(ctx, a.hub, st.store, server)
		},
		Browser: func(r *http.Request) (web.BrowserUser, bool) {
			bs, ok := as.BrowserSession(r)
			if !ok {
				return web.BrowserUser{}, false
			}
			return web.BrowserUser{ID: bs.UserID, Name: bs.Username, CSRF: bs.CSRF}, true
		},
		SecureCookies: strings.HasPrefix(base, "https://"),
	})
	mux.Handle("/api/", browserSafe(guard, as.ProtectAPIOrSession(api.Handler())))
	host, err := newAgentHost(cfg, a, newAgentStores(st.store), pol.visible(st.store), logger)
	if err != nil {
		a.hub.Close()
		a.gw.Close()
		return nil, err
	}
	a.host = host
	ah := browserSafe(guard, as.ProtectAPIOrSession(host.Handler(&agent.HandlerOptions{User: func(r *http.Request) (string, bool) {
		p, ok := authserver.UserFrom(r.Context())
		if !ok {
			return "", false
		}
		return p.UserID, true
	}})))
	for _, p := range agentRoutes {
		mux.Handle(p, ah)
	}
	// The chat UI, for signed-in browsers (not in --insecure-no-auth
	// mode: there is no browser session, so no CSRF protection).
	chatTools := agent.NewHubTools(a.hub)
	chatTools.Visible = pol.visible(st.store)
	chatUI := ui.Handler(&ui.Options{Session: as.BrowserSession, ChatServers: chatTools.Servers, Logger: logger})
	mux.Handle("/chat", guard.Handler(chatUI, nil))
	mux.Handle("/chat/", guard.Handler(chatUI, nil))
	mux.Handle(oauthCallbackPath, guard.Handler(api.OAuthCallback(), nil))
	mux.Handle(oauthStartPath, guard.Handler(api.OAuthStart(), nil))
	mux.Handle(clientMetadataPath, clientMetadata(base))
	mux.Handle("/", as.Handler())
	mux.Handle("/healthz", web.NewAPI(a.hub, nil).Handler())
	a.mux = mux
	return a, nil
}

// newAsUser is the command line acting as a local user.
func newAsUser(ctx context.Context, cfg *config.Config, o *Options) (*App, error) {
	ad, err := OpenAdmin(ctx, cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	u, err := ad.User(ctx, o.User)
	if err != nil {
		ad.Close()
		return nil, err
	}
	a := newApp(cfg, o.Logger, o, toolOptions(cfg, ad.as, o.Version), nil, hubOptions(ad.st, ad.as, issuer(cfg, cfg.Listen)))
	a.st, a.as = ad.st, ad.as
	a.policy = &policy{access: cfg.Access, hub: a.hub}
	p := principalFromUser(u)
	a.user = &p
	return a, nil
}

// Start connects the servers and waits up to wait for them, so that
// clients that connect at once see every server that answers quickly (the
// built-in one always does); slower ones appear through list_changed. With
// authorization it also starts sweeping expired grants, until Close, and
// logs the one-time setup link while there are no users.
func (a *App) Start(ctx context.Context, wait time.Duration) {
	if a.st != nil && a.mux != nil {
		sctx, cancel := context.WithCancel(context.Background())
		a.cancel = cancel
		go sweep(sctx, a.st.store, a.logger)
		if link, err := a.as.SetupLink(ctx); err == nil && link != "" {
			a.logger.Warn("no admin yet: open this one-time link to create the admin account", slog.String("url", link))
		} else if err != nil && !errors.Is(err, authserver.ErrUsersExist) {
			a.logger.Warn("setup link", slog.String("error", err.Error()))
		}
	}
	a.hub.Start()
	wctx, cancel := context.WithTimeout(ctx, wait)
	a.hub.WaitConnected(wctx)
	if a.user != nil {
		a.connectUser(wctx, *a.user)
	}
	cancel()
	a.gw.Sync()
}

// connectUser connects p's per-user servers that can connect (values set,
// no authorization pending), so that the first tools/list of the command
// line acting as p shows them, as Start waits for the shared ones.
func (a *App) connectUser(ctx context.Context, p Principal) {
	var wg sync.WaitGroup
	for _, c := range a.hub.Conns() {
		if !c.UserScoped() || !a.policy.allows(p, c.Name()) {
			continue
		}
		uc, err := c.ForUser(p.UserID)
		if err != nil {
			continue
		}
		// A server that cannot connect says why in its status and in the
		// result of a call; here it is only not waited for.
		wg.Go(func() { uc.Session(ctx) })
	}
	wg.Wait()
}

// Handler serves everything Switchboard offers over HTTP; nil without
// Options.Serve.
func (a *App) Handler() http.Handler {
	if a.mux == nil {
		return nil
	}
	return a.mux
}

// Config is the configuration the app was built from.
func (a *App) Config() *config.Config { return a.cfg }

// Hub is the app's hub.
func (a *App) Hub() *hub.Hub { return a.hub }

// Gateway is the app's gateway.
func (a *App) Gateway() *gateway.Gateway { return a.gw }

// Close stops the hub, the gateway and everything New opened.
func (a *App) Close() {
	a.hub.Close()
	a.gw.Close()
	if a.host != nil {
		a.host.Close()
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.sh != nil {
		a.sh.close()
	}
	a.st.close()
}

// AgentHost builds an agent host over the app's hub without stores or
// access rules, for the terminal chat.
func (a *App) AgentHost(logger *slog.Logger) (*agent.Host, error) {
	return newAgentHost(a.cfg, a, agentStores{}, nil, logger)
}

// UnavailableTools names the built-in tools the configuration leaves out,
// with the reason. The sign-in dependent hook is assumed present, as it is
// under serve.
func (a *App) UnavailableTools() map[string]string {
	topts := toolOptions(a.cfg, nil, a.version)
	topts.ProviderToken = func(context.Context, string, string) (string, error) { return "", nil }
	topts.UserCredential = func(context.Context, string, string) (string, error) { return "", nil }
	return tools.Unavailable(topts)
}

// ToolOptions maps cfg onto the built-in tools, for serve-tools (no
// sign-in, so no identity-provider tokens).
func ToolOptions(cfg *config.Config, version string) *tools.Options {
	return toolOptions(cfg, nil, version)
}

// Serve starts the app and serves Handler on ln until ctx ends, then shuts
// the HTTP server down, giving requests in flight up to 10 s.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	a.Start(ctx, 3*time.Second)
	srv := newHTTPServer(a.cfg, a.Handler())
	a.logger.Info("switchboard listening", slog.String("url", "http://"+ln.Addr().String()+"/mcp"), slog.String("config", a.cfg.File), slog.Int("servers", len(a.cfg.Servers)+1))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// browserPolicy is the one browser policy of every endpoint, the same as
// /mcp's (the gateway applies it itself), in both auth modes. The OAuth
// endpoints for clients (/token, /register, /revoke, metadata) use no
// cookies and answer any origin (CORS); the authorization server's pages
// check their own origin and CSRF tokens.
func browserPolicy(cfg *config.Config) *httpguard.Policy {
	return httpguard.New(&httpguard.Options{AllowedOrigins: cfg.AllowedOrigins, PublicURL: cfg.PublicURL})
}

// browserSafe guards a JSON API: the browser policy, and bodies declared
// as JSON (a cross-site form or text/plain POST needs no preflight).
func browserSafe(guard *httpguard.Policy, h http.Handler) http.Handler {
	return guard.Handler(httpguard.RequireJSON(h), nil)
}

// maxFormBody bounds the body of requests other than MCP messages and the
// JSON API (which server.maxRequestBytes bounds): sign-in, consent,
// registration and token requests are forms or small JSON documents.
const maxFormBody = 64 << 10

// newHTTPServer returns the server with the configured timeouts and body
// limits. ReadTimeout bounds reading a request, body included; responses,
// streams included, are bounded only per write (httpguard.Limits).
func newHTTPServer(cfg *config.Config, h http.Handler) *http.Server {
	hc := cfg.HTTP.WithDefaults()
	limit := func(r *http.Request) int64 {
		p := r.URL.Path
		if p == "/mcp" || p == "/sse" || strings.HasPrefix(p, "/mcp/") || strings.HasPrefix(p, "/sse/") || strings.HasPrefix(p, "/api/") {
			return cfg.MaxRequestBytes
		}
		return maxFormBody
	}
	return &http.Server{
		Handler:           httpguard.Limits(limit, hc.WriteTimeout, h),
		ReadTimeout:       hc.ReadTimeout,
		ReadHeaderTimeout: hc.ReadHeaderTimeout,
		WriteTimeout:      hc.WriteTimeout,
		IdleTimeout:       hc.IdleTimeout,
		MaxHeaderBytes:    hc.MaxHeaderBytes,
	}
}
