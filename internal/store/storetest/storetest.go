// Package storetest is the contract test suite that every store.Store
// implementation passes (store/sqlite and store/postgres run it). Only
// tests import it.
//
// An implementation's test calls Run with a function that makes an empty
// database of its own for each subtest and returns a Harness on it. The
// suite opens that database more than once: to check that data outlives a
// Close, to check keys at start-up, and to hold two stores on it at once as
// two replicas do.
package storetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Harness reaches one database.
type Harness struct {
	// Open opens a store on the database with keys. The suite closes
	// what it returns.
	Open func(ctx context.Context, keys *secrets.Keyring) (store.Store, error)
	// Dump returns everything the database holds at rest — its files, or
	// every column of every row as text — for the check that no secret
	// is stored in the clear.
	Dump func(t *testing.T) []byte
}

// Rotator is implemented by stores that re-encrypt values sealed by older
// keys with the primary key.
type Rotator interface {
	RotateSecrets(ctx context.Context, batch int) (int, error)
}

// Run runs the suite. newDB is called once per subtest, and subtests run
// in parallel, each on its own database.
func Run(t *testing.T, newDB func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Users", testUsers},
		{"Identities", testIdentities},
		{"Clients", testClients},
		{"Consents", testConsents},
		{"AuthCodes", testAuthCodes},
		{"AuthCodeConcurrentConsume", testAuthCodeConcurrent},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshTokenConcurrentRotate", testRefreshConcurrent},
		{"AccessTokenRevocation", testAccessTokens},
		{"SigningKeys", testSigningKeys},
		{"ProviderTokens", testProviderTokens},
		{"APIKeys", testAPIKeys},
		{"Credentials", testCredentials},
		{"Conversations", testConversations},
		{"Messages", testMessages},
		{"MessagesConcurrentAppend", testMessagesConcurrent},
		{"Agents", testAgents},
		{"Ephemeral", testEphemeral},
		{"EphemeralConcurrentTake", testEphemeralConcurrent},
		{"Locks", testLocks},
		{"LockConcurrent", testLockConcurrent},
		{"Sweep", testSweep},
		{"Persistence", testPersistence},
		{"SharedBetweenStores", testShared},
		{"KeyCheck", testKeyCheck},
		{"RotateSecrets", testRotate},
		{"NoPlaintextAtRest", testCanary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &env{t: t, h: newDB(t), ctx: t.Context(), keys: Keys(t, "k1")}
			tt.fn(t, e)
		})
	}
}

// Keys returns a ring of keys derived from their ids, the first primary,
// so that the same id always means the same key.
func Keys(t testing.TB, ids ...string) *secrets.Keyring {
	t.Helper()
	keys := make([]secrets.Key, len(ids))
	for i, id := range ids {
		secret := bytes.Repeat([]byte(id+"/"), secrets.KeySize)[:secrets.KeySize]
		keys[i] = secrets.Key{ID: id, Secret: secret}
	}
	ring, err := secrets.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

type env struct {
	t    *testing.T
	h    Harness
	ctx  context.Context
	keys *secrets.Keyring
}

// open opens a store with e.keys, closed when the test ends or by the
// returned function.
func (e *env) open() (store.Store, func()) {
	e.t.Helper()
	return e.openWith(e.keys)
}

func (e *env) openWith(keys *secrets.Keyring) (store.Store, func()) {
	e.t.Helper()
	s, err := e.h.Open(e.ctx, keys)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	closer := sync.OnceFunc(func() {
		if err := s.Close(); err != nil {
			e.t.Errorf("close store: %v", err)
		}
	})
	e.t.Cleanup(closer)
	return s, closer
}

// now is a time with nanoseconds, as stores must keep them.
func now() time.Time { return time.Now().UTC().Truncate(time.Second).Add(123456789) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func createUser(t *testing.T, ctx context.Context, s store.Store, username, email string) *store.User {
	t.Helper()
	u := &store.User{Username: username, Email: email, Name: "Name of " + username, Role: store.RoleUser}
	must(t, s.CreateUser(ctx, u))
	return u
}

func testUsers(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on empty store = %d, %v", n, err)
	}
	alice := &store.User{Username: "Alice", Email: "Alice@Example.com", Name: "Alice", Role: store.RoleAdmin, PasswordHash: "$argon2id$x"}
	must(t, s.CreateUser(ctx, alice))
	if alice.ID == "" || alice.CreatedAt.IsZero() || alice.UpdatedAt.IsZero() {
		t.Fatalf("CreateUser did not set ID, CreatedAt, UpdatedAt: %+v", alice)
	}
	for _, lookup := range []struct {
		name string
		fn   func() (*store.User, error)
	}{
		{"by id", func() (*store.User, error) { return s.UserByID(ctx, alice.ID) }},
		{"by username", func() (*store.User, error) { return s.UserByUsername(ctx, "aLiCe") }},
		{"by email", func() (*store.User, error) { return s.UserByEmail(ctx, "alice@EXAMPLE.com") }},
	} {
		got, err := lookup.fn()
		must(t, err)
		diff(t, lookup.name, got, alice)
	}

	// Case-insensitive uniqueness of username and email.
	wantErr(t, "same username, other case", s.CreateUser(ctx, &store.User{Username: "ALICE"}), store.ErrConflict)
	wantErr(t, "same email, other case", s.CreateUser(ctx, &store.User{Username: "alice2", Email: "alice@example.COM"}), store.ErrConflict)
	// Users without username or email do not collide.
	idpOnly1 := createUser(t, ctx, s, "", "")
	idpOnly2 := createUser(t, ctx, s, "", "")
	if idpOnly1.ID == idpOnly2.ID {
		t.Fatal("two users got the same ID")
	}
	wantErr(t, "empty username lookup", errOf(s.UserByUsername(ctx, "")), store.ErrNotFound)
	wantErr(t, "empty email lookup", errOf(s.UserByEmail(ctx, "")), store.ErrNotFound)
	wantErr(t, "unknown id", errOf(s.UserByID(ctx, "nobody")), store.ErrNotFound)
	wantErr(t, "unknown username", errOf(s.UserByUsername(ctx, "nobody")), store.ErrNotFound)
	wantErr(t, "unknown email", errOf(s.UserByEmail(ctx, "nobody@example.com")), store.ErrNotFound)

	// Update.
	bob := createUser(t, ctx, s, "bob", "bob@example.com")
	bob.Username, bob.Email, bob.Disabled, bob.Role = "Robert", "", true, store.RoleAdmin
	must(t, s.UpdateUser(ctx, bob))
	got, err := s.UserByUsername(ctx, "robert")
	must(t, err)
	diff(t, "updated user", got, bob)
	wantErr(t, "old username after rename", errOf(s.UserByUsername(ctx, "bob")), store.ErrNotFound)
	wantErr(t, "old email after removal", errOf(s.UserByEmail(ctx, "bob@example.com")), store.ErrNotFound)
	bob.Email = "ALICE@example.com"
	wantErr(t, "update to a taken email", s.UpdateUser(ctx, bob), store.ErrConflict)
	wantErr(t, "update of unknown user", s.UpdateUser(ctx, &store.User{ID: "nobody", Username: "x"}), store.ErrNotFound)
	// A freed username can be taken again.
	createUser(t, ctx, s, "Bob", "")

	users, err := s.ListUsers(ctx)
	must(t, err)
	if len(users) != 5 {
		t.Errorf("ListUsers returned %d users, want 5", len(users))
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 5 {
		t.Errorf("CountUsers = %d, %v; want 5", n, err)
	}
}

func errOf[T any](_ T, err error) error { return err }

func testIdentities(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	u := createUser(t, ctx, s, "alice", "")
	id := &store.Identity{Provider: "naver", Subject: "12345", UserID: u.ID, Email: "a@naver.com", Name: "앨리스", Profile: []byte(`{"id":"12345"}`)}
	must(t, s.LinkIdentity(ctx, id))
	got, err := s.IdentityBySubject(ctx, "naver", "12345")
	must(t, err)
	diff(t, "identity", got, id)
	wantErr(t, "second link of the subject", s.LinkIdentity(ctx, &store.Identity{Provider: "naver", Subject: "12345", UserID: u.ID}), store.ErrConflict)
	wantErr(t, "link to unknown user", s.LinkIdentity(ctx, &store.Identity{Provider: "github", Subject: "1", UserID: "nobody"}), store.ErrNotFound)
	wantErr(t, "unknown subject", errOf(s.IdentityBySubject(ctx, "google", "12345")), store.ErrNotFound)
	gh := &store.Identity{Provider: "github", Subject: "octo", UserID: u.ID}
	must(t, s.LinkIdentity(ctx, gh))
	ids, err := s.IdentitiesOfUser(ctx, u.ID)
	must(t, err)
	if len(ids) != 2 {
		t.Fatalf("IdentitiesOfUser = %d identities, want 2", len(ids))
	}
	ids, err = s.IdentitiesOfUser(ctx, "nobody")
	if err != nil || len(ids) != 0 {
		t.Errorf("IdentitiesOfUser(nobody) = %v, %v; want none", ids, err)
	}
}

func testClients(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	dcr := &store.Client{
		ID: "dcr-1", Name: "Claude", RedirectURIs: []string{"http://127.0.0.1/callback", "https://claude.ai/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}, Scope: "mcp",
		TokenEndpointAuthMethod: "client_secret_post", ApplicationType: "native", Secret: "s3cr3t",
		Metadata: []byte(`{"client_name":"Claude"}`), ExpiresAt: t0.Add(time.Hour),
	}
	must(t, s.CreateClient(ctx, dcr))
	got, err := s.ClientByID(ctx, "dcr-1")
	must(t, err)
	diff(t, "client", got, dcr)
	wantErr(t, "second DCR client with the id", s.CreateClient(ctx, &store.Client{ID: "dcr-1"}), store.ErrConflict)
	wantErr(t, "CIMD over a DCR client", s.CreateClient(ctx, &store.Client{ID: "dcr-1", CIMD: true}), store.ErrConflict)
	wantErr(t, "unknown client", errOf(s.ClientByID(ctx, "nope")), store.ErrNotFound)

	public := &store.Client{ID: "public", TokenEndpointAuthMethod: "none"}
	must(t, s.CreateClient(ctx, public))
	got, err = s.ClientByID(ctx, "public")
	must(t, err)
	diff(t, "public client", got, public)

	// CIMD clients are upserted when their document changes.
	const url = "https://app.example.com/oauth/client.json"
	cimd := &store.Client{ID: url, Name: "v1", CIMD: true, RedirectURIs: []string{"https://app.example.com/cb"}}
	must(t, s.CreateClient(ctx, cimd))
	must(t, s.TouchClient(ctx, url, t0))
	cimd2 := &store.Client{ID: url, Name: "v2", CIMD: true, RedirectURIs: []string{"https://app.example.com/cb2"}, CreatedAt: t0.Add(time.Minute)}
	must(t, s.CreateClient(ctx, cimd2))
	got, err = s.ClientByID(ctx, url)
	must(t, err)
	if got.Name != "v2" || got.RedirectURIs[0] != "https://app.example.com/cb2" || !got.LastUsedAt.Equal(t0) || !got.CreatedAt.Equal(cimd.CreatedAt) {
		t.Errorf("CIMD upsert: got %+v", got)
	}

	wantErr(t, "touch unknown client", s.TouchClient(ctx, "nope", t0), store.ErrNotFound)

	// Only registrations past their expiry that were never used go.
	unused := &store.Client{ID: "unused", ExpiresAt: t0.Add(-time.Second)}
	used := &store.Client{ID: "used", ExpiresAt: t0.Add(-time.Second)}
	must(t, s.CreateClient(ctx, unused))
	must(t, s.CreateClient(ctx, used))
	must(t, s.TouchClient(ctx, "used", t0.Add(-time.Hour)))
	u := createUser(t, ctx, s, "alice", "")
	must(t, s.SaveConsent(ctx, &store.Consent{UserID: u.ID, ClientID: "unused", RedirectURI: "https://x/cb", Resource: "https://sb/mcp"}))
	n, err := s.DeleteExpiredClients(ctx, t0)
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteExpiredClients = %d, want 1", n)
	}
	wantErr(t, "expired unused client", errOf(s.ClientByID(ctx, "unused")), store.ErrNotFound)
	wantErr(t, "consent of deleted client", errOf(s.ConsentFor(ctx, u.ID, "unused", "https://x/cb", "https://sb/mcp")), store.ErrNotFound)
	for _, id := range []string{"used", "dcr-1", url, "public"} {
		if _, err := s.ClientByID(ctx, id); err != nil {
			t.Errorf("client %s after DeleteExpiredClients: %v", id, err)
		}
	}
	// Assigned ids.
	anon := &store.Client{Name: "no id"}
	must(t, s.CreateClient(ctx, anon))
	if anon.ID == "" {
		t.Error("CreateClient did not assign an ID")
	}
}

func testConsents(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	u := createUser(t, ctx, s, "alice", "")
	must(t, s.CreateClient(ctx, &store.Client{ID: "c1"}))
	const all, hdr = "https://sb/mcp", "https://sb/mcp/hdr"
	c := &store.Consent{UserID: u.ID, ClientID: "c1", RedirectURI: "https://a/cb", Resource: hdr, Scopes: []string{"mcp"}}
	must(t, s.SaveConsent(ctx, c))
	c2 := &store.Consent{UserID: u.ID, ClientID: "c1", RedirectURI: "https://a/cb", Resource: hdr, Scopes: []string{"mcp", "offline_access"}}
	must(t, s.SaveConsent(ctx, c2))
	must(t, s.SaveConsent(ctx, &store.Consent{UserID: u.ID, ClientID: "c1", RedirectURI: "https://b/cb", Resource: hdr}))
	got, err := s.ConsentFor(ctx, u.ID, "c1", "https://a/cb", hdr)
	must(t, err)
	diff(t, "upserted consent", got, c2)
	wantErr(t, "other redirect URI", errOf(s.ConsentFor(ctx, u.ID, "c1", "https://c/cb", hdr)), store.ErrNotFound)
	// Consent for one resource is not consent for another (issue 10,
	// finding 3): /mcp/hdr's does not answer for /mcp.
	wantErr(t, "other resource", errOf(s.ConsentFor(ctx, u.ID, "c1", "https://a/cb", all)), store.ErrNotFound)
	wide := &store.Consent{UserID: u.ID, ClientID: "c1", RedirectURI: "https://a/cb", Resource: all, Scopes: []string{"mcp"}}
	must(t, s.SaveConsent(ctx, wide))
	got, err = s.ConsentFor(ctx, u.ID, "c1", "https://a/cb", all)
	must(t, err)
	diff(t, "consent for the second resource", got, wide)
	got, err = s.ConsentFor(ctx, u.ID, "c1", "https://a/cb", hdr)
	must(t, err)
	diff(t, "consent for the first resource, after the second was saved", got, c2)
	wantErr(t, "consent for unknown client", s.SaveConsent(ctx, &store.Consent{UserID: u.ID, ClientID: "nope", RedirectURI: "x", Resource: all}), store.ErrNotFound)
	must(t, s.DeleteConsent(ctx, u.ID, "c1"))
	for _, k := range []struct{ uri, res string }{{"https://a/cb", hdr}, {"https://b/cb", hdr}, {"https://a/cb", all}} {
		wantErr(t, "deleted consent "+k.uri+" "+k.res, errOf(s.ConsentFor(ctx, u.ID, "c1", k.uri, k.res)), store.ErrNotFound)
	}
	must(t, s.DeleteConsent(ctx, u.ID, "c1")) // nothing left: not an error
}

func newCode(hash string, expires time.Time) *store.AuthCode {
	return &store.AuthCode{
		Hash: hash, ClientID: "c1", UserID: "u1", RedirectURI: "http://127.0.0.1:33418/cb",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Resource: "https://sb.example.com/mcp",
		Scopes: []string{"mcp"}, Nonce: "n", ExpiresAt: expires,
	}
}

func testAuthCodes(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	code := newCode("h1", t0.Add(time.Minute))
	must(t, s.SaveAuthCode(ctx, code))
	wantErr(t, "same hash again", s.SaveAuthCode(ctx, newCode("h1", t0)), store.ErrConflict)

	got, err := s.ConsumeAuthCode(ctx, "h1", t0)
	must(t, err)
	want := *code
	want.UsedAt = t0
	diff(t, "consumed code", got, &want)

	must(t, s.MarkCodeIssued(ctx, "h1", "fam-1"))
	got, err = s.ConsumeAuthCode(ctx, "h1", t0.Add(time.Second))
	wantErr(t, "replay", err, store.ErrUsed)
	if got == nil || got.FamilyID != "fam-1" || !got.UsedAt.Equal(t0) {
		t.Fatalf("replay returned %+v, want the code with FamilyID fam-1 and the first use time", got)
	}
	// A replay after expiry is still a replay.
	_, err = s.ConsumeAuthCode(ctx, "h1", t0.Add(time.Hour))
	wantErr(t, "replay after expiry", err, store.ErrUsed)

	must(t, s.SaveAuthCode(ctx, newCode("h2", t0)))
	_, err = s.ConsumeAuthCode(ctx, "h2", t0) // expiry equal to now has passed
	wantErr(t, "expired code", err, store.ErrExpired)
	_, err = s.ConsumeAuthCode(ctx, "nope", t0)
	wantErr(t, "unknown code", err, store.ErrNotFound)
	wantErr(t, "mark unknown code", s.MarkCodeIssued(ctx, "nope", "f"), store.ErrNotFound)
}

// race runs fn n times at once on the stores, round robin, and returns how
// many calls returned no error, failing the test on errors other than the
// allowed ones.
func race(t *testing.T, n int, stores []store.Store, fn func(s store.Store) error, allowed ...error) int {
	t.Helper()
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			err := fn(s)
			if err == nil {
				wins.Add(1)
				return
			}
			for _, a := range allowed {
				if errors.Is(err, a) {
					return
				}
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	return int(wins.Load())
}

func testAuthCodeConcurrent(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open() // a second replica on the same database
	ctx := e.ctx
	t0 := now()
	for round := range 5 {
		hash := fmt.Sprintf("code-%d", round)
		must(t, s1.SaveAuthCode(ctx, newCode(hash, t0.Add(time.Minute))))
		wins := race(t, 20, []store.Store{s1, s2}, func(s store.Store) error {
			c, err := s.ConsumeAuthCode(ctx, hash, t0)
			if errors.Is(err, store.ErrUsed) && (c == nil || c.Hash != hash) {
				return fmt.Errorf("ErrUsed without the code: %+v", c)
			}
			return err
		}, store.ErrUsed)
		if wins != 1 {
			t.Fatalf("round %d: %d of 20 concurrent ConsumeAuthCode calls succeeded, want exactly 1", round, wins)
		}
	}
}

func newRefresh(hash, family string, expires time.Time) *store.RefreshToken {
	return &store.RefreshToken{Hash: hash, FamilyID: family, ClientID: "c1", UserID: "u1", Resource: "https://sb/mcp", Scopes: []string{"mcp", "offline_access"}, ExpiresAt: expires}
}

func testRefreshTokens(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	exp := t0.Add(24 * time.Hour)
	r1 := newRefresh("r1", "fam", exp)
	must(t, s.SaveRefreshToken(ctx, r1))
	got, err := s.RefreshTokenByHash(ctx, "r1")
	must(t, err)
	diff(t, "refresh token", got, r1)
	wantErr(t, "same hash again", s.SaveRefreshToken(ctx, newRefresh("r1", "fam", exp)), store.ErrConflict)

	// Rotation: old is marked used, next saved in the same family.
	r2 := &store.RefreshToken{Hash: "r2", Scopes: []string{"mcp"}, ExpiresAt: exp}
	old, err := s.RotateRefreshToken(ctx, "r1", r2, []byte("sealed r2"), t0)
	must(t, err)
	if old.Hash != "r1" || !old.UsedAt.Equal(t0) || old.SuccessorHash != "r2" || string(old.Successor) != "sealed r2" {
		t.Errorf("RotateRefreshToken returned %+v, want r1 used at %v with successor r2", old, t0)
	}
	got, err = s.RefreshTokenByHash(ctx, "r2")
	must(t, err)
	if got.FamilyID != "fam" || got.ClientID != "c1" || got.UserID != "u1" || !got.UsedAt.IsZero() {
		t.Errorf("rotated token = %+v, want family fam, client c1, user u1, unused", got)
	}

	// Reuse of r1: the token comes back with ErrUsed; nothing is saved.
	// It carries its successor, for the caller to judge a retry by.
	old, err = s.RotateRefreshToken(ctx, "r1", &store.RefreshToken{Hash: "r3", ExpiresAt: exp}, []byte("sealed r3"), t0.Add(time.Second))
	wantErr(t, "reuse", err, store.ErrUsed)
	if old == nil || old.Hash != "r1" || old.FamilyID != "fam" || old.SuccessorHash != "r2" || string(old.Successor) != "sealed r2" {
		t.Fatalf("reuse returned %+v, want r1 with its successor r2", old)
	}
	wantErr(t, "token of a failed rotation", errOf(s.RefreshTokenByHash(ctx, "r3")), store.ErrNotFound)

	// A rotation that cannot save next changes nothing.
	_, err = s.RotateRefreshToken(ctx, "r2", &store.RefreshToken{Hash: "r1", ExpiresAt: exp}, nil, t0)
	wantErr(t, "rotation onto a taken hash", err, store.ErrConflict)
	if got, _ := s.RefreshTokenByHash(ctx, "r2"); got == nil || !got.UsedAt.IsZero() || got.SuccessorHash != "" {
		t.Errorf("r2 after a failed rotation = %+v, want it unused", got)
	}
	if got, _ := s.RefreshTokenByHash(ctx, "r1"); got == nil || string(got.Successor) != "sealed r2" {
		t.Errorf("r1 after its successor's failed rotation = %+v, want its successor kept", got)
	}
	_, err = s.RotateRefreshToken(ctx, "r2", &store.RefreshToken{Hash: "r4", FamilyID: "other"}, nil, t0)
	if err == nil {
		t.Error("rotation into another family succeeded")
	}

	// Rotating the successor makes its predecessor forget it: a used
	// successor is never handed out again.
	old, err = s.RotateRefreshToken(ctx, "r2", &store.RefreshToken{Hash: "r2b", ExpiresAt: exp}, []byte("sealed r2b"), t0)
	must(t, err)
	if old.SuccessorHash != "r2b" || string(old.Successor) != "sealed r2b" {
		t.Errorf("rotated r2 = %+v, want successor r2b", old)
	}
	if got, _ := s.RefreshTokenByHash(ctx, "r1"); got == nil || got.Successor != nil || got.SuccessorHash != "r2" {
		t.Errorf("r1 after its successor was rotated = %+v, want the successor's hash without the sealed token", got)
	}
	if got, _ := s.RefreshTokenByHash(ctx, "r2"); got == nil || string(got.Successor) != "sealed r2b" {
		t.Errorf("r2 = %+v, want its own successor kept", got)
	}

	// Revoked family: ErrNotFound.
	if revoked, err := s.FamilyRevoked(ctx, "fam"); err != nil || revoked {
		t.Fatalf("FamilyRevoked before revocation = %v, %v", revoked, err)
	}
	must(t, s.RevokeFamily(ctx, "fam", t0))
	must(t, s.RevokeFamily(ctx, "fam", t0)) // idempotent
	if revoked, err := s.FamilyRevoked(ctx, "fam"); err != nil || !revoked {
		t.Fatalf("FamilyRevoked after revocation = %v, %v", revoked, err)
	}
	_, err = s.RotateRefreshToken(ctx, "r2b", &store.RefreshToken{Hash: "r5", ExpiresAt: exp}, nil, t0)
	wantErr(t, "rotation in revoked family", err, store.ErrNotFound)
	_, err = s.RotateRefreshToken(ctx, "r1", &store.RefreshToken{Hash: "r5", ExpiresAt: exp}, nil, t0)
	wantErr(t, "reuse in revoked family", err, store.ErrNotFound)

	// Expired and unknown.
	must(t, s.SaveRefreshToken(ctx, newRefresh("old", "fam2", t0)))
	_, err = s.RotateRefreshToken(ctx, "old", &store.RefreshToken{Hash: "r6", ExpiresAt: exp}, nil, t0)
	wantErr(t, "expired token", err, store.ErrExpired)
	_, err = s.RotateRefreshToken(ctx, "nope", &store.RefreshToken{Hash: "r7", ExpiresAt: exp}, nil, t0)
	wantErr(t, "unknown token", err, store.ErrNotFound)

	// Revoking a user's families at a client leaves other clients' alone.
	must(t, s.SaveRefreshToken(ctx, &store.RefreshToken{Hash: "a", FamilyID: "fa", ClientID: "ca", UserID: "alice", ExpiresAt: exp}))
	must(t, s.SaveRefreshToken(ctx, &store.RefreshToken{Hash: "a2", FamilyID: "fa2", ClientID: "ca", UserID: "alice", ExpiresAt: exp}))
	must(t, s.SaveRefreshToken(ctx, &store.RefreshToken{Hash: "b", FamilyID: "fb", ClientID: "cb", UserID: "alice", ExpiresAt: exp}))
	must(t, s.SaveRefreshToken(ctx, &store.RefreshToken{Hash: "c", FamilyID: "fc", ClientID: "ca", UserID: "bob", ExpiresAt: exp}))
	must(t, s.RevokeUserClientFamilies(ctx, "alice", "ca", t0))
	for fam, want := range map[string]bool{"fa": true, "fa2": true, "fb": false, "fc": false} {
		if got, err := s.FamilyRevoked(ctx, fam); err != nil || got != want {
			t.Errorf("FamilyRevoked(%s) = %v, %v; want %v", fam, got, err, want)
		}
	}
}

func testRefreshConcurrent(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open()
	ctx := e.ctx
	t0 := now()
	must(t, s1.SaveRefreshToken(ctx, newRefresh("r0", "fam", t0.Add(time.Hour))))
	var i atomic.Int32
	wins := race(t, 20, []store.Store{s1, s2}, func(s store.Store) error {
		next := &store.RefreshToken{Hash: fmt.Sprintf("next-%d", i.Add(1)), ExpiresAt: t0.Add(time.Hour)}
		old, err := s.RotateRefreshToken(ctx, "r0", next, []byte(next.Hash), t0)
		if errors.Is(err, store.ErrUsed) && (old == nil || old.Hash != "r0") {
			return fmt.Errorf("ErrUsed without the token: %+v", old)
		}
		return err
	}, store.ErrUsed)
	if wins != 1 {
		t.Fatalf("%d of 20 concurrent rotations succeeded, want exactly 1", wins)
	}
	saved := 0
	for n := range 20 {
		if _, err := s1.RefreshTokenByHash(ctx, fmt.Sprintf("next-%d", n+1)); err == nil {
			saved++
		}
	}
	if saved != 1 {
		t.Errorf("%d successor tokens saved, want 1", saved)
	}
}

func testAccessTokens(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	if r, err := s.AccessTokenRevoked(ctx, "jti-1"); err != nil || r {
		t.Fatalf("AccessTokenRevoked before = %v, %v", r, err)
	}
	must(t, s.RevokeAccessToken(ctx, "jti-1", t0.Add(time.Hour)))
	must(t, s.RevokeAccessToken(ctx, "jti-1", t0.Add(time.Hour))) // idempotent
	if r, err := s.AccessTokenRevoked(ctx, "jti-1"); err != nil || !r {
		t.Fatalf("AccessTokenRevoked after = %v, %v", r, err)
	}
	must(t, s.Sweep(ctx, t0.Add(2*time.Hour)))
	if r, err := s.AccessTokenRevoked(ctx, "jti-1"); err != nil || r {
		t.Errorf("revocation kept past the token's expiry: %v, %v", r, err)
	}
}

func testSigningKeys(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	k1 := &store.SigningKey{ID: "kid-1", Algorithm: "ES256", PrivateKey: []byte("pkcs8-der-1"), PublicJWK: []byte(`{"kid":"kid-1"}`), CreatedAt: t0}
	k2 := &store.SigningKey{ID: "kid-2", Algorithm: "EdDSA", PrivateKey: []byte("pkcs8-der-2"), PublicJWK: []byte(`{"kid":"kid-2"}`), CreatedAt: t0.Add(time.Hour)}
	must(t, s.SaveSigningKey(ctx, k1))
	must(t, s.SaveSigningKey(ctx, k2))
	wantErr(t, "same kid again", s.SaveSigningKey(ctx, &store.SigningKey{ID: "kid-1"}), store.ErrConflict)
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	diff(t, "signing keys, newest first", keys, []*store.SigningKey{k2, k1})
	must(t, s.RetireSigningKey(ctx, "kid-1", t0.Add(2*time.Hour)))
	must(t, s.RetireSigningKey(ctx, "kid-1", t0.Add(3*time.Hour))) // keeps the first time
	wantErr(t, "retire unknown key", s.RetireSigningKey(ctx, "nope", t0), store.ErrNotFound)
	keys, err = s.SigningKeys(ctx)
	must(t, err)
	if !keys[1].RetiredAt.Equal(t0.Add(2*time.Hour)) || !keys[0].RetiredAt.IsZero() {
		t.Errorf("retired: %v, %v", keys[0].RetiredAt, keys[1].RetiredAt)
	}
}

func testProviderTokens(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	u := createUser(t, ctx, s, "alice", "")
	tok := &store.ProviderToken{UserID: u.ID, Provider: "naver", AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "bearer",
		Scopes: []string{"calendar"}, Expiry: t0.Add(time.Hour), IDToken: "idt-1"}
	must(t, s.SaveProviderToken(ctx, tok))
	got, err := s.ProviderToken(ctx, u.ID, "naver")
	must(t, err)
	diff(t, "provider token", got, tok)

	// Upsert; GitHub OAuth app tokens do not expire and have no refresh token.
	tok2 := &store.ProviderToken{UserID: u.ID, Provider: "naver", AccessToken: "at-2", TokenType: "bearer", UpdatedAt: t0}
	must(t, s.SaveProviderToken(ctx, tok2))
	got, err = s.ProviderToken(ctx, u.ID, "naver")
	must(t, err)
	diff(t, "upserted provider token", got, tok2)

	wantErr(t, "other provider", errOf(s.ProviderToken(ctx, u.ID, "google")), store.ErrNotFound)
	wantErr(t, "token of unknown user", s.SaveProviderToken(ctx, &store.ProviderToken{UserID: "nobody", Provider: "naver"}), store.ErrNotFound)
	must(t, s.DeleteProviderToken(ctx, u.ID, "naver"))
	wantErr(t, "deleted token", errOf(s.ProviderToken(ctx, u.ID, "naver")), store.ErrNotFound)
	must(t, s.DeleteProviderToken(ctx, u.ID, "naver"))
}

func testAPIKeys(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	u := createUser(t, ctx, s, "alice", "")
	k := &store.APIKey{UserID: u.ID, Name: "ci", Hash: "sha-1", Prefix: "sb_ab12", Scopes: []string{"mcp"}, ExpiresAt: t0.Add(time.Hour)}
	must(t, s.CreateAPIKey(ctx, k))
	if k.ID == "" || k.CreatedAt.IsZero() {
		t.Fatalf("CreateAPIKey did not set ID and CreatedAt: %+v", k)
	}
	got, err := s.APIKeyByHash(ctx, "sha-1")
	must(t, err)
	diff(t, "API key", got, k)
	wantErr(t, "same hash again", s.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Hash: "sha-1"}), store.ErrConflict)
	wantErr(t, "key of unknown user", s.CreateAPIKey(ctx, &store.APIKey{UserID: "nobody", Hash: "sha-x"}), store.ErrNotFound)
	wantErr(t, "unknown hash", errOf(s.APIKeyByHash(ctx, "nope")), store.ErrNotFound)
	must(t, s.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Name: "laptop", Hash: "sha-2", CreatedAt: t0.Add(time.Minute)}))

	must(t, s.TouchAPIKey(ctx, k.ID, t0))
	must(t, s.RevokeAPIKey(ctx, k.ID, t0.Add(time.Second)))
	must(t, s.RevokeAPIKey(ctx, k.ID, t0.Add(time.Hour)))
	wantErr(t, "revoke unknown", s.RevokeAPIKey(ctx, "nope", t0), store.ErrNotFound)
	wantErr(t, "touch unknown", s.TouchAPIKey(ctx, "nope", t0), store.ErrNotFound)
	got, err = s.APIKeyByHash(ctx, "sha-1")
	must(t, err)
	if !got.LastUsedAt.Equal(t0) || !got.RevokedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after touch and revoke: %+v", got)
	}
	keys, err := s.ListAPIKeys(ctx, u.ID)
	must(t, err)
	if len(keys) != 2 || keys[0].Name != "ci" || keys[1].Name != "laptop" {
		t.Errorf("ListAPIKeys = %+v", keys)
	}
}

func testCredentials(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	// The hub keys credentials by user ids that need not be users rows.
	a := &store.Credential{UserID: "u1", Server: "github", Name: "token", Value: "ghp_1", UpdatedAt: t0}
	b := &store.Credential{UserID: "u1", Server: "github", Name: "api_key", Value: "k", UpdatedAt: t0}
	must(t, s.SetCredential(ctx, a))
	must(t, s.SetCredential(ctx, b))
	must(t, s.SetCredential(ctx, &store.Credential{UserID: "u1", Server: "slack", Name: "token", Value: "xoxb"}))
	must(t, s.SetCredential(ctx, &store.Credential{UserID: "u2", Server: "github", Name: "token", Value: "ghp_2"}))
	a2 := &store.Credential{UserID: "u1", Server: "github", Name: "token", Value: "ghp_new", UpdatedAt: t0.Add(time.Minute)}
	must(t, s.SetCredential(ctx, a2))
	got, err := s.Credentials(ctx, "u1", "github")
	must(t, err)
	diff(t, "credentials", got, []*store.Credential{b, a2})
	must(t, s.DeleteCredentials(ctx, "u1", "github"))
	got, err = s.Credentials(ctx, "u1", "github")
	if err != nil || len(got) != 0 {
		t.Errorf("after delete: %v, %v", got, err)
	}
	if got, _ := s.Credentials(ctx, "u1", "slack"); len(got) != 1 {
		t.Errorf("delete removed other servers' credentials: %v", got)
	}
	if got, _ := s.Credentials(ctx, "u2", "github"); len(got) != 1 {
		t.Errorf("delete removed other users' credentials: %v", got)
	}
}

func testConversations(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now().Add(-time.Hour)
	// Conversations are keyed by any user id, as the agent host has them.
	a := &store.Conversation{ID: "c1", UserID: "alice", Title: "첫 대화", Agent: "helper", Model: "openai/gpt-5", CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
	b := &store.Conversation{UserID: "alice", Title: "second", CreatedAt: t0.Add(time.Minute)}
	must(t, s.CreateConversation(ctx, a))
	must(t, s.CreateConversation(ctx, b))
	if b.ID == "" || !b.UpdatedAt.Equal(b.CreatedAt) {
		t.Errorf("CreateConversation did not fill in ID and UpdatedAt: %+v", b)
	}
	wantErr(t, "create with a taken id", s.CreateConversation(ctx, &store.Conversation{ID: "c1", UserID: "alice"}), store.ErrConflict)
	// Ids are per user: bob's c1 is another conversation.
	bobs := &store.Conversation{ID: "c1", UserID: "bob", Title: "bob's", CreatedAt: t0}
	must(t, s.CreateConversation(ctx, bobs))

	got, err := s.ConversationByID(ctx, "alice", "c1")
	must(t, err)
	diff(t, "conversation", got, a)
	list, err := s.ListConversations(ctx, "alice")
	must(t, err)
	diff(t, "alice's conversations", list, []*store.Conversation{a, b})
	list, err = s.ListConversations(ctx, "carol")
	if err != nil || list != nil {
		t.Errorf("ListConversations of a user with none = %v, %v; want nil, nil", list, err)
	}

	must(t, s.RenameConversation(ctx, "alice", "c1", "renamed"))
	got, err = s.ConversationByID(ctx, "alice", "c1")
	must(t, err)
	a.Title = "renamed" // and UpdatedAt stays
	diff(t, "renamed conversation", got, a)
	if got, _ := s.ConversationByID(ctx, "bob", "c1"); got == nil || got.Title != "bob's" {
		t.Errorf("renaming alice's c1 changed bob's: %+v", got)
	}

	// Another user's conversation is not found, whatever the method.
	wantErr(t, "get another user's", errOf(s.ConversationByID(ctx, "carol", "c1")), store.ErrNotFound)
	wantErr(t, "rename another user's", s.RenameConversation(ctx, "carol", "c1", "x"), store.ErrNotFound)
	wantErr(t, "delete another user's", s.DeleteConversation(ctx, "carol", "c1"), store.ErrNotFound)
	wantErr(t, "get unknown", errOf(s.ConversationByID(ctx, "alice", "nope")), store.ErrNotFound)

	must(t, s.DeleteConversation(ctx, "alice", "c1"))
	wantErr(t, "get deleted", errOf(s.ConversationByID(ctx, "alice", "c1")), store.ErrNotFound)
	wantErr(t, "delete deleted", s.DeleteConversation(ctx, "alice", "c1"), store.ErrNotFound)
	if got, err := s.ConversationByID(ctx, "bob", "c1"); err != nil || got.Title != "bob's" {
		t.Errorf("deleting alice's c1 deleted bob's: %+v, %v", got, err)
	}
	list, err = s.ListConversations(ctx, "alice")
	must(t, err)
	diff(t, "after delete", list, []*store.Conversation{b})
}

func testMessages(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now().Add(-time.Hour)
	conv := &store.Conversation{ID: "c1", UserID: "alice", Title: "t", CreatedAt: t0}
	must(t, s.CreateConversation(ctx, conv))
	must(t, s.CreateConversation(ctx, &store.Conversation{ID: "c1", UserID: "bob", CreatedAt: t0}))
	must(t, s.CreateConversation(ctx, &store.Conversation{ID: "c2", UserID: "alice", CreatedAt: t0}))

	if ms, err := s.Messages(ctx, "alice", "c1"); err != nil || ms != nil {
		t.Errorf("Messages of a new conversation = %v, %v; want nil, nil", ms, err)
	}
	m1 := &store.Message{ID: "m1", Role: "user", Text: "서울 날씨 알려줘", RunID: "run-1", CreatedAt: t0.Add(time.Second)}
	m2 := &store.Message{Role: "assistant", Text: "맑아요 [1]", RunID: "run-1",
		ToolCalls:   []byte(`[{"id":"call-1","server":"naver","tool":"search","arguments":{"q":"서울 날씨"},"summary":"검색 1건"}]`),
		References:  []byte(`[{"index":1,"title":"날씨","url":"https://example.com"}]`),
		InputTokens: 120, OutputTokens: 30, CreatedAt: t0.Add(2 * time.Second)}
	must(t, s.AppendMessages(ctx, "alice", "c1", m1, m2))
	if m2.ID == "" || m1.Seq != 1 || m2.Seq != 2 || m1.ConversationID != "c1" || m2.ConversationID != "c1" {
		t.Errorf("AppendMessages did not fill in ID, Seq and ConversationID: %+v %+v", m1, m2)
	}
	m3 := &store.Message{Role: "user", Text: "내일은?"}
	must(t, s.AppendMessages(ctx, "alice", "c1", m3))
	if m3.Seq != 3 || m3.CreatedAt.IsZero() {
		t.Errorf("third message: %+v", m3)
	}
	must(t, s.AppendMessages(ctx, "alice", "c2", &store.Message{Role: "user", Text: "other conversation"}))
	must(t, s.AppendMessages(ctx, "bob", "c1", &store.Message{Role: "user", Text: "bob's"}))

	ms, err := s.Messages(ctx, "alice", "c1")
	must(t, err)
	diff(t, "messages", ms, []*store.Message{m1, m2, m3})
	got, err := s.ConversationByID(ctx, "alice", "c1")
	must(t, err)
	if !got.UpdatedAt.After(conv.UpdatedAt) || !got.CreatedAt.Equal(conv.CreatedAt) {
		t.Errorf("after appending: created %v updated %v; want created %v and a later update", got.CreatedAt, got.UpdatedAt, conv.CreatedAt)
	}

	for _, tt := range []struct {
		limit int
		want  []*store.Message
	}{
		{0, nil},
		{-1, nil},
		{1, []*store.Message{m3}},
		{2, []*store.Message{m2, m3}},
		{10, []*store.Message{m1, m2, m3}},
	} {
		ms, err := s.RecentMessages(ctx, "alice", "c1", tt.limit)
		must(t, err)
		diff(t, fmt.Sprintf("RecentMessages(%d)", tt.limit), ms, tt.want)
	}

	// Another user's conversation is not found, and appending to it adds nothing.
	wantErr(t, "messages of another user's", errOf(s.Messages(ctx, "carol", "c1")), store.ErrNotFound)
	wantErr(t, "recent of another user's", errOf(s.RecentMessages(ctx, "carol", "c1", 10)), store.ErrNotFound)
	wantErr(t, "append to another user's", s.AppendMessages(ctx, "carol", "c1", &store.Message{Role: "user", Text: "x"}), store.ErrNotFound)
	wantErr(t, "messages of unknown", errOf(s.Messages(ctx, "alice", "nope")), store.ErrNotFound)
	if ms, _ := s.Messages(ctx, "bob", "c1"); len(ms) != 1 || ms[0].Text != "bob's" || ms[0].Seq != 1 {
		t.Errorf("bob's c1 = %+v; want only his own message, numbered 1", ms)
	}

	// A taken message id fails the whole append.
	err = s.AppendMessages(ctx, "alice", "c1", &store.Message{ID: "fresh", Role: "user"}, &store.Message{ID: "m1", Role: "user"})
	wantErr(t, "append with a taken id", err, store.ErrConflict)
	if ms, _ := s.Messages(ctx, "alice", "c1"); len(ms) != 3 {
		t.Errorf("a failed append left %d messages, want 3", len(ms))
	}
	m4 := &store.Message{Role: "assistant", Text: "비가 와요"}
	must(t, s.AppendMessages(ctx, "alice", "c1", m4))
	if m4.Seq != 4 {
		t.Errorf("after a failed append, the next message is numbered %d, want 4", m4.Seq)
	}

	// Deleting a conversation deletes its messages: one made again with
	// its id starts empty.
	must(t, s.DeleteConversation(ctx, "alice", "c1"))
	wantErr(t, "messages of deleted", errOf(s.Messages(ctx, "alice", "c1")), store.ErrNotFound)
	must(t, s.CreateConversation(ctx, &store.Conversation{ID: "c1", UserID: "alice"}))
	if ms, err := s.Messages(ctx, "alice", "c1"); err != nil || ms != nil {
		t.Errorf("messages of a conversation made again after delete = %+v, %v; want none", ms, err)
	}
	m5 := &store.Message{ID: "m1", Role: "user", Text: "again"}
	must(t, s.AppendMessages(ctx, "alice", "c1", m5))
	if m5.Seq != 1 {
		t.Errorf("first message of the new conversation numbered %d, want 1", m5.Seq)
	}
	if ms, _ := s.Messages(ctx, "alice", "c2"); len(ms) != 1 {
		t.Errorf("deleting c1 changed c2: %+v", ms)
	}
	if ms, _ := s.Messages(ctx, "bob", "c1"); len(ms) != 1 {
		t.Errorf("deleting alice's c1 changed bob's: %+v", ms)
	}
}

// testMessagesConcurrent appends from two replicas at once: every append's
// messages must get consecutive numbers, in their order, with no gaps.
func testMessagesConcurrent(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open()
	ctx := e.ctx
	must(t, s1.CreateConversation(ctx, &store.Conversation{ID: "c1", UserID: "alice"}))
	const appends, per = 20, 3
	var next atomic.Int32
	wins := race(t, appends, []store.Store{s1, s2}, func(s store.Store) error {
		n := next.Add(1)
		msgs := make([]*store.Message, per)
		for i := range msgs {
			msgs[i] = &store.Message{Role: "user", Text: fmt.Sprintf("%d/%d", n, i)}
		}
		return s.AppendMessages(ctx, "alice", "c1", msgs...)
	})
	if wins != appends {
		t.Fatalf("%d of %d concurrent appends succeeded", wins, appends)
	}
	ms, err := s2.Messages(ctx, "alice", "c1")
	must(t, err)
	if len(ms) != appends*per {
		t.Fatalf("got %d messages, want %d", len(ms), appends*per)
	}
	seen := map[string]bool{}
	for i, m := range ms {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has Seq %d, want %d", i, m.Seq, i+1)
		}
		var n, j int
		if _, err := fmt.Sscanf(m.Text, "%d/%d", &n, &j); err != nil {
			t.Fatal(err)
		}
		if j != i%per {
			t.Fatalf("message %d is %q: appends interleaved", i, m.Text)
		}
		if j > 0 && ms[i-1].Text != fmt.Sprintf("%d/%d", n, j-1) {
			t.Fatalf("message %d is %q after %q: appends interleaved", i, m.Text, ms[i-1].Text)
		}
		seen[m.Text] = true
	}
	if len(seen) != appends*per {
		t.Errorf("%d distinct messages, want %d", len(seen), appends*per)
	}
}

func testAgents(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now().Add(-time.Hour)
	a := &store.Agent{ID: "a1", UserID: "alice", Definition: []byte(`{"name":"요약기","instructions":"짧게"}`), CreatedAt: t0}
	b := &store.Agent{UserID: "alice", Definition: []byte(`{"name":"b"}`), CreatedAt: t0.Add(time.Minute)}
	must(t, s.PutAgent(ctx, a))
	must(t, s.PutAgent(ctx, b))
	if b.ID == "" || a.UpdatedAt.IsZero() || !a.CreatedAt.Equal(t0) {
		t.Errorf("PutAgent did not fill in ID and UpdatedAt: %+v %+v", a, b)
	}
	bobs := &store.Agent{ID: "a1", UserID: "bob", Definition: []byte(`{"name":"bob's"}`)}
	must(t, s.PutAgent(ctx, bobs))

	got, err := s.AgentByID(ctx, "alice", "a1")
	must(t, err)
	diff(t, "agent", got, a)
	list, err := s.ListAgents(ctx, "alice")
	must(t, err)
	diff(t, "alice's agents", list, []*store.Agent{a, b})
	if list, err := s.ListAgents(ctx, "carol"); err != nil || list != nil {
		t.Errorf("ListAgents of a user with none = %v, %v; want nil, nil", list, err)
	}

	// Replacing keeps CreatedAt.
	a2 := &store.Agent{ID: "a1", UserID: "alice", Definition: []byte(`{"name":"요약기","instructions":"길게"}`)}
	must(t, s.PutAgent(ctx, a2))
	if !a2.CreatedAt.Equal(t0) || a2.UpdatedAt.Before(a.UpdatedAt) {
		t.Errorf("replaced agent: created %v updated %v; want created %v, updated no earlier than %v", a2.CreatedAt, a2.UpdatedAt, t0, a.UpdatedAt)
	}
	got, err = s.AgentByID(ctx, "alice", "a1")
	must(t, err)
	diff(t, "replaced agent", got, a2)
	if got, _ := s.AgentByID(ctx, "bob", "a1"); got == nil || string(got.Definition) != `{"name":"bob's"}` {
		t.Errorf("replacing alice's a1 changed bob's: %+v", got)
	}

	wantErr(t, "get another user's", errOf(s.AgentByID(ctx, "carol", "a1")), store.ErrNotFound)
	wantErr(t, "delete another user's", s.DeleteAgent(ctx, "carol", "a1"), store.ErrNotFound)
	must(t, s.DeleteAgent(ctx, "alice", "a1"))
	wantErr(t, "get deleted", errOf(s.AgentByID(ctx, "alice", "a1")), store.ErrNotFound)
	wantErr(t, "delete deleted", s.DeleteAgent(ctx, "alice", "a1"), store.ErrNotFound)
	if _, err := s.AgentByID(ctx, "bob", "a1"); err != nil {
		t.Errorf("deleting alice's a1 deleted bob's: %v", err)
	}
	list, err = s.ListAgents(ctx, "alice")
	must(t, err)
	diff(t, "after delete", list, []*store.Agent{b})
}

func testEphemeral(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	must(t, s.PutEphemeral(ctx, "authreq", "k1", []byte("v1"), t0.Add(time.Minute)))
	must(t, s.PutEphemeral(ctx, "login", "k1", []byte("other kind"), t0.Add(time.Minute)))
	v, err := s.GetEphemeral(ctx, "authreq", "k1", t0)
	if err != nil || string(v) != "v1" {
		t.Fatalf("GetEphemeral = %q, %v", v, err)
	}
	must(t, s.PutEphemeral(ctx, "authreq", "k1", []byte("v2"), t0.Add(time.Minute))) // replaces
	v, err = s.TakeEphemeral(ctx, "authreq", "k1", t0)
	if err != nil || string(v) != "v2" {
		t.Fatalf("TakeEphemeral = %q, %v", v, err)
	}
	wantErr(t, "second take", errOf(s.TakeEphemeral(ctx, "authreq", "k1", t0)), store.ErrNotFound)
	wantErr(t, "get after take", errOf(s.GetEphemeral(ctx, "authreq", "k1", t0)), store.ErrNotFound)
	if v, err := s.GetEphemeral(ctx, "login", "k1", t0); err != nil || string(v) != "other kind" {
		t.Errorf("record of another kind: %q, %v", v, err)
	}
	must(t, s.PutEphemeral(ctx, "authreq", "exp", []byte("x"), t0))
	wantErr(t, "get expired", errOf(s.GetEphemeral(ctx, "authreq", "exp", t0)), store.ErrNotFound)
	wantErr(t, "take expired", errOf(s.TakeEphemeral(ctx, "authreq", "exp", t0)), store.ErrNotFound)
	wantErr(t, "take unknown", errOf(s.TakeEphemeral(ctx, "authreq", "nope", t0)), store.ErrNotFound)
	big := bytes.Repeat([]byte{0, 1, 2, 255}, 10000)
	must(t, s.PutEphemeral(ctx, "authreq", "big", big, t0.Add(time.Minute)))
	if v, err := s.TakeEphemeral(ctx, "authreq", "big", t0); err != nil || !bytes.Equal(v, big) {
		t.Errorf("binary value did not survive: %v", err)
	}
}

func testEphemeralConcurrent(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open()
	ctx := e.ctx
	t0 := now()
	for round := range 5 {
		key := fmt.Sprintf("state-%d", round)
		must(t, s1.PutEphemeral(ctx, "login", key, []byte("v"), t0.Add(time.Minute)))
		wins := race(t, 20, []store.Store{s1, s2}, func(s store.Store) error {
			v, err := s.TakeEphemeral(ctx, "login", key, t0)
			if err == nil && string(v) != "v" {
				return fmt.Errorf("took %q", v)
			}
			return err
		}, store.ErrNotFound)
		if wins != 1 {
			t.Fatalf("round %d: %d of 20 concurrent takes got the record, want exactly 1", round, wins)
		}
	}
}

func testLocks(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	later := time.Now().Add(time.Hour)
	lock := func(name, owner string, expires time.Time, want bool) {
		t.Helper()
		got, err := s.TryLock(ctx, name, owner, expires)
		must(t, err)
		if got != want {
			t.Fatalf("TryLock(%s, %s) = %v, want %v", name, owner, got, want)
		}
	}
	lock("refresh:u1:github", "a", later, true)
	lock("refresh:u1:github", "b", later, false)
	lock("refresh:u1:github", "a", later, true) // the owner extends it
	lock("refresh:u2:github", "b", later, true) // other names are independent
	must(t, s.Unlock(ctx, "refresh:u1:github", "b"))
	lock("refresh:u1:github", "b", later, false) // only the owner unlocks
	must(t, s.Unlock(ctx, "refresh:u1:github", "a"))
	lock("refresh:u1:github", "b", later, true)

	// An expired lock is free for anyone.
	lock("x", "a", time.Now().Add(-time.Second), true)
	lock("x", "b", later, true)
	lock("x", "a", later, false)
}

func testLockConcurrent(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open()
	ctx := e.ctx
	for round := range 5 {
		name := fmt.Sprintf("lock-%d", round)
		var owner atomic.Int32
		wins := race(t, 20, []store.Store{s1, s2}, func(s store.Store) error {
			ok, err := s.TryLock(ctx, name, fmt.Sprintf("owner-%d", owner.Add(1)), time.Now().Add(time.Minute))
			if err == nil && !ok {
				return errLocked
			}
			return err
		}, errLocked)
		if wins != 1 {
			t.Fatalf("round %d: %d of 20 concurrent TryLock calls took the lock, want exactly 1", round, wins)
		}
	}
}

var errLocked = errors.New("locked")

func testSweep(t *testing.T, e *env) {
	s, _ := e.open()
	ctx := e.ctx
	t0 := now()
	past, future := t0.Add(-time.Minute), t0.Add(time.Minute)
	must(t, s.SaveAuthCode(ctx, newCode("old", past)))
	must(t, s.SaveAuthCode(ctx, newCode("new", future)))
	must(t, s.SaveRefreshToken(ctx, newRefresh("old", "f-old", past)))
	must(t, s.SaveRefreshToken(ctx, newRefresh("new", "f-new", future)))
	must(t, s.SaveRefreshToken(ctx, newRefresh("forever", "f-forever", time.Time{})))
	must(t, s.RevokeFamily(ctx, "f-old", t0.Add(-48*time.Hour)))
	must(t, s.RevokeFamily(ctx, "f-new", t0.Add(-48*time.Hour)))
	must(t, s.RevokeFamily(ctx, "f-fresh", t0)) // no tokens yet, revoked just now
	must(t, s.RevokeAccessToken(ctx, "old", past))
	must(t, s.RevokeAccessToken(ctx, "new", future))
	must(t, s.PutEphemeral(ctx, "k", "old", []byte("x"), past))
	must(t, s.PutEphemeral(ctx, "k", "new", []byte("x"), future))
	if ok, err := s.TryLock(ctx, "old", "a", past); err != nil || !ok {
		t.Fatal("TryLock", ok, err)
	}
	if ok, err := s.TryLock(ctx, "new", "a", time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatal("TryLock", ok, err)
	}
	must(t, s.Sweep(ctx, t0))

	wantErr(t, "swept code", errOf(s.ConsumeAuthCode(ctx, "old", past.Add(-time.Hour))), store.ErrNotFound)
	if _, err := s.ConsumeAuthCode(ctx, "new", t0); err != nil {
		t.Errorf("unexpired code: %v", err)
	}
	wantErr(t, "swept refresh token", errOf(s.RefreshTokenByHash(ctx, "old")), store.ErrNotFound)
	for _, h := range []string{"new", "forever"} {
		if _, err := s.RefreshTokenByHash(ctx, h); err != nil {
			t.Errorf("refresh token %s: %v", h, err)
		}
	}
	for fam, want := range map[string]bool{"f-old": false, "f-new": true, "f-fresh": true} {
		if got, _ := s.FamilyRevoked(ctx, fam); got != want {
			t.Errorf("FamilyRevoked(%s) after sweep = %v, want %v", fam, got, want)
		}
	}
	if r, _ := s.AccessTokenRevoked(ctx, "old"); r {
		t.Error("expired access-token revocation kept")
	}
	if r, _ := s.AccessTokenRevoked(ctx, "new"); !r {
		t.Error("unexpired access-token revocation swept")
	}
	wantErr(t, "swept ephemeral", errOf(s.GetEphemeral(ctx, "k", "old", past.Add(-time.Hour))), store.ErrNotFound)
	if _, err := s.GetEphemeral(ctx, "k", "new", t0); err != nil {
		t.Errorf("unexpired ephemeral: %v", err)
	}
	if ok, _ := s.TryLock(ctx, "new", "b", time.Now().Add(time.Hour)); ok {
		t.Error("held lock swept")
	}
}

// fill writes a record of every kind, with every secret field set to a
// value that starts with prefix, and returns the secret values.
func fill(t *testing.T, ctx context.Context, s store.Store, prefix string) []string {
	t.Helper()
	v := func(field string) string { return prefix + "-" + field + "-9f86d081884c7d659a2feaa0c55ad015" }
	t0 := now()
	u := createUser(t, ctx, s, "alice", "alice@example.com")
	must(t, s.LinkIdentity(ctx, &store.Identity{Provider: "naver", Subject: "1", UserID: u.ID}))
	must(t, s.CreateClient(ctx, &store.Client{ID: "client-1", Secret: v("client-secret"), TokenEndpointAuthMethod: "client_secret_basic"}))
	must(t, s.SaveConsent(ctx, &store.Consent{UserID: u.ID, ClientID: "client-1", RedirectURI: "https://x/cb"}))
	must(t, s.SaveAuthCode(ctx, newCode("code-hash", t0.Add(time.Hour))))
	must(t, s.SaveRefreshToken(ctx, newRefresh("refresh-hash", "fam", t0.Add(time.Hour))))
	must(t, s.SaveSigningKey(ctx, &store.SigningKey{ID: "kid", Algorithm: "ES256", PrivateKey: []byte(v("private-key"))}))
	must(t, s.SaveProviderToken(ctx, &store.ProviderToken{UserID: u.ID, Provider: "naver",
		AccessToken: v("access-token"), RefreshToken: v("refresh-token"), IDToken: v("id-token")}))
	must(t, s.CreateAPIKey(ctx, &store.APIKey{UserID: u.ID, Hash: "api-hash"}))
	must(t, s.SetCredential(ctx, &store.Credential{UserID: u.ID, Server: "github", Name: "token", Value: v("credential")}))
	must(t, s.SetCredential(ctx, &store.Credential{UserID: u.ID, Server: "github", Name: "token2", Value: v("credential2")}))
	must(t, s.PutEphemeral(ctx, "authreq", "state", []byte(v("ephemeral")), t0.Add(time.Hour)))
	must(t, s.CreateConversation(ctx, &store.Conversation{ID: "conv-1", UserID: u.ID, Title: v("title"), Agent: "helper", Model: "openai/gpt"}))
	toolCalls := `[{"summary":"` + v("tool-calls") + `"}]`
	refs := `[{"title":"` + v("references") + `"}]`
	must(t, s.AppendMessages(ctx, u.ID, "conv-1",
		&store.Message{ID: "msg-1", Role: "user", Text: v("message-text")},
		&store.Message{ID: "msg-2", Role: "assistant", ToolCalls: []byte(toolCalls), References: []byte(refs)}))
	must(t, s.PutAgent(ctx, &store.Agent{ID: "agent-1", UserID: u.ID, Definition: []byte(`{"instructions":"` + v("agent") + `"}`)}))
	return []string{v("client-secret"), v("private-key"), v("access-token"), v("refresh-token"), v("id-token"),
		v("credential"), v("credential2"), v("ephemeral"),
		v("title"), v("message-text"), toolCalls, refs, `{"instructions":"` + v("agent") + `"}`}
}

// check reads back what fill wrote.
func check(t *testing.T, ctx context.Context, s store.Store, values []string) {
	t.Helper()
	u, err := s.UserByUsername(ctx, "alice")
	must(t, err)
	c, err := s.ClientByID(ctx, "client-1")
	must(t, err)
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	pt, err := s.ProviderToken(ctx, u.ID, "naver")
	must(t, err)
	creds, err := s.Credentials(ctx, u.ID, "github")
	must(t, err)
	eph, err := s.GetEphemeral(ctx, "authreq", "state", now())
	must(t, err)
	if len(keys) != 1 || len(creds) != 2 {
		t.Fatalf("got %d signing keys and %d credentials, want 1 and 2", len(keys), len(creds))
	}
	conv, err := s.ConversationByID(ctx, u.ID, "conv-1")
	must(t, err)
	msgs, err := s.Messages(ctx, u.ID, "conv-1")
	must(t, err)
	ag, err := s.AgentByID(ctx, u.ID, "agent-1")
	must(t, err)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	got := []string{c.Secret, string(keys[0].PrivateKey), pt.AccessToken, pt.RefreshToken, pt.IDToken,
		creds[0].Value, creds[1].Value, string(eph),
		conv.Title, msgs[0].Text, string(msgs[1].ToolCalls), string(msgs[1].References), string(ag.Definition)}
	diff(t, "secret values", got, values)
	if _, err := s.RefreshTokenByHash(ctx, "refresh-hash"); err != nil {
		t.Error(err)
	}
	if _, err := s.APIKeyByHash(ctx, "api-hash"); err != nil {
		t.Error(err)
	}
}

func testPersistence(t *testing.T, e *env) {
	s, closeStore := e.open()
	values := fill(t, e.ctx, s, "persist")
	closeStore()
	s, _ = e.open()
	check(t, e.ctx, s, values)
}

func testShared(t *testing.T, e *env) {
	s1, _ := e.open()
	s2, _ := e.open()
	values := fill(t, e.ctx, s1, "shared")
	check(t, e.ctx, s2, values)
	must(t, s2.RevokeFamily(e.ctx, "fam", now()))
	if r, err := s1.FamilyRevoked(e.ctx, "fam"); err != nil || !r {
		t.Errorf("revocation through one store not seen through the other: %v, %v", r, err)
	}
}

func testKeyCheck(t *testing.T, e *env) {
	s, closeStore := e.openWith(Keys(t, "k1"))
	values := fill(t, e.ctx, s, "keycheck")
	closeStore()

	refuse := func(name string, keys *secrets.Keyring) {
		t.Helper()
		s, err := e.h.Open(e.ctx, keys)
		if err == nil {
			s.Close()
			t.Fatalf("%s: Open succeeded, want ErrKeyMismatch", name)
		}
		wantErr(t, name, err, store.ErrKeyMismatch)
		t.Logf("%s: %v", name, err)
	}
	refuse("a different key", Keys(t, "other"))
	// Same id, different secret: a regenerated key file.
	impostor, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, secrets.KeySize)})
	must(t, err)
	refuse("a different key with the same id", impostor)

	// Adding a key keeps the old one usable; once the new one is recorded,
	// dropping the old key before re-encryption is refused.
	s, closeStore = e.openWith(Keys(t, "k2", "k1"))
	check(t, e.ctx, s, values)
	closeStore()
	refuse("the old key dropped before re-encryption", Keys(t, "k2"))

	s, _ = e.openWith(Keys(t, "k1", "k2")) // order does not matter for opening
	check(t, e.ctx, s, values)
}

func testRotate(t *testing.T, e *env) {
	s, closeStore := e.openWith(Keys(t, "k1"))
	rot, ok := s.(Rotator)
	if !ok {
		t.Fatalf("%T has no RotateSecrets method", s)
	}
	values := fill(t, e.ctx, s, "rotate")
	if n, err := rot.RotateSecrets(e.ctx, 2); err != nil || n != 0 {
		t.Fatalf("RotateSecrets with one key = %d, %v; want 0", n, err)
	}
	closeStore()

	ring := Keys(t, "k2", "k1")
	s, closeStore = e.openWith(ring)
	rot = s.(Rotator)
	// A value written under the new key needs no rewrite.
	must(t, s.SetCredential(e.ctx, &store.Credential{UserID: "u9", Server: "x", Name: "y", Value: "new"}))
	// Batches smaller than a table, and an interrupted first run.
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := rot.RotateSecrets(cancelled, 1); err == nil {
		t.Error("RotateSecrets with a cancelled context succeeded")
	}
	n, err := rot.RotateSecrets(e.ctx, 1)
	must(t, err)
	if n != len(values) {
		t.Errorf("RotateSecrets rewrote %d values, want %d", n, len(values))
	}
	if n, err := rot.RotateSecrets(e.ctx, 1); err != nil || n != 0 {
		t.Errorf("second RotateSecrets = %d, %v; want 0", n, err)
	}
	check(t, e.ctx, s, values)
	closeStore()

	// Now the old key may go.
	s, _ = e.openWith(Keys(t, "k2"))
	check(t, e.ctx, s, values)
}

// testCanary writes a known value into every secret field and checks that
// the database at rest holds it in no readable form.
func testCanary(t *testing.T, e *env) {
	s, closeStore := e.open()
	values := fill(t, e.ctx, s, "CANARY")
	// Both replaced and deleted values must not linger either.
	for _, v := range []string{"CANARY-replaced-credential", "CANARY-deleted-credential"} {
		must(t, s.SetCredential(e.ctx, &store.Credential{UserID: "u1", Server: "s", Name: "n", Value: v}))
		values = append(values, v)
	}
	must(t, s.DeleteCredentials(e.ctx, "u1", "s"))
	taken := "CANARY-taken-ephemeral"
	must(t, s.PutEphemeral(e.ctx, "k", "taken", []byte(taken), now().Add(time.Hour)))
	if _, err := s.TakeEphemeral(e.ctx, "k", "taken", now()); err != nil {
		t.Fatal(err)
	}
	values = append(values, taken)
	// A renamed title, and the messages of a deleted conversation.
	must(t, s.CreateConversation(e.ctx, &store.Conversation{ID: "conv-2", UserID: "u1", Title: "CANARY-old-title"}))
	must(t, s.RenameConversation(e.ctx, "u1", "conv-2", "CANARY-new-title"))
	must(t, s.AppendMessages(e.ctx, "u1", "conv-2", &store.Message{Role: "user", Text: "CANARY-deleted-message"}))
	must(t, s.DeleteConversation(e.ctx, "u1", "conv-2"))
	values = append(values, "CANARY-old-title", "CANARY-new-title", "CANARY-deleted-message")

	scan := func(when string) {
		dump := e.h.Dump(t)
		if len(dump) == 0 {
			t.Fatalf("%s: empty database dump", when)
		}
		if !bytes.Contains(dump, []byte("alice@example.com")) {
			t.Fatalf("%s: the dump lacks a plaintext column; it does not cover the data", when)
		}
		for _, v := range values {
			for _, form := range encodings(v) {
				if bytes.Contains(dump, []byte(form)) {
					t.Errorf("%s: the database dump contains secret %q as %q", when, v, form)
				}
			}
		}
		if bytes.Contains(dump, []byte("CANARY")) {
			t.Errorf("%s: the database dump contains CANARY", when)
		}
	}
	scan("open")
	closeStore()
	scan("closed")
}

// encodings lists forms in which v could appear in a dump: itself,
// upper- and lower-case hex, and the parts of its standard and URL base64
// encodings that do not depend on the bytes around it.
func encodings(v string) []string {
	forms := []string{v, hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v)))}
	for shift := range 3 {
		b := append(make([]byte, shift), v...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(b)
			first := (8*shift + 5) / 6         // first character wholly inside v
			last := (8*(shift+len(v)) - 6) / 6 // last character wholly inside v
			forms = append(forms, s[first:last+1])
		}
	}
	return forms
}
