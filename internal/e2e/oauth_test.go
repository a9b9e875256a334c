package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The OAuth side of the tests: a public client registered by DCR and a
// cookie-keeping browser that signs in on Switchboard's pages. It follows
// what scripts/oauth-browser.mjs does for the Node tests.

const redirectURI = "http://127.0.0.1:7777/callback" // loopback: nothing needs to listen

type oauthClient struct{ id string }

// register registers a public client at base by RFC 7591 DCR.
func register(t *testing.T, base string) oauthClient {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_name": "switchboard e2e", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
	})
	resp, err := http.Post(base+"/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	id, _ := out["client_id"].(string)
	if resp.StatusCode != http.StatusCreated || id == "" {
		t.Fatalf("register: %d %v", resp.StatusCode, out)
	}
	return oauthClient{id: id}
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	s := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(s[:])}
}

// browser keeps cookies and stops at every redirect.
// An upstream's authorization server the browser is signed in to (see
// signInUpstream) gets the account as login_hint, which the test servers
// take as who is signed in there.
type browser struct {
	c         *http.Client
	upstreams map[string]string // host:port of an authorization server -> account
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, upstreams: map[string]string{}}
}

func (b *browser) do(t *testing.T, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if account, ok := b.upstreams[req.URL.Host]; ok && method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/authorize") {
		q := req.URL.Query()
		q.Set("login_hint", account)
		req.URL.RawQuery = q.Encode()
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", "en")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp, string(page)
}

// visit opens u and follows redirects the way a browser does. When
// Switchboard's sign-in page appears it signs in as user (for "" it stops
// there). It returns the last response and its page.
func (b *browser) visit(t *testing.T, u, user string) (*http.Response, string) {
	t.Helper()
	resp, page := b.do(t, http.MethodGet, u, nil)
	for range 12 {
		switch {
		case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
			next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			resp, page = b.do(t, http.MethodGet, next.String(), nil)
		case resp.StatusCode == http.StatusOK && user != "" && strings.Contains(page, `action="/login"`):
			rid, csrf := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
			if rid == nil || csrf == nil {
				t.Fatalf("sign-in page without a form:\n%s", page)
			}
			login, _ := resp.Request.URL.Parse("/login")
			resp, page = b.do(t, http.MethodPost, login.String(), url.Values{
				"rid": {html.UnescapeString(rid[1])}, "csrf": {html.UnescapeString(csrf[1])},
				"username": {user}, "password": {password},
			})
		default:
			return resp, page
		}
	}
	t.Fatalf("too many redirects from %s", u)
	return nil, ""
}

// signInPages signs the browser in to Switchboard's own pages as user.
func (b *browser) signInPages(t *testing.T, base, user string) {
	t.Helper()
	if resp, page := b.visit(t, base+"/login", user); resp.StatusCode != http.StatusOK || strings.Contains(page, `action="/login"`) {
		t.Fatalf("signing in %s: %d %s", user, resp.StatusCode, page)
	}
}

var (
	ridRE  = regexp.MustCompile(`name="rid" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func authorizeQuery(c oauthClient, p pkce, resource string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {redirectURI},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "state": {"e2e-state"},
		"resource": {resource}, "scope": {"mcp"},
	}
}

// authorize runs an authorization request for user at base (the
// authorization server a client discovered) and returns the code from the
// redirect back to the client. The sign-in page is answered with the user's
// password; a consent page with "allow"; a remembered consent needs neither.
func (b *browser) authorize(t *testing.T, base string, c oauthClient, p pkce, resource, user string) string {
	t.Helper()
	resp, page := b.do(t, http.MethodGet, base+"/authorize?"+authorizeQuery(c, p, resource).Encode(), nil)
	for range 5 {
		switch resp.StatusCode {
		case http.StatusFound, http.StatusSeeOther:
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(loc.String(), redirectURI) {
				resp, page = b.do(t, http.MethodGet, loc.String(), nil)
				continue
			}
			lq := loc.Query()
			if lq.Get("code") == "" || lq.Get("state") != "e2e-state" || lq.Get("iss") == "" {
				t.Fatalf("redirect to the client without code, state or iss: %s", loc)
			}
			return lq.Get("code")
		case http.StatusOK:
			rid, csrf := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
			if rid == nil || csrf == nil {
				t.Fatalf("page without a form:\n%s", page)
			}
			form := url.Values{"rid": {html.UnescapeString(rid[1])}, "csrf": {html.UnescapeString(csrf[1])}}
			if strings.Contains(page, `action="/login"`) {
				form.Set("username", user)
				form.Set("password", password)
				resp, page = b.do(t, http.MethodPost, base+"/login", form)
			} else {
				form.Set("action", "allow")
				resp, page = b.do(t, http.MethodPost, base+"/authorize/consent", form)
			}
		default:
			t.Fatalf("authorization step: %d %s", resp.StatusCode, page)
		}
	}
	t.Fatalf("no redirect back to the client")
	return ""
}

// tokenResponse is an RFC 6749 §5.1 or §5.2 answer of /token.
type tokenResponse struct {
	status  int
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Error   string `json:"error"`
}

func postToken(t *testing.T, base string, form url.Values) tokenResponse {
	t.Helper()
	resp, err := http.PostForm(base+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	json.NewDecoder(resp.Body).Decode(&tr)
	tr.status = resp.StatusCode
	return tr
}

// redeem exchanges a code at base and fails the test unless tokens come back.
func redeem(t *testing.T, base string, c oauthClient, code string, p pkce, resource string) tokenResponse {
	t.Helper()
	tr := postToken(t, base, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {c.id}, "code_verifier": {p.verifier}, "resource": {resource},
	})
	if tr.status != http.StatusOK || tr.Access == "" || tr.Refresh == "" {
		t.Fatalf("redeem at %s: %+v", base, tr)
	}
	return tr
}

// refresh presents a refresh token at base.
func refresh(t *testing.T, base string, c oauthClient, rt string) tokenResponse {
	t.Helper()
	return postToken(t, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.id}})
}

// signIn runs the whole flow for user with a new browser and returns the
// browser (its session cookie) and the tokens.
func signIn(t *testing.T, base string, c oauthClient, resource, user string) (*browser, tokenResponse) {
	t.Helper()
	b := newBrowser()
	p := newPKCE()
	return b, redeem(t, base, c, b.authorize(t, base, c, p, resource, user), p, resource)
}
