package e2e

import (
	"net/http"
	"path/filepath"
	"slices"
	"testing"
)

// Issue 3, acceptance 5: a restart keeps every registration, grant and token
// valid (same data directory).
func TestRestartKeepsRegistrationGrantAndTokens(t *testing.T) {
	data := filepath.Join(t.TempDir(), "switchboard-data")
	cfg := writeConfig(t, data, "")
	addUser(t, cfg, "alice", "user")
	key := apiKey(t, cfg, "alice")
	// The issuer, and with it every token's aud, derives from the listen
	// address: the second process listens where the first did.
	addr := freeAddr(t)

	first := serve(t, "switchboard (first)", cfg, addr)
	base := first.base
	resource := base + "/mcp"
	c := register(t, base)
	b, tok := signIn(t, base, c, resource, "alice")
	if !tokenWorks(t, resource, tok.Access) {
		t.Fatal("fresh access token refused")
	}
	// One rotation before the restart, so that the spent refresh token is
	// part of what must survive it.
	spent := tok.Refresh
	tok = refresh(t, base, c, spent)
	if tok.status != http.StatusOK || tok.Refresh == spent {
		t.Fatalf("refresh before restart: %+v", tok)
	}
	first.stop()

	second := serve(t, "switchboard (restarted)", cfg, addr)
	if second.base != base {
		t.Fatalf("restarted at %s, not %s", second.base, base)
	}

	t.Run("access token", func(t *testing.T) {
		if !tokenWorks(t, resource, tok.Access) {
			t.Fatal("access token issued before the restart is refused after it")
		}
	})
	t.Run("personal API key", func(t *testing.T) {
		sid := openSession(t, resource, key)
		if names := toolNames(t, resource, key, sid); !slices.Contains(names, "switchboard__get_current_time") {
			t.Fatalf("tools %v", names)
		}
	})
	t.Run("grant: remembered consent and browser session", func(t *testing.T) {
		// The same browser, signed in before the restart, gets a code at
		// once: its session and its consent for (alice, client, redirect
		// URI) are both still known.
		p := newPKCE()
		resp, _ := b.do(t, http.MethodGet, base+"/authorize?"+authorizeQuery(c, p, resource).Encode(), nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize with remembered consent: %d, want 302 straight back to the client", resp.StatusCode)
		}
		code := b.authorize(t, base, c, p, resource, "alice")
		if !tokenWorks(t, resource, redeem(t, base, c, code, p, resource).Access) {
			t.Fatal("token from the remembered grant refused")
		}
	})
	t.Run("registration: a new browser signs in with the same client", func(t *testing.T) {
		_, tr := signIn(t, base, c, resource, "alice")
		if !tokenWorks(t, resource, tr.Access) {
			t.Fatal("token refused")
		}
	})
	t.Run("refresh token rotates; the spent one stays spent", func(t *testing.T) {
		next := refresh(t, base, c, tok.Refresh)
		if next.status != http.StatusOK || next.Refresh == "" || next.Refresh == tok.Refresh {
			t.Fatalf("refresh after restart: %+v", next)
		}
		if !tokenWorks(t, resource, next.Access) {
			t.Fatal("refreshed access token refused")
		}
		if got := refresh(t, base, c, spent); got.status != http.StatusBadRequest || got.Error != "invalid_grant" || got.Access != "" {
			t.Fatalf("refresh token spent before the restart: %+v, want 400 invalid_grant", got)
		}
	})
}
