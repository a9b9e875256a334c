package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/authserver"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// env is the authorization server on a real SQLite store, the UI and an
// /api handler behind ProtectAPIOrSession, mounted as cmd/switchboard does.
type env struct {
	t   *testing.T
	ts  *httptest.Server
	as  *authserver.Server
	iss string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	kr, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, secrets.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "switchboard.db"), kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(nil)
	t.Cleanup(ts.Close)
	as, err := authserver.New(ctx, &authserver.Options{Issuer: ts.URL, Store: st, LocalLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.CreateUser(ctx, "alice", "correct horse battery", store.RoleUser); err != nil {
		t.Fatal(err)
	}
	chatServers := func(ctx context.Context, user string) ([]agent.ServerInfo, error) {
		return []agent.ServerInfo{{Name: "switchboard", ChatMenu: true}, {Name: "github", ChatMenu: true}, {Name: "payroll", ChatMenu: false}}, nil
	}
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := authserver.UserFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"user": p.Username})
	})
	mux := http.NewServeMux()
	uh := Handler(&Options{Session: as.BrowserSession, ChatServers: chatServers})
	mux.Handle("/chat", uh)
	mux.Handle("/chat/", uh)
	mux.Handle("/api/", as.ProtectAPIOrSession(whoami))
	mux.Handle("/", as.Handler())
	ts.Config.Handler = mux
	return &env{t: t, ts: ts, as: as, iss: ts.URL}
}

// browser keeps cookies and does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, header http.Header, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var (
	ridRE  = regexp.MustCompile(`name="rid" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaRE = regexp.MustCompile(`<meta name="sb-csrf" content="([^"]+)">`)
	bootRE = regexp.MustCompile(`data-boot="([^"]+)"`)
	langRE = regexp.MustCompile(`<html lang="([a-z]+)">`)
)

func TestChatPageAfterSignIn(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t)

	// No session: to the sign-in page, which returns to /chat.
	resp, _ := b.do("GET", e.iss+"/chat", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fchat" {
		t.Fatalf("GET /chat without session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.do("GET", e.iss+resp.Header.Get("Location"), nil, nil)
	rid, csrf := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || rid == nil || csrf == nil {
		t.Fatalf("sign-in page: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.do("POST", e.iss+"/login", nil, url.Values{
		"rid": {rid[1]}, "csrf": {csrf[1]}, "username": {"alice"}, "password": {"correct horse battery"},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/chat" {
		t.Fatalf("sign-in: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}

	resp, page = b.do("GET", e.iss+"/chat", http.Header{"Accept-Language": {"ko-KR,ko;q=0.9,en;q=0.8"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat: %d\n%s", resp.StatusCode, page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store (the page holds the CSRF token)", got)
	}
	if m := langRE.FindStringSubmatch(page); m == nil || m[1] != "ko" {
		t.Errorf("lang attribute: %v", m)
	}
	if !strings.Contains(page, "<title>Switchboard 채팅</title>") || !strings.Contains(page, "alice") {
		t.Errorf("page lacks the Korean title or the user's name:\n%s", page)
	}
	m := bootRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no data-boot:\n%s", page)
	}
	var boot bootData
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &boot); err != nil {
		t.Fatalf("data-boot is not JSON: %v", err)
	}
	if diff := cmp.Diff([]string{"switchboard", "github"}, boot.ChatServers); diff != "" {
		t.Errorf("chat servers (-want +got):\n%s", diff)
	}
	if boot.Lang != "ko" || boot.CSRFHeader != authserver.CSRFHeader || boot.Strings["send"] != "보내기" {
		t.Errorf("boot %+v", boot)
	}

	// The page's token lets the page's scripts call /api; nothing else does.
	token := metaRE.FindStringSubmatch(page)
	if token == nil {
		t.Fatalf("page has no CSRF token")
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"with the page's token", http.Header{authserver.CSRFHeader: {token[1]}, "Origin": {e.iss}}, 200},
		{"without a token", http.Header{"Origin": {e.iss}}, 403},
		{"from another origin", http.Header{authserver.CSRFHeader: {token[1]}, "Origin": {"https://evil.example"}}, 403},
	} {
		resp, body := b.do("GET", e.iss+"/api/servers", tc.header, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, resp.StatusCode, tc.want, body)
		}
	}

	// The toggle switches the language and is remembered.
	resp, page = b.do("GET", e.iss+"/chat?lang=en", http.Header{"Accept-Language": {"ko"}}, nil)
	if m := langRE.FindStringSubmatch(page); resp.StatusCode != 200 || m == nil || m[1] != "en" || !strings.Contains(page, `href="/chat?lang=ko"`) {
		t.Fatalf("lang=en: %d %v", resp.StatusCode, m)
	}
	resp, page = b.do("GET", e.iss+"/chat", http.Header{"Accept-Language": {"ko"}}, nil)
	if m := langRE.FindStringSubmatch(page); m == nil || m[1] != "en" {
		t.Errorf("remembered language: %v", m)
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{"/chat/static/chat.js", "text/javascript; charset=utf-8", 200},
		{"/chat/static/chat.css", "text/css; charset=utf-8", 200},
		{"/chat/static/chat.html", "", 404},
		{"/chat/static/../ui.go", "", 404},
	} {
		resp, err := http.Get(e.iss + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype) {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if tc.status == 200 && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.path)
		}
	}
}

// TestPageNeedsNoInlineCode keeps the page within its CSP: no inline
// scripts, handlers or styles, and nothing from another origin.
func TestPageNeedsNoInlineCode(t *testing.T) {
	src, err := staticFS.ReadFile("static/chat.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if loc := re.FindIndex(src); loc != nil {
			t.Errorf("chat.html has %q", src[loc[0]:loc[1]])
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(src, -1) {
		if !bytes.Contains(tag, []byte(" src=")) {
			t.Errorf("chat.html has an inline script: %s", tag)
		}
	}
}

// TestStrings checks that both languages have every string and that every
// string chat.js and chat.html ask for exists.
func TestStrings(t *testing.T) {
	var en, ko []string
	for k := range messages[english] {
		en = append(en, k)
	}
	for k := range messages[korean] {
		ko = append(ko, k)
	}
	slices.Sort(en)
	slices.Sort(ko)
	if diff := cmp.Diff(en, ko); diff != "" {
		t.Errorf("keys differ between en and ko (-en +ko):\n%s", diff)
	}
	js, _ := staticFS.ReadFile("static/chat.js")
	page, _ := staticFS.ReadFile("static/chat.html")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bS\.([a-z_]+)`).FindAllSubmatch(js, -1) {
		used[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`index \.S "([a-z_]+)"`).FindAllSubmatch(page, -1) {
		used[string(m[1])] = true
	}
	for _, s := range []string{"connected", "connecting", "disconnected", "failed", "disabled"} {
		used["state_"+s] = true // chat.js: S["state_" + s.state]
	}
	for k := range used {
		if _, ok := messages[english][k]; !ok {
			t.Errorf("string %q is used but not defined", k)
		}
	}
	for k := range messages[english] {
		if !used[k] && k != "lang_name" {
			t.Errorf("string %q is defined but not used", k)
		}
	}
}

func TestPageLang(t *testing.T) {
	for _, tc := range []struct {
		query, cookie, accept, want string
	}{
		{"", "", "", "en"},
		{"", "", "ko-KR,ko;q=0.9,en-US;q=0.8", "ko"},
		{"", "", "en-US,en;q=0.9,ko;q=0.8", "en"},
		{"", "", "fr, ko;q=0.5", "ko"},
		{"", "ko", "en", "ko"},
		{"en", "ko", "ko", "en"},
		{"xx", "", "ko", "ko"},
	} {
		r := httptest.NewRequest("GET", "/chat?lang="+tc.query, nil)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
		}
		r.Header.Set("Accept-Language", tc.accept)
		if got := pageLang(r); got != tc.want {
			t.Errorf("pageLang(%+v) = %q, want %q", tc, got, tc.want)
		}
	}
}

// TestChatScriptInNode runs chat.js under node (when installed) with a
// minimal DOM and a fetch that streams a run, drops the stream mid-event
// and resumes: no browser is available to test in, so this checks the
// parts that can break quietly (SSE parsing, resume, dedupe, rendering).
func TestChatScriptInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	h := Handler(&Options{
		Session: func(*http.Request) (*authserver.BrowserSession, bool) {
			return &authserver.BrowserSession{UserID: "u1", Username: "alice", CSRF: "CSRF-TOK"}, true
		},
		ChatServers: func(context.Context, string) ([]agent.ServerInfo, error) {
			return []agent.ServerInfo{{Name: "github", ChatMenu: true}, {Name: "payroll"}}, nil
		},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/chat?lang=en", nil))
	m := bootRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no data-boot in\n%s", rec.Body)
	}
	bootFile := filepath.Join(t.TempDir(), "boot.json")
	if err := os.WriteFile(bootFile, []byte(html.UnescapeString(m[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "testdata/harness.js", "static/chat.js", bootFile).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
}
