package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-mcp/switchboard/internal/authserver"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/cluster"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/postgres"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/tools"
)

// state is what lives in the data directory (or PostgreSQL): the key ring
// and the store; and the rate limiter the replicas share, if any.
type state struct {
	keyFile string
	keys    *secrets.Keyring
	store   store.Store
	limiter ratelimit.Limiter // from newShared; nil: each replica counts on its own
}

func (s *state) close() {
	if s != nil && s.store != nil {
		s.store.Close()
	}
}

func dataPath(cfg *config.Config, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cfg.DataDir, p)
}

// openState loads the key ring and opens the store. A first start with an
// empty data directory creates a key file (0600) and says where; a key file
// missing while data exists refuses to start rather than making a new key
// over data it cannot read.
func openState(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*state, error) {
	st := &state{keyFile: dataPath(cfg, cfg.Secrets.KeyFile)}
	dbPath := dataPath(cfg, cfg.Store.Path)
	keys, err := secrets.LoadKeyFile(st.keyFile)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if cfg.Store.Driver == "sqlite" {
			if _, statErr := os.Stat(dbPath); statErr == nil {
				return nil, fmt.Errorf("secrets key file %s is missing but %s holds data encrypted with it: restore the key file (refusing to start rather than create a new key)", st.keyFile, dbPath)
			}
		}
		keys, err = secrets.GenerateKeyFile(st.keyFile)
		if err != nil {
			return nil, fmt.Errorf("create secrets key file: %w", err)
		}
		logger.Warn("created a new secrets key file; back it up: without it the stored credentials and tokens cannot be read", slog.String("path", st.keyFile))
	default:
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	st.keys = keys
	switch cfg.Store.Driver {
	case "postgres":
		st.store, err = postgres.Open(ctx, cfg.Store.DSN, keys)
	default:
		st.store, err = sqlite.Open(ctx, dbPath, keys)
	}
	if err != nil {
		if errors.Is(err, store.ErrKeyMismatch) {
			return nil, fmt.Errorf("%w (key file %s); refusing to start", err, st.keyFile)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// issuer is the public base URL, derived from server.publicURL or, failing
// that, from the listen address.
func issuer(cfg *config.Config, listenAddr string) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	return "http://" + listenAddr
}

func newAuthServer(ctx context.Context, cfg *config.Config, st *state, base string, logger *slog.Logger) (*authserver.Server, error) {
	var providers []idp.Provider
	for _, p := range cfg.Auth.Providers {
		prov, err := idp.New(ctx, idp.Config{
			Type: p.Type, Name: p.Name, DisplayName: p.DisplayName, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			Scopes: p.Scopes, Issuer: p.Issuer, Classic: p.Classic, AuthURL: p.AuthURL, TokenURL: p.TokenURL,
			UserInfoURL: p.UserInfoURL, JWKSURL: p.JWKSURL, RevokeURL: p.RevokeURL, ProfileURL: p.ProfileURL,
			Domains: p.Domains,
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: identity provider %s: %w", p.Pos, p.Name, err)
		}
		providers = append(providers, prov)
	}
	return authserver.New(ctx, &authserver.Options{
		Issuer:          base,
		Store:           st.store,
		Providers:       providers,
		LocalLogin:      cfg.Auth.LocalLogin,
		AccessTokenTTL:  cfg.Auth.AccessTokenTTL,
		RefreshTokenTTL: cfg.Auth.RefreshTokenTTL,
		Resources: func() []string {
			out := []string{base + "/mcp", base + "/mcp/" + hub.BuiltinName}
			for _, s := range cfg.Servers {
				out = append(out, base+"/mcp/"+s.Name)
			}
			return out
		},
		Admins:         adminRules(cfg.Auth.Admins),
		Limiter:        st.limiter,
		TrustedProxies: cfg.TrustedProxies,
		Logger:         logger,
	})
}

func adminRules(admins []config.Admin) []authserver.AdminRule {
	var out []authserver.AdminRule
	for _, a := range admins {
		out = append(out, authserver.AdminRule{Email: a.Email, Provider: a.Provider, Subject: a.Subject})
	}
	return out
}

// shared is what the replicas share through Redis, over one client.
type shared struct {
	limiter  ratelimit.Limiter // nil: each replica counts on its own
	sessions cluster.Directory // nil: a stateful session is served only by the replica that opened it
	client   *redis.Client     // nil without redis.url
}

func (s *shared) close() {
	if s.client != nil {
		s.client.Close()
	}
}

// newShared connects to cfg.Redis.URL, and checks that Redis answers, for
// the rate limits the replicas share and, when server.replicaURL says where
// the other replicas reach this one, the directory of stateful MCP sessions.
// Without a URL it returns a shared with neither, and each replica works
// on its own.
func newShared(ctx context.Context, cfg *config.Config) (*shared, error) {
	if cfg.Redis.URL == "" {
		return &shared{}, nil
	}
	opts, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		// go-redis's errors may quote the URL, password and all.
		return nil, errors.New("redis.url: not a Redis URL (want redis://[[user]:password@]host:port/db)")
	}
	// Let callers' deadlines cut a call short when Redis hangs, so that
	// the limits fail open quickly (see authserver.Options.Limiter).
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s (redis.url) does not answer: %w", opts.Addr, err)
	}
	s := &shared{client: c, limiter: ratelimit.NewRedis(c, nil)}
	if cfg.ReplicaURL != "" {
		s.sessions = cluster.NewRedis(c, nil)
	}
	return s, nil
}

// forwardMACPurpose separates the MACs of requests passed between replicas
// from any other use of the key ring's MAC.
const forwardMACPurpose = "gateway: forwarded request"

// sessionOptions sets what the gateway needs to share stateful sessions
// between replicas, when the replicas share Redis.
func sessionOptions(o *gateway.Options, cfg *config.Config, st *state, sh *shared) *gateway.Options {
	if sh.sessions == nil {
		return o
	}
	o.Sessions, o.ReplicaURL = sh.sessions, cfg.ReplicaURL
	o.SignForward = func(b []byte) []byte { return st.keys.MAC(forwardMACPurpose, b) }
	return o
}

// toolOptions maps config onto the built-in tools and gives them the
// signed-in user's identity-provider tokens.
func toolOptions(cfg *config.Config, as *authserver.Server, version string) *tools.Options {
	o := tools.OptionsFromConfig(cfg)
	o.Version = version
	if as != nil {
		o.ProviderToken = func(ctx context.Context, userID, provider string) (string, error) {
			t, err := as.ProviderToken(ctx, userID, provider)
			if errors.Is(err, authserver.ErrProviderLoginRequired) || errors.Is(err, store.ErrNotFound) {
				return "", fmt.Errorf("%w: %v", tools.ErrNotAuthorized, err)
			}
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		}
	}
	return o
}

// builtinVariables are the values each user enters for the built-in
// server: with the CalDAV calendar, the user's calendar URL and account.
// They are stored like any server's customUserVars (encrypted, per user,
// set with PUT /api/servers/switchboard/credentials or the chat UI).
func builtinVariables(cfg *config.Config) map[string]config.CustomUserVar {
	if cfg.Tools.Calendar.Provider != config.ProviderCalDAV {
		return nil
	}
	url := config.CustomUserVar{Title: "CalDAV URL", Description: "your calendar's (or your CalDAV server's) URL", Sensitive: true}
	if cfg.Tools.Calendar.CalDAV.URL != "" {
		url.Description += "; leave it empty to use the calendar server the administrator set"
	}
	return map[string]config.CustomUserVar{
		tools.CredCalDAVURL:      url,
		tools.CredCalDAVUsername: {Title: "CalDAV username", Sensitive: true},
		tools.CredCalDAVPassword: {Title: "CalDAV password", Description: "an app password if your provider offers one", Sensitive: true},
	}
}

// builtinCredential reads a value userID stored for the built-in server,
// for the built-in tools' Options.UserCredential.
func builtinCredential(ctx context.Context, h *hub.Hub, userID, name string) (string, error) {
	v, err := h.UserValue(ctx, userID, hub.BuiltinName, name)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("%s is not set: %w", name, tools.ErrNotAuthorized)
	}
	return v, nil
}

// oauthCallbackPath is the one callback URL of upstream OAuth;
// oauthStartPath serves the single-use authorize links the hub hands out.
const (
	oauthCallbackPath = "/oauth/callback"
	oauthStartPath    = "/oauth/start"
)

// hubOptions gives the hub the store for users' credentials and tokens,
// what placeholders may say about a user, and the upstream OAuth callback.
func hubOptions(st *state, as *authserver.Server, base string) *hub.Options {
	return &hub.Options{
		Store:            st.store,
		OAuthRedirectURL: base + oauthCallbackPath,
		AuthorizeLinkURL: base + oauthStartPath,
		UserInfo: func(ctx context.Context, userID string) (*hub.User, error) {
			u, err := st.store.UserByID(ctx, userID)
			if errors.Is(err, store.ErrNotFound) {
				return &hub.User{ID: userID}, nil
			} else if err != nil {
				return nil, err
			}
			hu := &hub.User{ID: u.ID, Name: u.Name, Username: u.Username, Email: u.Email, Role: string(u.Role), Provider: "local"}
			ids, err := st.store.IdentitiesOfUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			for i, id := range ids {
				if i == 0 {
					hu.Provider = id.Provider
				}
				if hu.Fields == nil {
					hu.Fields = map[string]string{}
				}
				// LibreChat's googleId, githubId, openidId, ...
				hu.Fields[strings.ToUpper(id.Provider)+"ID"] = id.Subject
			}
			if len(ids) > 0 && as != nil {
				if t, err := as.ProviderToken(ctx, userID, ids[0].Provider); err == nil {
					hu.IdPAccessToken, hu.IdPIDToken = t.AccessToken, t.IDToken
				}
			}
			return hu, nil
		},
		ClientMetadataURL: clientMetadataURL(base),
	}
}

// clientMetadataPath serves the Client ID Metadata Document that identifies
// Switchboard to upstream authorization servers that accept one instead of
// a registration.
const clientMetadataPath = "/oauth/client-metadata.json"

// clientMetadataURL is the document's URL, which is also the client_id. The
// MCP authorization spec requires an https URL, so a plain-http public
// address (local use) has none and upstream servers register Switchboard
// dynamically instead.
func clientMetadataURL(base string) string {
	if !strings.HasPrefix(base, "https://") {
		return ""
	}
	return base + clientMetadataPath
}

// clientMetadata serves the document (Client ID Metadata Documents draft:
// client_id equals the document's URL; a public client using PKCE).
func clientMetadata(base string) http.Handler {
	doc := map[string]any{
		"client_id":                  clientMetadataURL(base),
		"client_name":                "Switchboard",
		"client_uri":                 base,
		"redirect_uris":              []string{base + oauthCallbackPath},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"application_type":           "web",
	}
	body, _ := json.MarshalIndent(doc, "", "  ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if clientMetadataURL(base) == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(body)
	})
}

func userOf(r *http.Request) string {
	if p, ok := authserver.UserFrom(r.Context()); ok {
		return p.UserID
	}
	return ""
}

// sweep deletes expired codes, tokens and registrations now and then.
func sweep(ctx context.Context, s store.Store, logger *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		now := time.Now()
		if err := s.Sweep(ctx, now); err != nil && ctx.Err() == nil {
			logger.Warn("sweep", slog.String("error", err.Error()))
		}
		if _, err := s.DeleteExpiredClients(ctx, now); err != nil && ctx.Err() == nil {
			logger.Warn("sweep clients", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
