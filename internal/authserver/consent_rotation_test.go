package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Issue 10, finding 3: remembered consent is per (user, client, redirect
// URI, resource, scopes). A signed-in browser that approved one request
// makes each later one either go straight back to the client (302 with a
// code) or show the consent page again.
func TestConsentPerResourceAndScope(t *testing.T) {
	type step struct {
		resource, scope string
		wantPage        bool // the consent page, not a code
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"server consent does not cover the aggregate endpoint", []step{
			{"/mcp/x", "mcp", true}, {"/mcp/x", "mcp", false}, {"/mcp", "mcp", true},
		}},
		{"server consent does not cover another server", []step{
			{"/mcp/x", "mcp", true}, {"/mcp/y", "mcp", true}, {"/mcp/x", "mcp", false}, {"/mcp/y", "mcp", false},
		}},
		{"aggregate consent covers each server", []step{
			{"/mcp", "mcp", true}, {"/mcp/x", "mcp", false}, {"/mcp/y", "mcp", false}, {"/mcp", "mcp", false},
		}},
		{"a scope not approved asks again", []step{
			{"/mcp/x", "mcp", true}, {"/mcp/x", "mcp extra", true}, {"/mcp/x", "mcp extra", false}, {"/mcp/x", "mcp", false},
		}},
		{"aggregate consent does not cover a wider scope at a server", []step{
			{"/mcp", "mcp", true}, {"/mcp/x", "mcp extra", true}, {"/mcp/x", "extra", false},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.Scopes = []string{"mcp", "extra"}
				o.Resources = func() []string {
					return []string{e0(o) + "/mcp", e0(o) + "/mcp/x", e0(o) + "/mcp/y", e0(o) + "/mcp/z"}
				}
			})
			c := e.publicClient()
			e.user("alice")
			b := newBrowser()
			// Sign in with a request the steps do not repeat: the sign-in
			// page's button is consent for that one only.
			e.login(b, e.authorizeURL(c, newPKCE(), url.Values{"resource": {e.iss + "/mcp/z"}}), "alice")
			for i, st := range tt.steps {
				p := newPKCE()
				resp, page := b.get(t, e.authorizeURL(c, p, url.Values{"resource": {e.iss + st.resource}, "scope": {st.scope}}))
				gotPage := resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/authorize/consent"`)
				if !gotPage && resp.StatusCode != http.StatusFound {
					t.Fatalf("step %d (%s %q): %d %s", i, st.resource, st.scope, resp.StatusCode, page)
				}
				if gotPage != st.wantPage {
					t.Fatalf("step %d (%s %q): consent page shown = %v, want %v (status %d)", i, st.resource, st.scope, gotPage, st.wantPage, resp.StatusCode)
				}
				if !gotPage {
					continue
				}
				rid, csrf := formFields(t, page)
				resp, _ = b.post(t, e.iss+"/authorize/consent", url.Values{"rid": {rid}, "csrf": {csrf}, "action": {"allow"}})
				if resp.StatusCode != http.StatusFound {
					t.Fatalf("step %d: allow: %d", i, resp.StatusCode)
				}
			}
		})
	}
}

// e0 is the issuer a configure function of newEnv sees.
func e0(o *Options) string { return o.Issuer }

// Issue 10, finding 6: a retried rotation (its answer lost) is answered
// with the same successor within the grace window while neither the
// successor nor an access token of its answer was used; otherwise reuse
// still revokes the family (RFC 9700 §4.14.2).
func TestRefreshRetryWithinGrace(t *testing.T) {
	type presentation struct {
		token   string // "old", "new" or "newer"; "use" uses the newest access token at /mcp
		advance time.Duration
		want    string // "same": 200 with the successor again; "rotate": 200 with a new token; "revoked"
	}
	for _, tt := range []struct {
		name  string
		steps []presentation
		// familyAlive is whether the last refresh token handed out still works.
		familyAlive bool
	}{
		{"retry returns the same successor", []presentation{
			{"old", 0, "same"}, {"old", 10 * time.Second, "same"}, {"use", 0, ""}, {"new", 0, "rotate"},
		}, true},
		{"retry after the successor was used revokes", []presentation{
			{"new", 0, "rotate"}, {"old", 0, "revoked"},
		}, false},
		{"retry after the answer's access token was used revokes", []presentation{
			{"use", 0, ""}, {"old", 0, "revoked"},
		}, false},
		{"retry after a retried answer's access token was used revokes", []presentation{
			{"old", 0, "same"}, {"use", 0, ""}, {"old", 0, "revoked"},
		}, false},
		{"retry after the grace window revokes", []presentation{
			{"old", rotationGrace + time.Second, "revoked"},
		}, false},
		{"retry at the end of the grace window", []presentation{
			{"old", rotationGrace, "same"},
		}, true},
		{"the successor's own retry after the successor's successor is used revokes", []presentation{
			{"new", 0, "rotate"}, {"new", time.Second, "same"}, {"newer", 0, "rotate"}, {"new", 0, "revoked"},
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.publicClient()
			e.user("alice")
			_, rt0 := e.tokens(c, "alice")
			status, out := e.refresh(c, rt0)
			if status != http.StatusOK {
				t.Fatalf("first rotation: %d %v", status, out)
			}
			toks := map[string]string{"old": rt0, "new": out["refresh_token"].(string)}
			successor := map[string]string{"old": toks["new"]}
			last, access := toks["new"], out["access_token"].(string)
			for i, st := range tt.steps {
				e.clock.Advance(st.advance)
				if st.token == "use" {
					if code, _, _ := e.call("/mcp", access); code != http.StatusOK {
						t.Fatalf("step %d: access token refused: %d", i, code)
					}
					continue
				}
				status, out := e.refresh(c, toks[st.token])
				if st.want == "revoked" {
					wantOAuthError(t, status, out, http.StatusBadRequest, "invalid_grant")
					continue
				}
				if status != http.StatusOK {
					t.Fatalf("step %d (%s): %d %v", i, st.token, status, out)
				}
				got := out["refresh_token"].(string)
				switch st.want {
				case "same":
					if got != successor[st.token] {
						t.Fatalf("step %d: retry of %s returned another refresh token, want its successor again", i, st.token)
					}
				case "rotate":
					if got == toks[st.token] || got == successor[st.token] && successor[st.token] != "" {
						t.Fatalf("step %d: rotation of %s returned a token seen before", i, st.token)
					}
					successor[st.token] = got
					if st.token == "new" {
						toks["newer"] = got
					}
				}
				last, access = got, out["access_token"].(string)
			}
			status, out = e.refresh(c, last)
			if tt.familyAlive && status != http.StatusOK {
				t.Fatalf("newest refresh token after the steps: %d %v, want it to work", status, out)
			}
			if !tt.familyAlive {
				wantOAuthError(t, status, out, http.StatusBadRequest, "invalid_grant")
				if code, _, _ := e.call("/mcp", access); code != http.StatusUnauthorized {
					t.Fatalf("newest access token of the revoked family: %d, want 401", code)
				}
			}
		})
	}
}
