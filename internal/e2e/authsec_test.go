package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// Issue 10, finding 3, through the real binary: consent remembered for one
// server's endpoint (/mcp/switchboard) is not reused for the aggregate
// endpoint /mcp, which reaches every server; the browser is asked again.
// The other way round needs no new consent: /mcp reaches what
// /mcp/switchboard does.
func TestConsentIsPerResource(t *testing.T) {
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), "")
	addUser(t, cfg, "alice", "user")
	in := serve(t, "switchboard", cfg, freeAddr(t))
	one, all := in.base+"/mcp/switchboard", in.base+"/mcp"
	c := register(t, in.base)

	// Signing in for the one server is consent for it only.
	b := newBrowser()
	p := newPKCE()
	if !tokenWorks(t, one, redeem(t, in.base, c, b.authorize(t, in.base, c, p, one, "alice"), p, one).Access) {
		t.Fatal("token for /mcp/switchboard refused")
	}
	// The same browser, signed in, asking for that server again: no page.
	resp, page := b.do(t, http.MethodGet, in.base+"/authorize?"+authorizeQuery(c, newPKCE(), one).Encode(), nil)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
		t.Fatalf("authorize for the consented resource again: %d %s, want 302 to the client", resp.StatusCode, page)
	}
	// Asking for /mcp: the consent page, not a code.
	resp, page = b.do(t, http.MethodGet, in.base+"/authorize?"+authorizeQuery(c, newPKCE(), all).Encode(), nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/authorize/consent"`) {
		t.Fatalf("authorize for /mcp after consenting to /mcp/switchboard only: %d Location=%q, want the consent page",
			resp.StatusCode, resp.Header.Get("Location"))
	}
	// Approving it gives a token for /mcp, and from then on neither asks.
	p = newPKCE()
	tok := redeem(t, in.base, c, b.authorize(t, in.base, c, p, all, "alice"), p, all)
	if !tokenWorks(t, all, tok.Access) {
		t.Fatal("token for /mcp refused")
	}
	for _, res := range []string{all, one} {
		resp, page := b.do(t, http.MethodGet, in.base+"/authorize?"+authorizeQuery(c, newPKCE(), res).Encode(), nil)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), redirectURI) {
			t.Fatalf("authorize for %s after consenting to /mcp: %d %s, want 302 to the client", res, resp.StatusCode, page)
		}
	}
}

// kill ends the process with SIGKILL, as a crash does.
func (in *instance) kill() {
	in.cmd.Process.Kill()
	<-in.done
}

// rotationProbe tells whether a refresh token has been rotated, by reading
// the store the way nothing but a test would: the row of its hash.
type rotationProbe func(ctx context.Context, token string) (bool, error)

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func sqliteProbe(t *testing.T, dataDir string) rotationProbe {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "switchboard.db")+"?mode=ro&_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(ctx context.Context, tok string) (bool, error) {
		var used int64
		err := db.QueryRowContext(ctx, `SELECT used_at FROM refresh_tokens WHERE hash = ?`, tokenHash(tok)).Scan(&used)
		return used != 0, err
	}
}

func postgresProbe(t *testing.T, dsn string) rotationProbe {
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return func(ctx context.Context, tok string) (bool, error) {
		var used int64
		err := conn.QueryRow(ctx, `SELECT used_at FROM refresh_tokens WHERE hash = $1`, tokenHash(tok)).Scan(&used)
		return used != 0, err
	}
}

// Issue 10, finding 6 and acceptance 3: Switchboard is killed (SIGKILL)
// while a client refreshes, at several moments: right after the rotation
// committed (the answer is then lost for certain), and after fixed delays
// from sending the request (before it arrives, while it is handled, after
// the answer). After each crash the client does what a client does: it
// retries with the refresh token it holds when it got no answer. No grant
// is lost (every retry succeeds), and no refresh token is accepted twice:
// presenting the previous token again yields the very successor the client
// holds, never a new independent pair; once that successor is used, the
// previous token revokes the family.
func TestRefreshSurvivesCrashes(t *testing.T) {
	type variant struct {
		name  string
		extra func(t *testing.T) (yaml string, probe func(t *testing.T, dataDir string) rotationProbe)
	}
	for _, v := range []variant{
		{"sqlite", func(t *testing.T) (string, func(*testing.T, string) rotationProbe) {
			return "", sqliteProbe
		}},
		{"postgres", func(t *testing.T) (string, func(*testing.T, string) rotationProbe) {
			dsn := postgresSchema(t)
			return fmt.Sprintf("store:\n  driver: postgres\n  dsn: %q\n", dsn),
				func(t *testing.T, _ string) rotationProbe { return postgresProbe(t, dsn) }
		}},
	} {
		t.Run(v.name, func(t *testing.T) {
			extra, probeOf := v.extra(t)
			data := filepath.Join(t.TempDir(), "data")
			cfg := writeConfig(t, data, extra)
			addUser(t, cfg, "alice", "user")
			addr := freeAddr(t) // the issuer, hence the tokens' audience, is the listen address
			in := serve(t, "switchboard", cfg, addr)
			probe := probeOf(t, data)
			c := register(t, in.base)
			_, tok := signIn(t, in.base, c, in.base+"/mcp", "alice")
			crashRefreshes(t, cfg, addr, c, tok, &in, probe)
		})
	}
}

// crashTimings are the moments of the kill: "commit" waits until the store
// shows the presented token rotated; the others are delays after the
// request was sent.
var crashTimings = []string{"commit", "0s", "1ms", "5ms", "200ms"}

func crashRefreshes(t *testing.T, cfg, addr string, c oauthClient, tok tokenResponse, in **instance, probe rotationProbe) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(rt string) (tokenResponse, error) {
		resp, err := hc.PostForm((*in).base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}})
		if err != nil {
			return tokenResponse{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return tokenResponse{}, err
		}
		var tr tokenResponse
		if err := json.Unmarshal(b, &tr); err != nil {
			return tokenResponse{}, fmt.Errorf("%d %q: %w", resp.StatusCode, b, err)
		}
		tr.status = resp.StatusCode
		return tr, nil
	}
	const rounds = 20
	var prev string // the token before cur, whose successor cur is
	cur := tok.Refresh
	lost, committedLost := 0, 0
	for round := range rounds {
		timing := crashTimings[round%len(crashTimings)]
		answered := make(chan tokenResponse, 1)
		failed := make(chan error, 1)
		go func() {
			tr, err := post(cur)
			if err != nil {
				failed <- err
				return
			}
			answered <- tr
		}()
		committed := false
		if timing == "commit" {
			deadline := time.Now().Add(5 * time.Second)
			for !committed {
				var err error
				if committed, err = probe(t.Context(), cur); err != nil {
					t.Fatalf("round %d: reading the store: %v", round, err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the rotation did not commit within 5s", round)
				}
			}
		} else {
			d, _ := time.ParseDuration(timing)
			time.Sleep(d)
		}
		(*in).kill()
		var got tokenResponse
		gotAnswer := false
		select {
		case got = <-answered:
			gotAnswer = timing != "commit" // at "commit" the answer counts as lost, whether or not it left
		case <-failed:
		}
		*in = serve(t, fmt.Sprintf("switchboard (after crash %d at %s)", round, timing), cfg, addr)
		if gotAnswer && got.status != http.StatusOK {
			t.Fatalf("round %d (%s): refresh answered %d %s before the crash", round, timing, got.status, got.Error)
		}
		if !gotAnswer {
			lost++
			if rotated, err := probe(t.Context(), cur); err == nil && rotated {
				committedLost++
			}
			// The client retries with the token it holds.
			var err error
			got, err = post(cur)
			if err != nil {
				t.Fatal(err)
			}
			if got.status != http.StatusOK || got.Refresh == "" {
				t.Fatalf("round %d (%s): retry after the crash: %d %s — the grant is lost", round, timing, got.status, got.Error)
			}
		}
		if got.Refresh == cur {
			t.Fatalf("round %d: the refresh token was not rotated", round)
		}
		// Presented once more, the same token yields the same successor:
		// the token is not accepted twice into two independent pairs.
		again, err := post(cur)
		if err != nil {
			t.Fatal(err)
		}
		if again.status != http.StatusOK || again.Refresh != got.Refresh {
			t.Fatalf("round %d (%s): the rotated token presented again: %d %s, refresh token same as the client's = %v",
				round, timing, again.status, again.Error, again.Refresh == got.Refresh)
		}
		if !tokenWorks(t, (*in).base+"/mcp", got.Access) {
			t.Fatalf("round %d: the access token of the refresh is refused", round)
		}
		prev, cur = cur, got.Refresh
	}
	t.Logf("%d rounds, %d answers lost to the crash, %d of them after the rotation committed", rounds, lost, committedLost)
	if committedLost == 0 {
		t.Fatal("no crash fell between the rotation's commit and its answer; the test proved nothing")
	}
	// prev's successor (cur) was never used, so prev is still a retry.
	// Using cur makes prev a reuse, which revokes the family.
	next, err := post(cur)
	if err != nil || next.status != http.StatusOK {
		t.Fatalf("refresh with the newest token: %v %+v", err, next)
	}
	stale, err := post(prev)
	if err != nil || stale.status != http.StatusBadRequest || stale.Error != "invalid_grant" || stale.Refresh != "" {
		t.Fatalf("a token whose successor was used: %v %+v, want 400 invalid_grant", err, stale)
	}
	if after, err := post(next.Refresh); err != nil || after.status != http.StatusBadRequest || after.Error != "invalid_grant" {
		t.Fatalf("the newest token after the family was revoked: %v %+v, want 400 invalid_grant", err, after)
	}
	if tokenWorks(t, (*in).base+"/mcp", next.Access) {
		t.Fatal("an access token of the revoked family still works")
	}
}
