package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresSchema creates a schema of its own for the test, dropped when it
// ends, and returns a DSN whose connections use it (as the store's own
// PostgreSQL tests do), or skips the test.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SWITCHBOARD_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("set SWITCHBOARD_TEST_POSTGRES_DSN (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the shared-PostgreSQL end-to-end test")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sb_e2e_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("SWITCHBOARD_TEST_POSTGRES_DSN must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Issue 3, acceptance 5: two Switchboard processes sharing one PostgreSQL
// serve the same users and tokens. They are replicas behind one public URL
// (server.publicURL, the issuer and the tokens' audience); each has its own
// data directory holding a copy of the one secrets key file.
func TestTwoProcessesShareOnePostgres(t *testing.T) {
	dsn := postgresSchema(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	public := "http://" + addrA
	resource := public + "/mcp"
	extra := fmt.Sprintf("  publicURL: %q\nstore:\n  driver: postgres\n  dsn: %q\n", public, dsn)
	dataA, dataB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cfgA, cfgB := writeConfig(t, dataA, extra), writeConfig(t, dataB, extra)

	// The first command creates the key file and migrates the schema.
	addUser(t, cfgA, "alice", "user")
	key, err := os.ReadFile(filepath.Join(dataA, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "secrets.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	// A user created through B is known to A.
	addUser(t, cfgB, "bob", "user")

	a := serve(t, "switchboard A", cfgA, addrA)
	b := serve(t, "switchboard B", cfgB, addrB)
	mcpA, mcpB := a.base+"/mcp", b.base+"/mcp"

	c := register(t, a.base) // registered at A, used at both
	_, tok := signIn(t, a.base, c, resource, "alice")

	t.Run("token issued by A works at B", func(t *testing.T) {
		if !tokenWorks(t, mcpB, tok.Access) {
			t.Fatal("refused at B")
		}
		if !tokenWorks(t, mcpA, tok.Access) {
			t.Fatal("refused at A")
		}
	})
	t.Run("user created through B signs in at A; code issued by B redeemed at A", func(t *testing.T) {
		_, bobTok := signIn(t, a.base, c, resource, "bob")
		if !tokenWorks(t, mcpB, bobTok.Access) {
			t.Fatal("bob's token refused at B")
		}
		br := newBrowser()
		p := newPKCE()
		code := br.authorize(t, b.base, c, p, resource, "alice")
		if !tokenWorks(t, mcpB, redeem(t, a.base, c, code, p, resource).Access) {
			t.Fatal("token refused")
		}
	})
	t.Run("personal API key created through B works at A", func(t *testing.T) {
		k := apiKey(t, cfgB, "alice")
		if !tokenWorks(t, mcpA, k) {
			t.Fatal("refused at A")
		}
	})
	t.Run("refresh at B rotates; the old refresh token is refused at A", func(t *testing.T) {
		next := refresh(t, b.base, c, tok.Refresh)
		if next.status != http.StatusOK || next.Refresh == "" || next.Refresh == tok.Refresh {
			t.Fatalf("refresh at B: %+v", next)
		}
		if !tokenWorks(t, mcpA, next.Access) {
			t.Fatal("access token refreshed at B refused at A")
		}
		old := refresh(t, a.base, c, tok.Refresh)
		if old.status != http.StatusBadRequest || old.Error != "invalid_grant" || old.Access != "" || old.Refresh != "" {
			t.Fatalf("old refresh token at A: %+v, want 400 invalid_grant and nothing issued", old)
		}
		// The reuse revoked the family, at both processes.
		if got := refresh(t, b.base, c, next.Refresh); got.status != http.StatusBadRequest || got.Error != "invalid_grant" {
			t.Fatalf("rotated refresh token after the reuse, at B: %+v, want 400 invalid_grant", got)
		}
		if tokenWorks(t, mcpA, next.Access) {
			t.Error("access token of the revoked family still accepted at A, where the reuse happened")
		}
		// B learns of the revocation from the store once its few-second
		// cache of revocation lookups (authserver.ttlCache) expires.
		start := time.Now()
		for tokenWorks(t, mcpB, next.Access) {
			if time.Since(start) > 20*time.Second {
				t.Fatal("access token of the revoked family still accepted at B after 20s")
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("B refused the revoked family's access token after %v", time.Since(start).Round(100*time.Millisecond))
	})
}
