package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Issue 9, item 4: GET /api/servers describes each per-user variable to
// the caller, with its title, its description (sanitized HTML) and
// whether it is sensitive, and says which the caller has set; the values
// themselves never appear.
func TestAPIServersDescribesVariables(t *testing.T) {
	notes := newToolServer(t, func(r *http.Request) string { return r.Header.Get("X-Notes-Token") })
	ta := startApp(t, "", fmt.Sprintf(`mcpServers:
  notes:
    type: streamable-http
    url: %q
    headers:
      X-Notes-Token: "{{NOTES_TOKEN}}"
      X-Region: "{{REGION}}"
    customUserVars:
      NOTES_TOKEN:
        title: Notes token
        description: 'Create one at <a href="https://notes.example/settings" onclick="steal()">Settings</a><script>steal()</script>'
      REGION:
        title: Region
        description: Your <b>region</b>
        sensitive: false
`, notes.URL+"/"))
	_, alice := ta.addUser(t, "alice", store.RoleUser)
	_, bob := ta.addUser(t, "bob", store.RoleUser)
	const secret = "alice-notes-secret-value"
	if st, body := ta.do(t, http.MethodPut, "/api/servers/notes/credentials", alice, `{"values":{"NOTES_TOKEN":"`+secret+`"}}`); st != http.StatusOK {
		t.Fatalf("PUT credentials: %d %s", st, body)
	}
	type variable struct {
		Name, Title, Description string
		Sensitive, Set           bool
	}
	want := func(tokenSet bool) []variable {
		return []variable{
			{Name: "NOTES_TOKEN", Title: "Notes token", Sensitive: true, Set: tokenSet,
				Description: `Create one at <a href="https://notes.example/settings" rel="nofollow noreferrer noopener" target="_blank">Settings</a>`},
			{Name: "REGION", Title: "Region", Description: "Your <b>region</b>", Sensitive: false, Set: false},
		}
	}
	for _, tt := range []struct {
		user, key string
		tokenSet  bool
	}{{"alice", alice, true}, {"bob", bob, false}} {
		t.Run(tt.user, func(t *testing.T) {
			for _, path := range []string{"/api/servers", "/api/servers/notes"} {
				st, body := ta.do(t, http.MethodGet, path, tt.key, "")
				if st != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, st, body)
				}
				if strings.Contains(body, secret) {
					t.Fatalf("GET %s shows the value: %s", path, body)
				}
				var reply struct {
					Servers []struct {
						Name           string
						CustomUserVars []variable `json:"customUserVars"`
					}
					CustomUserVars []variable `json:"customUserVars"`
				}
				if err := json.Unmarshal([]byte(body), &reply); err != nil {
					t.Fatal(err)
				}
				got := reply.CustomUserVars
				for _, s := range reply.Servers {
					if s.Name == "notes" {
						got = s.CustomUserVars
					}
				}
				if diff := cmp.Diff(want(tt.tokenSet), got); diff != "" {
					t.Errorf("GET %s: variables (-want +got):\n%s", path, diff)
				}
			}
		})
	}
}
