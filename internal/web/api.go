// Package web serves Switchboard's HTTP API: each server's status as the
// caller sees it (with the per-user variables described), reconnecting,
// users' values, and the one callback of upstream OAuth. It reaches the hub
// through the narrow interface below; the chat page is in web/ui.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// Hub is what the API needs of the hub.
type Hub interface {
	Conn(name string) (*hub.Conn, error)
	StatusFor(ctx context.Context, user, name string) (hub.Status, error)
	StatusesFor(ctx context.Context, user string) []hub.Status
	SetCredentials(ctx context.Context, user, server string, values map[string]string) error
	DeleteCredentials(ctx context.Context, user, server string) error
	OpenAuthorizeLink(ctx context.Context, user, token, browser string) (server, authURL string, err error)
	CompleteOAuthCallback(ctx context.Context, cb *hub.OAuthCallback) (server string, err error)
}

// Options configure an API. The zero value is valid.
type Options struct {
	// UserOf names the signed-in user of a request ("" for none). Nil:
	// nobody is signed in, and per-user servers report that they need a
	// user.
	UserOf func(r *http.Request) string
	// Allow reports whether the request's user may use server; a server
	// they may not use does not exist for them (404). Nil: every server.
	Allow func(r *http.Request, server string) bool
	// Admin reports whether the request's user is an administrator, who
	// may reinitialize a server for everyone. Nil: nobody is.
	Admin func(r *http.Request) bool
	// ReinitializeAll reconnects server for every user (and its shared
	// connection) and says how many connections it reconnected and how
	// many failed to. Nil: ?all=1 is refused.
	ReinitializeAll func(ctx context.Context, server string) (reconnected, failed int, err error)
	// Browser returns the signed-in user of a browser request, by its
	// session cookie, for the upstream OAuth pages. Nil: no browser is
	// ever signed in.
	Browser func(r *http.Request) (BrowserUser, bool)
	// LoginPath is where a browser signs in, coming back to ?next=.
	// Empty: "/login".
	LoginPath string
	// SecureCookies marks the binding cookie of upstream OAuth Secure, with
	// the __Host- prefix (Switchboard is served over https).
	SecureCookies bool
}

// BrowserUser is a signed-in browser, as the upstream OAuth pages need it.
type BrowserUser struct {
	ID, Name string
	// CSRF is the session's token that the confirmation form carries.
	CSRF string
}

// API serves /api/.
type API struct {
	hub  Hub
	opts Options
}

// NewAPI returns the API handler.
func NewAPI(h Hub, opts *Options) *API {
	a := &API{hub: h}
	if opts != nil {
		a.opts = *opts
	}
	return a
}

// maxCredentialsBody bounds a credentials request.
const maxCredentialsBody = 64 << 10

// Handler returns the API's routes.
//
//	GET    /api/servers                       every server, as the signed-in user sees it
//	GET    /api/servers/{name}                one server
//	POST   /api/servers/{name}/reinitialize   reconnect the user's connection; oauthUrl when authorization is needed
//	POST   /api/servers/{name}/reinitialize?all=1   (admins) reconnect every user's connection
//	PUT    /api/servers/{name}/credentials    {"values": {"NAME": "value", ...}}; "" deletes one value
//	DELETE /api/servers/{name}/credentials    clear the user's values and revoke their OAuth token
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/servers", a.servers)
	mux.HandleFunc("GET /api/servers/{name}", a.server)
	mux.HandleFunc("POST /api/servers/{name}/reinitialize", a.reinitialize)
	mux.HandleFunc("PUT /api/servers/{name}/credentials", a.setCredentials)
	mux.HandleFunc("DELETE /api/servers/{name}/credentials", a.deleteCredentials)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func (a *API) user(r *http.Request) string {
	if a.opts.UserOf == nil {
		return ""
	}
	return a.opts.UserOf(r)
}

func (a *API) allowed(r *http.Request, name string) bool {
	return a.opts.Allow == nil || a.opts.Allow(r, name)
}

func (a *API) servers(w http.ResponseWriter, r *http.Request) {
	all := a.hub.StatusesFor(r.Context(), a.user(r))
	out := make([]serverView, 0, len(all))
	for _, st := range all {
		if a.allowed(r, st.Name) {
			out = append(out, a.view(st))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": out})
}

// named resolves the {name} of the path, answering 404 for servers the
// user may not use exactly as for servers that do not exist.
func (a *API) named(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if _, err := a.hub.Conn(name); err != nil || !a.allowed(r, name) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown server " + quote(name)})
		return "", false
	}
	return name, true
}

func (a *API) server(w http.ResponseWriter, r *http.Request) {
	name, ok := a.named(w, r)
	if !ok {
		return
	}
	st, err := a.hub.StatusFor(r.Context(), a.user(r), name)
	if err != nil {
		a.writeHubError(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, a.view(st))
}

// serverReply is a status with the outcome of an action.
type serverReply struct {
	serverView
	OAuthRequired bool   `json:"oauthRequired,omitempty"`
	Error         string `json:"error,omitempty"`
}

func (a *API) reinitialize(w http.ResponseWriter, r *http.Request) {
	name, ok := a.named(w, r)
	if !ok {
		return
	}
	if all := r.URL.Query().Get("all"); all == "1" || all == "true" {
		a.reinitializeAll(w, r, name)
		return
	}
	user := a.user(r)
	c, _ := a.hub.Conn(name)
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	err := c.Reinitialize(ctx, hub.Caller{User: user})
	st, serr := a.hub.StatusFor(r.Context(), user, name)
	if serr != nil {
		a.writeHubError(w, serr, nil)
		return
	}
	if err != nil {
		a.writeHubError(w, err, &st)
		return
	}
	writeJSON(w, http.StatusOK, serverReply{serverView: a.view(st)})
}

// reinitializeAll is reinitialize?all=1: an administrator reconnects the
// server for everyone.
func (a *API) reinitializeAll(w http.ResponseWriter, r *http.Request, name string) {
	if a.opts.Admin == nil || !a.opts.Admin(r) || a.opts.ReinitializeAll == nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "only an administrator may reinitialize a server for everyone"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	n, failed, err := a.opts.ReinitializeAll(ctx, name)
	if err != nil {
		a.writeHubError(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "reconnected": n, "failed": failed})
}

func (a *API) setCredentials(w http.ResponseWriter, r *http.Request) {
	name, ok := a.named(w, r)
	if !ok {
		return
	}
	var body struct {
		Values map[string]string `json:"values"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxCredentialsBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Values == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"values": {"NAME": "value"}}`})
		return
	}
	user := a.user(r)
	if err := a.hub.SetCredentials(r.Context(), user, name, body.Values); err != nil {
		a.writeHubError(w, err, nil)
		return
	}
	a.replyStatus(w, r, user, name)
}

func (a *API) deleteCredentials(w http.ResponseWriter, r *http.Request) {
	name, ok := a.named(w, r)
	if !ok {
		return
	}
	user := a.user(r)
	if err := a.hub.DeleteCredentials(r.Context(), user, name); err != nil {
		a.writeHubError(w, err, nil)
		return
	}
	a.replyStatus(w, r, user, name)
}

func (a *API) replyStatus(w http.ResponseWriter, r *http.Request, user, name string) {
	st, err := a.hub.StatusFor(r.Context(), user, name)
	if err != nil {
		a.writeHubError(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, serverReply{serverView: a.view(st)})
}

// writeHubError translates the hub's errors for API clients, in one place.
// st, if given, is the server's status, sent along.
func (a *API) writeHubError(w http.ResponseWriter, err error, st *hub.Status) {
	var (
		ae *hub.AuthorizationError
		mv *hub.MissingVariablesError
	)
	reply := serverReply{Error: err.Error()}
	if st != nil {
		reply.serverView = a.view(*st)
	}
	status := http.StatusBadGateway
	switch {
	case errors.As(err, &ae):
		// Not a failure of the request: the user has a link to open.
		reply.OAuthRequired = true
		reply.OAuthURL = ae.URL
		reply.Authorization = hub.AuthNeedsAuthorization
		status = http.StatusOK
	case errors.As(err, &mv):
		reply.MissingVariables = mv.Names
		status = http.StatusConflict
	case errors.Is(err, hub.ErrUnknown):
		status = http.StatusNotFound
	case errors.Is(err, hub.ErrUnknownVariable):
		status = http.StatusBadRequest
	case errors.Is(err, hub.ErrNeedsUser):
		status = http.StatusUnauthorized
	case errors.Is(err, hub.ErrDisabled), errors.Is(err, hub.ErrNoStore):
		status = http.StatusConflict
	case errors.Is(err, hub.ErrTooManyConnections):
		status = http.StatusTooManyRequests
	}
	writeJSON(w, status, reply)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
