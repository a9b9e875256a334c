package idptest

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// GitHubUser is a GitHub account of the fake.
type GitHubUser struct {
	ID        int64
	Login     string
	Name      string // empty: null
	Email     string // empty: null, as for a user without a public email
	AvatarURL string
	// Emails are what GET /user/emails lists (scope user:email or user).
	Emails []GitHubEmail
}

// GitHubEmail is one address of a GitHub account.
type GitHubEmail struct {
	Email             string
	Primary, Verified bool
}

// DefaultGitHubUser is who logs in to a fake created without users.
func DefaultGitHubUser() GitHubUser {
	return GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat", AvatarURL: "https://avatars.githubusercontent.com/u/583231"}
}

// GitHubOptions configure NewGitHub.
type GitHubOptions struct {
	// ClientID and ClientSecret. Zero: "github-client-id", "github-client-secret".
	ClientID, ClientSecret string
	// Users; the first logs in without a login (or login_hint) parameter,
	// which names a login. Zero: DefaultGitHubUser().
	Users []GitHubUser
}

// GitHub is a fake of a GitHub OAuth app's login: /login/oauth/authorize,
// /login/oauth/access_token (JSON only with Accept: application/json,
// form-encoded otherwise; errors with status 200; no expiry, no refresh
// token) and the user API at /user (granted scopes in X-OAuth-Scopes).
type GitHub struct {
	*Server
	users []GitHubUser // guarded by Server.mu
}

// NewGitHub starts a GitHub fake, closed when the test ends. opts may be nil.
func NewGitHub(t testing.TB, opts *GitHubOptions) *GitHub {
	t.Helper()
	var o GitHubOptions
	if opts != nil {
		o = *opts
	}
	gh := &GitHub{users: slices.Clone(o.Users)}
	if len(gh.users) == 0 {
		gh.users = []GitHubUser{DefaultGitHubUser()}
	}
	s := newServer(t, serverOptions{
		clientID:     orDefault(o.ClientID, "github-client-id"),
		clientSecret: orDefault(o.ClientSecret, "github-client-secret"),
	})
	gh.Server = s
	s.findUserLocked = func(hint string) (string, bool) {
		for _, u := range gh.users {
			if hint == "" || strings.EqualFold(u.Login, hint) {
				return strconv.FormatInt(u.ID, 10), true
			}
		}
		return "", false
	}
	s.claimsLocked = func(string) map[string]any { return nil }
	s.mux.HandleFunc("GET /login/oauth/authorize", s.handleAuthorize(authorizeFlavor{hintParam: "login"}))
	s.mux.HandleFunc("POST /login/oauth/access_token", s.handleToken(tokenFlavor{
		basic: true, post: true, noExpiry: true, noRefresh: true, errors200: true,
		tokenType: "bearer", scope: "comma", github: true,
	}))
	s.mux.HandleFunc("GET /user", gh.handleUser)
	s.mux.HandleFunc("GET /user/emails", gh.handleEmails)
	s.start(t)
	return gh
}

// Config is an idp.Config for the fake.
func (gh *GitHub) Config() idp.Config {
	return idp.Config{
		Type: "github", Name: "github", ClientID: gh.clientID, ClientSecret: gh.clientSecret,
		AuthURL:    gh.URL() + "/login/oauth/authorize",
		TokenURL:   gh.URL() + "/login/oauth/access_token",
		ProfileURL: gh.URL() + "/user",
	}
}

func (gh *GitHub) handleUser(w http.ResponseWriter, r *http.Request) {
	gh.mu.Lock()
	defer gh.mu.Unlock()
	gh.userInfoCalls++
	const ct = "application/json; charset=utf-8"
	ses, missing := gh.bearerLocked(r, "Bearer", "token")
	var u *GitHubUser
	if ses != nil {
		for i := range gh.users {
			if strconv.FormatInt(gh.users[i].ID, 10) == ses.sub {
				u = &gh.users[i]
			}
		}
	}
	if u == nil {
		msg := "Bad credentials"
		if missing {
			msg = "Requires authentication"
		}
		writeJSON(w, http.StatusUnauthorized, ct, map[string]any{
			"message": msg, "documentation_url": "https://docs.github.com/rest", "status": "401"})
		return
	}
	w.Header().Set("X-OAuth-Scopes", strings.Join(strings.Fields(ses.scope), ", "))
	w.Header().Set("X-Accepted-OAuth-Scopes", "")
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	writeJSON(w, http.StatusOK, ct, map[string]any{
		"login": u.Login, "id": u.ID, "avatar_url": u.AvatarURL, "type": "User",
		"html_url": "https://github.com/" + u.Login, "name": nullable(u.Name), "email": nullable(u.Email),
	})
}

func (gh *GitHub) handleEmails(w http.ResponseWriter, r *http.Request) {
	gh.mu.Lock()
	defer gh.mu.Unlock()
	const ct = "application/json; charset=utf-8"
	ses, _ := gh.bearerLocked(r, "Bearer", "token")
	var u *GitHubUser
	if ses != nil {
		for i := range gh.users {
			if strconv.FormatInt(gh.users[i].ID, 10) == ses.sub {
				u = &gh.users[i]
			}
		}
	}
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, ct, map[string]any{"message": "Requires authentication", "status": "401"})
		return
	}
	scopes := strings.FieldsFunc(ses.scope, func(r rune) bool { return r == ' ' || r == ',' })
	if !slices.Contains(scopes, "user:email") && !slices.Contains(scopes, "user") {
		writeJSON(w, http.StatusNotFound, ct, map[string]any{"message": "Not Found", "status": "404"})
		return
	}
	list := []map[string]any{}
	for _, e := range u.Emails {
		list = append(list, map[string]any{"email": e.Email, "primary": e.Primary, "verified": e.Verified, "visibility": nil})
	}
	writeJSON(w, http.StatusOK, ct, list)
}
