package idptest

// NAVER WORKS API 2.0 user account authentication as the fake speaks it
// (developers.worksmobile.com, "Authorization > User Account
// Authentication (OAuth)" and "Users > Get User"):
//
//   - Authorize: GET https://auth.worksmobile.com/oauth2/v2.0/authorize with
//     client_id, redirect_uri, scope (e.g. "user.profile.read calendar"),
//     response_type=code and state (required); the callback gets code and
//     state.
//   - Token: POST https://auth.worksmobile.com/oauth2/v2.0/token, form body
//     with code, grant_type=authorization_code, client_id, client_secret
//     (client_secret_post only). Answer: {"access_token":...,
//     "refresh_token":...,"scope":"user.profile.read","token_type":"Bearer",
//     "expires_in":"86400"} — expires_in is a string. Refresh with
//     grant_type=refresh_token: the refresh token is not rotated. Errors:
//     {"error":"invalid_request","error_description":...}.
//   - Profile: GET https://www.worksapis.com/v1.0/users/me (scope
//     user.profile.read, or user.read / user) with Authorization: Bearer:
//     {"domainId":10000001,"userId":"userf7da-f82c-4284-13e7-030f3b4c756x",
//     "email":"minji@works.example","userName":{"lastName":"김","firstName":"민지"},
//     "organizations":[{"domainId":10000001,"primary":true,"email":...}],...}.
//     Errors: 401 {"code":"UNAUTHORIZED","description":"Authentication failed"},
//     403 {"code":"FORBIDDEN","description":"Not allowed api"} when the
//     token lacks the scope.
//
// The fake serves auth.worksmobile.com and www.worksapis.com on one host.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// NaverWorksUser is an account of the NAVER WORKS fake.
type NaverWorksUser struct {
	UserID    string
	Email     string
	LastName  string
	FirstName string
	DomainID  int64
}

// DefaultNaverWorksUser is who logs in to a fake created without users.
func DefaultNaverWorksUser() NaverWorksUser {
	return NaverWorksUser{UserID: "userf7da-f82c-4284-13e7-030f3b4c756x", Email: "minji@works.example",
		LastName: "김", FirstName: "민지", DomainID: 10000001}
}

// NaverWorksOptions configure NewNaverWorks.
type NaverWorksOptions struct {
	// ClientID and ClientSecret. Zero: "works-client-id", "works-client-secret".
	ClientID, ClientSecret string
	// Users; the first logs in without a login_hint (userId or email).
	// Zero: DefaultNaverWorksUser().
	Users []NaverWorksUser
	// TokenTTL is the access token lifetime. Zero: one hour.
	TokenTTL time.Duration
}

// NaverWorks fakes NAVER WORKS authentication and the users API.
type NaverWorks struct {
	*Server
	o     NaverWorksOptions
	users []NaverWorksUser // guarded by Server.mu
}

// NewNaverWorks starts a NAVER WORKS fake, closed when the test ends. opts may be nil.
func NewNaverWorks(t testing.TB, opts *NaverWorksOptions) *NaverWorks {
	t.Helper()
	var o NaverWorksOptions
	if opts != nil {
		o = *opts
	}
	o.ClientID = orDefault(o.ClientID, "works-client-id")
	o.ClientSecret = orDefault(o.ClientSecret, "works-client-secret")
	f := &NaverWorks{o: o, users: slices.Clone(o.Users)}
	if len(f.users) == 0 {
		f.users = []NaverWorksUser{DefaultNaverWorksUser()}
	}
	s := newServer(t, serverOptions{clientID: o.ClientID, clientSecret: o.ClientSecret, ttl: o.TokenTTL})
	f.Server = s
	s.findUserLocked = func(hint string) (string, bool) {
		for _, u := range f.users {
			if hint == "" || hint == u.UserID || strings.EqualFold(hint, u.Email) {
				return u.UserID, true
			}
		}
		return "", false
	}
	s.claimsLocked = func(string) map[string]any { return nil }
	s.mux.HandleFunc("GET /oauth2/v2.0/authorize", s.handleAuthorize(authorizeFlavor{requireState: true}))
	s.mux.HandleFunc("POST /oauth2/v2.0/token", s.handleToken(tokenFlavor{
		post: true, expiresInString: true, tokenType: "Bearer", scope: "space",
	}))
	s.mux.HandleFunc("GET /v1.0/users/me", f.handleMe)
	s.start(t)
	return f
}

// Config is an idp.Config for the fake, named "naverworks", letting in the
// default user's domain.
func (f *NaverWorks) Config() idp.Config {
	return idp.Config{Type: "naverworks", Name: "naverworks", ClientID: f.clientID, ClientSecret: f.clientSecret,
		Issuer: f.URL(), Domains: []string{"10000001"}}
}

func (f *NaverWorks) handleMe(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userInfoCalls++
	ses, _ := f.bearerLocked(r)
	if ses == nil {
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]any{"code": "UNAUTHORIZED", "description": "Authentication failed"})
		return
	}
	scopes := strings.Fields(ses.scope)
	if !slices.Contains(scopes, "user.profile.read") && !slices.Contains(scopes, "user.read") && !slices.Contains(scopes, "user") {
		writeJSON(w, http.StatusForbidden, "application/json", map[string]any{"code": "FORBIDDEN", "description": "Not allowed api"})
		return
	}
	i := slices.IndexFunc(f.users, func(u NaverWorksUser) bool { return u.UserID == ses.sub })
	if i < 0 {
		writeJSON(w, http.StatusNotFound, "application/json", map[string]any{"code": "NOT_FOUND", "description": "User not found"})
		return
	}
	u := f.users[i]
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"domainId": u.DomainID, "userId": u.UserID, "email": u.Email, "userExternalKey": nil,
		"userName":      map[string]any{"lastName": u.LastName, "firstName": u.FirstName},
		"organizations": []map[string]any{{"domainId": u.DomainID, "primary": true, "email": u.Email}},
	})
}
