package e2e

import (
	"net/http"
	"path/filepath"
	"slices"
	"testing"
)

// Issue 3, acceptance 4 ("another user's session id") and What to build 6:
// an MCP session is bound to the user who opened it; the same session id
// presented by another user is 404, whatever the method, and does not
// disturb the owner's session.
func TestSessionOfAnotherUserIs404(t *testing.T) {
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), "")
	addUser(t, cfg, "alice", "user")
	addUser(t, cfg, "bob", "user")
	keyA, keyB := apiKey(t, cfg, "alice"), apiKey(t, cfg, "bob")
	in := serve(t, "switchboard", cfg, freeAddr(t))
	// Bob also signs in through OAuth: the binding is by user, whatever
	// kind of credential he holds.
	c := register(t, in.base)
	_, bobOAuth := signIn(t, in.base, c, in.base+"/mcp", "bob")

	for _, tt := range []struct{ ep, tool string }{
		{"/mcp", "switchboard__get_current_time"}, // all servers, names qualified
		{"/mcp/switchboard", "get_current_time"},  // one server, its own names
	} {
		ep := tt.ep
		t.Run(ep, func(t *testing.T) {
			url := in.base + ep
			sidA := openSession(t, url, keyA)
			if names := toolNames(t, url, keyA, sidA); len(names) == 0 {
				t.Fatal("alice's session lists no tools")
			}
			intruders := []struct{ name, token string }{{"bob's API key", keyB}}
			if ep == "/mcp" { // the OAuth token is for the /mcp resource only
				intruders = append(intruders, struct{ name, token string }{"bob's OAuth token", bobOAuth.Access})
			}
			for _, bob := range intruders {
				t.Run(bob.name, func(t *testing.T) {
					if r := mcpPost(t, url, bob.token, sidA, toolsListMsg); r.status != http.StatusNotFound || r.result != nil {
						t.Errorf("POST tools/list with alice's session id: %d %s, want 404", r.status, r.body)
					}
					if r := mcpPost(t, url, bob.token, sidA, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"`+tt.tool+`","arguments":{}}}`); r.status != http.StatusNotFound || r.result != nil {
						t.Errorf("POST tools/call with alice's session id: %d %s, want 404", r.status, r.body)
					}
					for _, method := range []string{http.MethodGet, http.MethodDelete} {
						req, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
						req.Header.Set("Authorization", "Bearer "+bob.token)
						req.Header.Set("Mcp-Session-Id", sidA)
						req.Header.Set("Accept", "text/event-stream")
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							t.Fatal(err)
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusNotFound {
							t.Errorf("%s with alice's session id: %d, want 404", method, resp.StatusCode)
						}
					}
				})
			}
			// Bob's attempts, the DELETE included, left alice's session alone.
			if names := toolNames(t, url, keyA, sidA); !slices.Contains(names, tt.tool) {
				t.Fatalf("alice's session after bob's attempts lists %v", names)
			}
			// Bob's own session works: the 404s were about the session id.
			sidB := openSession(t, url, keyB)
			if sidB == sidA {
				t.Fatal("bob was given alice's session id")
			}
			toolNames(t, url, keyB, sidB)
		})
	}
}
