package app

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/authserver"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Principal is who a request or a command acts for, as the access rules
// see them. The zero Principal is the operator of a single-user setup
// (--insecure-no-auth, the command line without --user).
type Principal struct {
	UserID   string
	Role     string // "admin", "user"
	Username string
	Email    string
}

// anonymous reports whether p is the operator of a setup without users.
func (p Principal) anonymous() bool { return p.UserID == "" }

// policy is Switchboard's one access rule, applied alike at /mcp,
// /mcp/{server}, /sse, /api, chat and the command line: the built-in
// server is everyone's; any other follows config.Access, which names users
// by role, username or e-mail.
type policy struct {
	access config.Access
	hub    *hub.Hub // for the key of the set of servers a principal sees
}

// allows reports whether p may use server.
func (pl *policy) allows(p Principal, server string) bool {
	if server == hub.BuiltinName || p.anonymous() {
		return true
	}
	return pl.access.Allows(server, p.Role, p.Username, p.Email)
}

// key returns p's servers, sorted, joined by commas: principals with
// the same key see the same servers.
func (pl *policy) key(p Principal) string {
	var names []string
	for _, c := range pl.hub.Conns() {
		if pl.allows(p, c.Name()) {
			names = append(names, c.Name())
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// request is the gateway's Access hook: the signed-in user's key and rule.
// A request without a principal (none reaches here past Protect) may use
// the built-in server only.
func (pl *policy) request(r *http.Request) (string, func(string) bool) {
	p, ok := requestPrincipal(r)
	if !ok {
		return hub.BuiltinName, func(s string) bool { return s == hub.BuiltinName }
	}
	return pl.key(p), func(s string) bool { return pl.allows(p, s) }
}

// requestPrincipal is the principal the authorization server put on r.
func requestPrincipal(r *http.Request) (Principal, bool) {
	ap, ok := authserver.UserFrom(r.Context())
	if !ok || ap.UserID == "" {
		return Principal{}, false
	}
	return Principal{UserID: ap.UserID, Role: string(ap.Role), Username: ap.Username, Email: ap.Email}, true
}

// userPrincipals finds users by id, for the agent host, which knows only
// the user's id.
type userPrincipals interface {
	UserByID(ctx context.Context, id string) (*store.User, error)
}

// principalOf returns the user's principal; false for an unknown user or
// a failing store (which then may use the built-in server only).
func principalOf(ctx context.Context, s userPrincipals, userID string) (Principal, bool) {
	u, err := s.UserByID(ctx, userID)
	if err != nil || u.Disabled {
		return Principal{}, false
	}
	return principalFromUser(u), true
}

func principalFromUser(u *store.User) Principal {
	return Principal{UserID: u.ID, Role: string(u.Role), Username: u.Username, Email: u.Email}
}

// visible is the agent host's rule for user's runs and the chat menu.
func (pl *policy) visible(s userPrincipals) func(user, server string) bool {
	return func(user, server string) bool {
		if server == hub.BuiltinName {
			return true
		}
		p, ok := principalOf(context.Background(), s, user)
		return ok && pl.allows(p, server)
	}
}

// isAdmin is the web API's Admin hook.
func isAdmin(r *http.Request) bool {
	p, ok := requestPrincipal(r)
	return ok && p.Role == string(store.RoleAdmin)
}
