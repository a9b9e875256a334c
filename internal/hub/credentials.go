package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Credential names in the store. customUserVars are stored under their own
// names, which are letters, digits and '_'; the hub's own names contain a
// ':' so that they cannot collide with one.
const (
	// apiKeyVar is LibreChat's name for a user's own apiKey, also usable as
	// the {{MCP_API_KEY}} placeholder.
	apiKeyVar     = "MCP_API_KEY"
	credToken     = "oauth:token"
	credRegPrefix = "oauth:registration:"
	// registrationOwner is the reserved user id under which OAuth client
	// registrations are stored: they belong to Switchboard, not to a user,
	// and are shared by every user of a server (keyed by issuer).
	registrationOwner = "_switchboard"
)

// Errors of credential management a caller may branch on.
var (
	// ErrUnknownVariable: a value was given for a name the server does not
	// declare.
	ErrUnknownVariable = errors.New("unknown variable")
	// ErrNoStore: credentials need the store, which this hub runs without.
	ErrNoStore = errors.New("credentials need sign-in and a data store")
)

// MissingVariablesError is returned when a user's connection cannot be made
// until the user enters values for Names.
type MissingVariablesError struct {
	Server string
	Names  []string
}

func (e *MissingVariablesError) Error() string {
	return fmt.Sprintf("%s needs values for %s; enter them in this server's settings", e.Server, strings.Join(e.Names, ", "))
}

// missingSupport returns why this hub cannot run s at all, or nil.
func (h *Hub) missingSupport(s *config.Server) []string {
	needsStore := len(s.CustomUserVars) > 0 || (s.APIKey != nil && s.APIKey.Source == "user")
	explicitOAuth := s.OAuth != nil || (s.RequiresOAuth != nil && *s.RequiresOAuth)
	var out []string
	if (needsStore || explicitOAuth) && h.opts.Store == nil {
		out = append(out, "per-user credentials need sign-in (switchboard serve without --insecure-no-auth)")
	} else if explicitOAuth && h.opts.OAuthRedirectURL == "" {
		out = append(out, "upstream OAuth needs Switchboard's public address for its callback")
	}
	return out
}

// Variables returns the names a user enters for the server: its
// customUserVars and, for apiKey with source user, MCP_API_KEY.
func Variables(s *config.Server) []string {
	if s == nil {
		return nil
	}
	names := s.CustomUserVarNames()
	if s.APIKey != nil && s.APIKey.Source == "user" && !slices.Contains(names, apiKeyVar) {
		names = append(names, apiKeyVar)
		slices.Sort(names)
	}
	return names
}

// varsConfig is the server declaring the variables users enter: the
// configured one, or for the built-in server a stand-in declaring
// Options.BuiltinVariables.
func (c *Conn) varsConfig() *config.Server {
	if c.builtin != nil {
		if len(c.hub.opts.BuiltinVariables) == 0 {
			return nil
		}
		return &config.Server{Name: c.name, CustomUserVars: c.hub.opts.BuiltinVariables}
	}
	return c.cfg
}

// UserValue returns the value user stored for one of the server's
// variables, or "" when it is not set.
func (h *Hub) UserValue(ctx context.Context, user, server, name string) (string, error) {
	c, err := h.Conn(server)
	if err != nil {
		return "", err
	}
	vals, err := h.userValues(ctx, user, c.varsConfig())
	if err != nil {
		return "", err
	}
	return vals[name], nil
}

// userValues returns the user's stored values of the server's variables.
func (h *Hub) userValues(ctx context.Context, user string, s *config.Server) (map[string]string, error) {
	names := Variables(s)
	if len(names) == 0 {
		return nil, nil
	}
	if h.opts.Store == nil {
		return nil, ErrNoStore
	}
	creds, err := h.opts.Store.Credentials(ctx, user, s.Name)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	out := make(map[string]string, len(names))
	for _, c := range creds {
		if slices.Contains(names, c.Name) && c.Value != "" {
			out[c.Name] = c.Value
		}
	}
	return out, nil
}

// VariablesFor reports which of the server's variables user has set, and
// which are missing. Values are never returned.
func (h *Hub) VariablesFor(ctx context.Context, user, server string) (set map[string]bool, missing []string, err error) {
	c, err := h.Conn(server)
	if err != nil {
		return nil, nil, err
	}
	names := Variables(c.varsConfig())
	if len(names) == 0 {
		return nil, nil, nil
	}
	vals, err := h.userValues(ctx, user, c.varsConfig())
	if err != nil && !errors.Is(err, ErrNoStore) {
		return nil, nil, err
	}
	set = make(map[string]bool, len(names))
	for _, n := range names {
		_, ok := vals[n]
		set[n] = ok
		if !ok {
			missing = append(missing, n)
		}
	}
	return set, missing, nil
}

// SetCredentials stores user's values for the server's variables
// (encrypted by the store) and reconnects the user's connection so that
// they take effect; an empty value deletes that one variable. Names the
// server does not declare are refused with ErrUnknownVariable.
func (h *Hub) SetCredentials(ctx context.Context, user, server string, values map[string]string) error {
	c, err := h.Conn(server)
	if err != nil {
		return err
	}
	if user == "" {
		return ErrNeedsUser
	}
	if h.opts.Store == nil {
		return ErrNoStore
	}
	names := Variables(c.varsConfig())
	for k := range values {
		if !slices.Contains(names, k) {
			return fmt.Errorf("%w %q for %s (it declares %s)", ErrUnknownVariable, k, server, strings.Join(names, ", "))
		}
	}
	if len(values) > 0 {
		// Keep the others: the store can delete only all of a server's.
		creds, err := h.opts.Store.Credentials(ctx, user, server)
		if err != nil {
			return fmt.Errorf("read credentials: %w", err)
		}
		var keep []*store.Credential
		for _, cr := range creds {
			if v, given := values[cr.Name]; given && v == "" {
				continue
			}
			keep = append(keep, cr)
		}
		if len(keep) != len(creds) {
			if err := h.opts.Store.DeleteCredentials(ctx, user, server); err != nil {
				return fmt.Errorf("delete credentials: %w", err)
			}
			for _, cr := range keep {
				if err := h.opts.Store.SetCredential(ctx, &store.Credential{UserID: user, Server: server, Name: cr.Name, Value: cr.Value}); err != nil {
					return fmt.Errorf("save credentials: %w", err)
				}
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if values[k] == "" {
			continue
		}
		if err := h.opts.Store.SetCredential(ctx, &store.Credential{UserID: user, Server: server, Name: k, Value: values[k]}); err != nil {
			return fmt.Errorf("save credentials: %w", err)
		}
	}
	h.resetUser(c, user, false)
	return nil
}

// DeleteCredentials clears everything user stored for the server: its
// variables and its upstream OAuth token, which is revoked at the
// authorization server first (RFC 7009). The user's connection is closed
// and the server's tools disappear from their view.
func (h *Hub) DeleteCredentials(ctx context.Context, user, server string) error {
	c, err := h.Conn(server)
	if err != nil {
		return err
	}
	if user == "" {
		return ErrNeedsUser
	}
	if h.opts.Store == nil {
		return ErrNoStore
	}
	// Close first, so that the session ends with a token that still works.
	h.resetUser(c, user, true)
	var revokeErr error
	if u := c.existingUserConn(user); u != nil {
		revokeErr = u.revokeOAuth(ctx)
	} else if c.template() {
		// Not connected since this process started: revoke with a client
		// made for the purpose.
		if u, err := c.ForUser(user); err == nil {
			revokeErr = u.revokeOAuth(ctx)
		}
	}
	if revokeErr != nil {
		h.logger.Warn("revoke upstream token", slog.String(attrServer, server), slog.String(attrError, redactURLs(revokeErr.Error())))
	}
	if err := h.opts.Store.DeleteCredentials(ctx, user, server); err != nil {
		return fmt.Errorf("delete credentials: %w", err)
	}
	h.changed(c.name)
	return nil
}

// resetUser closes user's connection to a server so that the next use
// connects with the current credentials. forget also drops its catalog (the
// server's tools vanish from the user's view) and its authorization state.
func (h *Hub) resetUser(c *Conn, user string, forget bool) {
	u := c.existingUserConn(user)
	if u == nil {
		h.changed(c.name)
		return
	}
	for _, l := range []*Conn{u, u.modernLink()} {
		if l == nil {
			continue
		}
		l.mu.Lock()
		cs := l.cs
		l.cs = nil
		l.releaseSlotLocked()
		l.failures = 0
		l.retryAt = time.Time{}
		l.idle = false
		if forget {
			l.catalog = nil
			l.authState = AuthNotRequired
			l.authURL = ""
		}
		l.setStateLocked(StateDisconnected, nil)
		l.mu.Unlock()
		if cs != nil {
			cs.Close()
		}
	}
	if !forget {
		u.connectNow()
	}
	h.changed(c.name)
}

// userConfig returns the server's config for one user, with placeholders,
// variables and a user's apiKey filled in, and whether the URL's host came
// from a value the hub does not control.
func (h *Hub) userConfig(ctx context.Context, cfg *config.Server, user string) (*config.Server, bool, error) {
	vals, err := h.userValues(ctx, user, cfg)
	if err != nil {
		return nil, false, err
	}
	if names := Variables(cfg); len(vals) < len(names) {
		var missing []string
		for _, n := range names {
			if _, ok := vals[n]; !ok {
				missing = append(missing, n)
			}
		}
		return nil, false, &MissingVariablesError{Server: cfg.Name, Names: missing}
	}
	u := &User{ID: user}
	if h.opts.UserInfo != nil {
		info, err := h.opts.UserInfo(ctx, user)
		if err != nil {
			return nil, false, fmt.Errorf("user info: %w", err)
		}
		if info != nil {
			u = info
			u.ID = user
		}
	}
	srv, err := resolveServer(cfg, vals, u)
	if err != nil {
		return nil, false, err
	}
	if k := cfg.APIKey; k != nil && k.Source == "user" {
		name, value := apiKeyHeader(k, vals[apiKeyVar])
		v, err := headerValue(value)
		if err != nil {
			return nil, false, fmt.Errorf("apiKey: %w", err)
		}
		hs := make(map[string]string, len(srv.Headers)+1)
		for k, v := range srv.Headers {
			hs[k] = v
		}
		hs[name] = v
		srv.Headers = hs
		srv.APIKey = nil
	}
	return srv, userChoseHost(cfg.URL, srv.URL), nil
}

// apiKeyHeader returns the header an apiKey sends, as LibreChat builds it.
func apiKeyHeader(k *config.APIKey, key string) (name, value string) {
	switch strings.ToLower(k.AuthorizationType) {
	case "basic":
		return "Authorization", "Basic " + key
	case "custom":
		name := k.CustomHeader
		if name == "" {
			name = "X-Api-Key"
		}
		return name, key
	}
	return "Authorization", "Bearer " + key
}

// userChoseHost reports whether filling in the template changed which host
// the URL points at: a placeholder in its authority, or a value that moved
// the authority's end.
func userChoseHost(template, filled string) bool {
	if template == "" || !strings.Contains(template, "{{") {
		return false
	}
	auth := func(s string) string {
		_, rest, ok := strings.Cut(s, "://")
		if !ok {
			return s
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		return strings.ToLower(rest)
	}
	ta := auth(template)
	return strings.Contains(ta, "{{") || auth(filled) != ta
}
