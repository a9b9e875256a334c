package authserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is an authorization server over a real SQLite store, served with
// Protect in front of an /mcp handler that echoes the principal.
type testEnv struct {
	t     *testing.T
	srv   *Server
	st    store.Store
	ts    *httptest.Server
	clock *clock
	iss   string
}

func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	kr, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, secrets.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "switchboard.db"), kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnv(t *testing.T, configure func(*Options)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, clock: &clock{t: time.Now()}}
	e.ts = httptest.NewServer(nil)
	t.Cleanup(e.ts.Close)
	e.iss = e.ts.URL
	e.st = openStore(t, t.TempDir())
	o := &Options{
		Issuer: e.iss, Store: e.st, LocalLogin: true,
		Resources: func() []string { return []string{e.iss + "/mcp", e.iss + "/mcp/x"} },
		Now:       e.clock.Now,
	}
	if configure != nil {
		configure(o)
	}
	srv, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	// Dispatch through e.srv so that a test can swap in a restarted server.
	mux := http.NewServeMux()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.srv.Handler().ServeHTTP(w, r) }))
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := UserFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "token passed through", 500)
			return
		}
		json.NewEncoder(w).Encode(p)
	})
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.srv.Protect(echo).ServeHTTP(w, r) })
	mux.Handle("/mcp", protected)
	mux.Handle("/mcp/{server}", protected)
	e.ts.Config.Handler = mux
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	c *http.Client
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func (b *browser) post(t *testing.T, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

var (
	ridRE  = regexp.MustCompile(`name="rid" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func formFields(t *testing.T, page string) (rid, csrf string) {
	t.Helper()
	r, c := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if r == nil || c == nil {
		t.Fatalf("page has no rid/csrf fields:\n%s", page)
	}
	return r[1], c[1]
}

type client struct {
	id, secret, redirect string
}

const testRedirect = "http://127.0.0.1:9999/callback"

func (e *testEnv) register(meta map[string]any) (int, map[string]any) {
	e.t.Helper()
	b, _ := json.Marshal(meta)
	resp, err := http.Post(e.iss+"/register", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *testEnv) publicClient() client {
	e.t.Helper()
	status, out := e.register(map[string]any{
		"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "Test Client",
	})
	if status != http.StatusCreated {
		e.t.Fatalf("register: %d %v", status, out)
	}
	return client{id: out["client_id"].(string), redirect: testRedirect}
}

func (e *testEnv) user(name string) *store.User {
	e.t.Helper()
	u, err := e.srv.CreateUser(context.Background(), name, "correct horse battery", store.RoleUser)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	s := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(s[:])}
}

func (e *testEnv) authorizeURL(c client, p pkce, extra url.Values) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"},
		"resource": {e.iss + "/mcp"}, "scope": {"mcp"},
	}
	for k, v := range extra {
		if v == nil {
			q.Del(k)
		} else {
			q[k] = v
		}
	}
	return e.iss + "/authorize?" + q.Encode()
}

// login signs alice in through the sign-in page and returns the redirect
// to the client.
func (e *testEnv) login(b *browser, authURL, username string) *url.URL {
	e.t.Helper()
	resp, page := b.get(e.t, authURL)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("authorize: %d %s", resp.StatusCode, page)
	}
	rid, csrf := formFields(e.t, page)
	resp, page = b.post(e.t, e.iss+"/login", url.Values{"rid": {rid}, "csrf": {csrf}, "username": {username}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("login: %d %s", resp.StatusCode, page)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc
}

// code runs a whole local sign-in for a new browser and returns the code.
func (e *testEnv) code(c client, p pkce, username string) string {
	e.t.Helper()
	loc := e.login(newBrowser(), e.authorizeURL(c, p, nil), username)
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("iss") != e.iss || loc.Query().Get("state") != "st-123" {
		e.t.Fatalf("redirect %s lacks code, iss or state", loc)
	}
	return code
}

func (e *testEnv) token(form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	resp, err := http.PostForm(e.iss+"/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func (e *testEnv) redeem(c client, code string, p pkce) (int, map[string]any) {
	e.t.Helper()
	status, out, h := e.token(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect},
		"client_id": {c.id}, "code_verifier": {p.verifier}, "resource": {e.iss + "/mcp"},
	})
	if status != http.StatusOK && h.Get("Cache-Control") != "no-store" {
		e.t.Errorf("error response lacks Cache-Control: no-store")
	}
	return status, out
}

func (e *testEnv) refresh(c client, rt string) (int, map[string]any) {
	e.t.Helper()
	status, out, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}})
	return status, out
}

// tokens runs the whole flow and returns the access and refresh tokens.
func (e *testEnv) tokens(c client, username string) (string, string) {
	e.t.Helper()
	p := newPKCE()
	status, out := e.redeem(c, e.code(c, p, username), p)
	if status != http.StatusOK {
		e.t.Fatalf("redeem: %d %v", status, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

// call calls path with a bearer token and returns the status and the
// WWW-Authenticate header.
func (e *testEnv) call(path, tok string) (int, string, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.iss+path, strings.NewReader("{}"))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// wantOAuthError asserts an RFC 6749 §5.2 error and that nothing was issued.
func wantOAuthError(t *testing.T, status int, out map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || out["error"] != wantCode {
		t.Fatalf("got %d %v, want %d %s", status, out, wantStatus, wantCode)
	}
	if _, ok := out["access_token"]; ok {
		t.Fatalf("an access token was issued: %v", out)
	}
	if _, ok := out["refresh_token"]; ok {
		t.Fatalf("a refresh token was issued: %v", out)
	}
}
