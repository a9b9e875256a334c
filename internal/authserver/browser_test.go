package authserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// browserLogin signs username in through GET /login?next= and returns the
// redirect's Location.
func (e *testEnv) browserLogin(b *browser, next, username string) string {
	e.t.Helper()
	resp, page := b.get(e.t, e.iss+"/login?next="+url.QueryEscape(next))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /login: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "/authorize/consent") {
		e.t.Fatalf("browser sign-in page offers a client's consent:\n%s", page)
	}
	rid, csrf := formFields(e.t, page)
	resp, page = b.post(e.t, e.iss+"/login", url.Values{"rid": {rid}, "csrf": {csrf}, "username": {username}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("POST /login: %d %s", resp.StatusCode, page)
	}
	return resp.Header.Get("Location")
}

// csrfOf returns the CSRF token of b's session, as a page would embed it.
func (e *testEnv) csrfOf(b *browser) string {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.iss+"/chat", nil)
	u, _ := url.Parse(e.iss)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	bs, ok := e.srv.BrowserSession(req)
	if !ok {
		e.t.Fatal("no browser session")
	}
	return bs.CSRF
}

func TestBrowserSignIn(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice")
	b := newBrowser()
	if loc := e.browserLogin(b, "/chat?lang=ko", "alice"); loc != "/chat?lang=ko" {
		t.Fatalf("after sign-in: Location %q, want /chat?lang=ko", loc)
	}
	// Signed in: /login goes straight back.
	resp, _ := b.get(t, e.iss+"/login?next=/chat")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/chat" {
		t.Fatalf("signed-in GET /login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get(t, e.iss+"/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "You are signed in.") {
		t.Fatalf("signed-in GET /login without next: %d %s", resp.StatusCode, page)
	}
	req, _ := http.NewRequest("GET", e.iss+"/", nil)
	u, _ := url.Parse(e.iss)
	for _, c := range b.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	bs, ok := e.srv.BrowserSession(req)
	if !ok || bs.UserID != alice.ID || bs.Username != "alice" || len(bs.CSRF) != 64 {
		t.Fatalf("BrowserSession: %+v %v", bs, ok)
	}
	// A new browser has an anonymous session only: not signed in.
	other := newBrowser()
	other.get(t, e.iss+"/login?next=/chat")
	if _, ok := e.srv.BrowserSession(&http.Request{Header: http.Header{"Cookie": {cookieHeader(other, e.iss)}}}); ok {
		t.Fatal("anonymous session counts as signed in")
	}
}

func cookieHeader(b *browser, iss string) string {
	u, _ := url.Parse(iss)
	var parts []string
	for _, c := range b.c.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func TestLoginPageRefusesForeignNext(t *testing.T) {
	e := newEnv(t, nil)
	for _, next := range []string{
		"https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example",
		"javascript:alert(1)", "chat", "/%0a/evil", "/ok\n", "http:/evil.example",
	} {
		t.Run(next, func(t *testing.T) {
			q := url.Values{"next": {next}}.Encode()
			resp, err := http.Get(e.iss + "/login?" + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// "/%0a/evil" is a path with an escaped newline: harmless and kept.
			if next == "/%0a/evil" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"/chat", true},
		{"/chat?x=1#frag", true},
		{"/", true},
		{"", false},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"/a\\b", false},
		{"https://evil.example/chat", false},
		{"/ chat", false},
		{"/\r\n/evil", false},
		{"\\/evil", false},
		{"/" + strings.Repeat("a", maxNextLen), false},
	} {
		if _, ok := safeNext(tc.in); ok != tc.ok {
			t.Errorf("safeNext(%q) = %v, want %v", tc.in, ok, tc.ok)
		}
	}
}

// FuzzSafeNext checks that an accepted return address never leaves the
// origin it is resolved against.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/chat", "//x", "/\\x", "/\t/x", "/.//x", "/%2f%2fx", "/@x", "/:x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://sb.example/")
	f.Fuzz(func(t *testing.T, s string) {
		next, ok := safeNext(s)
		if !ok {
			return
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatalf("accepted %q does not parse: %v", s, err)
		}
		if got := base.ResolveReference(u); got.Scheme != "https" || got.Host != "sb.example" || got.User != nil {
			t.Fatalf("accepted %q resolves to %s", s, got)
		}
	})
}

func TestProtectAPIOrSession(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.user("alice")
	c := e.publicClient()
	at, _ := e.tokens(c, "alice")
	b := newBrowser()
	e.browserLogin(b, "/chat", "alice")
	csrf := e.csrfOf(b)
	anon := newBrowser()
	anon.get(t, e.iss+"/login?next=/chat")

	type seen struct {
		UserID, ClientID, Cookie, CSRF string
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := UserFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		json.NewEncoder(w).Encode(seen{p.UserID, p.ClientID, r.Header.Get("Cookie"), r.Header.Get(CSRFHeader)})
	})
	e.ts.Config.Handler.(*http.ServeMux).Handle("/api/", e.srv.ProtectAPIOrSession(echo))

	for _, tc := range []struct {
		name    string
		browser *browser // nil: no cookies
		header  map[string]string
		status  int
		want    *seen
	}{
		{"session with CSRF token", b, map[string]string{CSRFHeader: csrf, "Origin": e.iss, "Sec-Fetch-Site": "same-origin"}, 200,
			&seen{UserID: alice.ID, ClientID: "session"}},
		{"session without Origin (same-origin GET)", b, map[string]string{CSRFHeader: csrf}, 200,
			&seen{UserID: alice.ID, ClientID: "session"}},
		{"session without CSRF token", b, nil, 403, nil},
		{"session with wrong CSRF token", b, map[string]string{CSRFHeader: strings.Repeat("0", 64)}, 403, nil},
		{"session from another origin", b, map[string]string{CSRFHeader: csrf, "Origin": "https://evil.example"}, 403, nil},
		{"session with Origin null", b, map[string]string{CSRFHeader: csrf, "Origin": "null"}, 403, nil},
		{"session cross-site fetch", b, map[string]string{CSRFHeader: csrf, "Sec-Fetch-Site": "cross-site"}, 403, nil},
		{"anonymous session", anon, map[string]string{CSRFHeader: csrf}, 401, nil},
		{"nothing", nil, nil, 401, nil},
		{"bearer token", nil, map[string]string{"Authorization": "Bearer " + at}, 200,
			&seen{UserID: alice.ID, ClientID: c.id}},
		{"bearer token wins over the cookie", b, map[string]string{"Authorization": "Bearer nonsense", CSRFHeader: csrf}, 401, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.iss+"/api/chat", strings.NewReader("{}"))
			if tc.browser != nil {
				req.Header.Set("Cookie", cookieHeader(tc.browser, e.iss)+"; sb_lang=ko")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
				t.Errorf("401 without the RFC 9728 challenge")
			}
			if tc.want == nil {
				return
			}
			var got seen
			json.Unmarshal(body, &got)
			want := *tc.want
			if tc.browser != nil {
				// The session cookie and the CSRF token stop at the middleware.
				want.Cookie = "sb_lang=ko"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("handler saw (-want +got):\n%s", diff)
			}
		})
	}
}
