package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/hub/hubtest"
)

var (
	queryRE      = regexp.MustCompile(`name="query" value="([^"]*)"`)
	confirmRE    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	signInLinkRE = regexp.MustCompile(`<a href="(/login\?[^"]+)">`)
)

// signInUpstream signs the browser in to the protected upstream's
// authorization server as account.
func (b *browser) signInUpstream(t *testing.T, up *hubtest.OAuthServer, account string) {
	t.Helper()
	u, err := url.Parse(up.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	b.upstreams[u.Host] = account
}

// serverAuthorization returns the user's authorization state of server,
// from the API.
func serverAuthorization(t *testing.T, in *instance, key, server string) string {
	t.Helper()
	st, body := apiDo(t, http.MethodGet, in.base+"/api/servers/"+server, key, "")
	var s struct {
		Authorization string `json:"authorization"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || st != http.StatusOK {
		t.Fatalf("server status: %d %s", st, body)
	}
	return s.Authorization
}

// whoamiAt calls the upstream's whoami tool through Switchboard as the key's
// user: the upstream account linked to them.
func whoamiAt(t *testing.T, in *instance, key string) string {
	t.Helper()
	sid := openSession(t, in.base+"/mcp", key)
	waitTool(t, in.base+"/mcp", key, sid, "up__whoami")
	who, err := rpc(t.Context(), in.base+"/mcp", key, sid, callMsg("up__whoami"))
	if err != nil {
		t.Fatal(err)
	}
	return who
}

// Issue 10, finding 1 and acceptance 2: Bob starts authorizing the
// OAuth-protected upstream and gets Alice to open his link (or the
// upstream's authorization URL behind it). Alice's browser is signed in
// to the upstream as alice-up; whatever she opens, her upstream account is
// never linked to Bob. Alice's own flow works in one click, and Bob can
// still finish his from another of his browsers by confirming.
func TestUpstreamOAuthBoundToInitiator(t *testing.T) {
	up := newProtectedUpstream(t)
	addr := freeAddr(t)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, data, fmt.Sprintf(`mcpServers:
  up:
    type: streamable-http
    url: %q
    requiresOAuth: true
    oauth:
      client_id: %s
      client_secret: %s
      token_exchange_method: basic_auth_header
`, up.URL, upstreamClientID, upstreamClientSecret))
	addUser(t, cfg, "alice", "user")
	addUser(t, cfg, "bob", "user")
	aliceKey, bobKey := apiKey(t, cfg, "alice"), apiKey(t, cfg, "bob")
	sb := serve(t, "switchboard", cfg, addr)

	alice := newBrowser()
	alice.signInPages(t, sb.base, "alice")
	alice.signInUpstream(t, up, "alice-up")

	bobLink := oauthLink(t, sb, bobKey, "up")
	if !strings.HasPrefix(bobLink, sb.base+"/oauth/start?") {
		t.Errorf("the hub handed out %q, want Switchboard's authorize link", bobLink)
	}

	t.Run("Bob's link in Alice's browser", func(t *testing.T) {
		resp, page := alice.visit(t, bobLink, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "another Switchboard account") {
			t.Errorf("Alice opening Bob's link: %d %s, want 403 and nothing linked", resp.StatusCode, page)
		}
		if got := serverAuthorization(t, sb, bobKey, "up"); got == "authorized" {
			t.Fatalf("Alice's upstream account is linked to Bob (as %q) after she opened his link", whoamiAt(t, sb, bobKey))
		}
	})

	// Bob opens his own link, and sends Alice the upstream's URL it
	// redirects to instead.
	bob := newBrowser()
	bob.signInPages(t, sb.base, "bob")
	resp, page := bob.do(t, http.MethodGet, bobLink, nil)
	upstreamURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(upstreamURL, up.Issuer+"/authorize?") {
		t.Fatalf("Bob opening his link: %d %q %s", resp.StatusCode, upstreamURL, page)
	}
	if resp, page := bob.do(t, http.MethodGet, bobLink, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Bob's link opened a second time: %d %s, want 400 (single use)", resp.StatusCode, page)
	}

	t.Run("upstream URL in Alice's signed-in browser", func(t *testing.T) {
		resp, page := alice.visit(t, upstreamURL, "")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Not linked") {
			t.Errorf("callback in Alice's browser: %d %s, want 403", resp.StatusCode, page)
		}
	})
	t.Run("upstream URL in a browser not signed in to Switchboard", func(t *testing.T) {
		anon := newBrowser()
		anon.signInUpstream(t, up, "alice-up")
		resp, page := anon.visit(t, upstreamURL, "")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Sign in to Switchboard") {
			t.Errorf("callback in an anonymous browser: %d %s, want 401 asking to sign in", resp.StatusCode, page)
		}
		// Following the page's sign-in link as Alice still links nothing
		// to Bob.
		link := signInLinkRE.FindStringSubmatch(page)
		if link == nil {
			t.Fatalf("no sign-in link on %s", page)
		}
		if resp, page := anon.visit(t, sb.base+html.UnescapeString(link[1]), "alice"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Not linked") {
			t.Errorf("callback after signing in as Alice: %d %s, want 403", resp.StatusCode, page)
		}
	})
	if got := serverAuthorization(t, sb, bobKey, "up"); got == "authorized" {
		t.Fatalf("Bob's connection is authorized after Alice's browser returned: %s", got)
	}

	t.Run("Alice's own flow in one click", func(t *testing.T) {
		resp, page := alice.visit(t, oauthLink(t, sb, aliceKey, "up"), "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Connected") {
			t.Fatalf("Alice's own flow: %d %s", resp.StatusCode, page)
		}
		if who := whoamiAt(t, sb, aliceKey); who != "alice-up" {
			t.Errorf("Alice's upstream account through Switchboard: %q, want alice-up", who)
		}
	})

	t.Run("Bob confirms in another browser of his", func(t *testing.T) {
		bob2 := newBrowser()
		bob2.signInPages(t, sb.base, "bob")
		bob2.signInUpstream(t, up, "bob-up")
		resp, page := bob2.visit(t, upstreamURL, "")
		q, csrf := queryRE.FindStringSubmatch(page), confirmRE.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || q == nil || csrf == nil || !strings.Contains(page, "bob") {
			t.Fatalf("callback in Bob's other browser: %d %s, want the confirmation page", resp.StatusCode, page)
		}
		form := url.Values{"query": {html.UnescapeString(q[1])}, "csrf": {html.UnescapeString(csrf[1])}, "action": {"link"}}
		if resp, page := alice.do(t, http.MethodPost, sb.base+"/oauth/callback", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("Bob's confirmation posted from Alice's browser: %d %s, want 403", resp.StatusCode, page)
		}
		resp, page = bob2.do(t, http.MethodPost, sb.base+"/oauth/callback", form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Connected") {
			t.Fatalf("Bob confirming: %d %s", resp.StatusCode, page)
		}
		if who := whoamiAt(t, sb, bobKey); who != "bob-up" {
			t.Errorf("Bob's upstream account through Switchboard: %q, want bob-up", who)
		}
	})
	if who := whoamiAt(t, sb, aliceKey); who != "alice-up" {
		t.Errorf("Alice's upstream account at the end: %q, want alice-up", who)
	}
}

// Issue 10, acceptance 2 (identity-provider callbacks): Bob starts signing
// in to Switchboard with the OIDC provider and gets Alice's browser to
// open the provider's redirect back (login CSRF). Alice's browser is not
// signed in as Bob; Bob's own sign-in completes in his browser.
func TestIdPCallbackBoundToBrowser(t *testing.T) {
	oidc := idptest.NewOIDC(t, &idptest.OIDCOptions{Users: []idptest.OIDCUser{
		{Subject: "sub-bob", Email: "bob@corp.example", EmailVerified: true, Name: "Bob", PreferredUsername: "bob"},
		{Subject: "sub-alice", Email: "alice@corp.example", EmailVerified: true, Name: "Alice", PreferredUsername: "alice"},
	}})
	addr := freeAddr(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf(`auth:
  providers:
    corp:
      type: oidc
      issuer: %q
      clientId: %s
      clientSecret: %s
`, oidc.URL(), oidc.ClientID(), oidc.ClientSecret()))
	sb := serve(t, "switchboard", cfg, addr)

	// startSignIn runs b's sign-in with the provider up to the provider's
	// redirect back to Switchboard, and returns that URL.
	startSignIn := func(t *testing.T, b *browser, hint string) string {
		t.Helper()
		resp, page := b.visit(t, sb.base+"/login?next=/chat", "")
		rid, csrf := ridRE.FindStringSubmatch(page), csrfRE.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || rid == nil || csrf == nil || !strings.Contains(page, `action="/login/corp"`) {
			t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
		}
		resp, _ = b.do(t, http.MethodPost, sb.base+"/login/corp", url.Values{"rid": {html.UnescapeString(rid[1])}, "csrf": {html.UnescapeString(csrf[1])}})
		authz := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authz, oidc.URL()) {
			t.Fatalf("to the provider: %d %q", resp.StatusCode, authz)
		}
		resp, page = b.do(t, http.MethodGet, authz+"&login_hint="+hint, nil)
		cb := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, sb.base+"/login/corp/callback?") {
			t.Fatalf("provider's redirect back: %d %q %s", resp.StatusCode, cb, page)
		}
		return cb
	}
	signedInAs := func(b *browser) string {
		resp, page := b.do(t, http.MethodGet, sb.base+"/chat", nil)
		if resp.StatusCode != http.StatusOK {
			return ""
		}
		return page
	}

	for _, tc := range []struct {
		name string
		b    func() *browser
	}{
		{"a fresh browser", newBrowser},
		{"Alice's browser in the middle of her own sign-in", func() *browser {
			a := newBrowser()
			startSignIn(t, a, "alice")
			return a
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := startSignIn(t, newBrowser(), "bob") // a state is single-use
			a := tc.b()
			resp, page := a.visit(t, cb, "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "another browser") {
				t.Errorf("Bob's callback in %s: %d %s, want 403", tc.name, resp.StatusCode, page)
			}
			if page := signedInAs(a); page != "" {
				t.Errorf("%s is signed in after opening Bob's callback", tc.name)
			}
		})
	}
	// Bob's own sign-in, in his own browser, in one go.
	bob := newBrowser()
	if resp, page := bob.visit(t, startSignIn(t, bob, "bob"), ""); resp.StatusCode != http.StatusOK || signedInAs(bob) == "" {
		t.Errorf("Bob's own sign-in: %d %s", resp.StatusCode, page)
	}
}
