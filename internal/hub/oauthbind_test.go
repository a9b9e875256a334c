package hub_test

import (
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// Issue 10, finding 1, at the hub: with authorize links, the URL handed to
// the user is a single-use link that only its owner may open, and a
// callback completes only from the browser that opened it, or when its
// owner confirms.
func TestAuthorizeLinkBindsTheCallback(t *testing.T) {
	const linkURL = "http://sb.example/oauth/start"
	for _, tc := range []struct {
		name string
		cb   func(owner, browser string) *hub.OAuthCallback
		want error
	}{
		{"the browser that opened the link", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{Browser: b} }, nil},
		{"that browser, signed in as the owner", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{User: o, Browser: b} }, nil},
		{"another browser of the owner", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{User: o} }, hub.ErrConfirmLink},
		{"another browser of the owner, confirmed", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{User: o, Confirmed: true} }, nil},
		{"a browser signed in to nothing", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{} }, hub.ErrSignInToLink},
		{"a wrong binding secret", func(o, b string) *hub.OAuthCallback { return &hub.OAuthCallback{Browser: b + "x"} }, hub.ErrSignInToLink},
		{"another user, even with the secret", func(o, b string) *hub.OAuthCallback {
			return &hub.OAuthCallback{User: "mallory", Browser: b, Confirmed: true}
		}, hub.ErrForeignAuthorization},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{}
			up := newOAuthUpstream(t, clk)
			st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
			h, _ := newHub(t, &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback",
				AuthorizeLinkURL: linkURL, AllowedDomains: []string{"localhost"}}, oauthServer(up))
			c := conn(t, h, "gh")
			ctx := t.Context()
			waitFor(t, 10*time.Second, "OAuth to be detected", func() bool { return c.UserScoped() })

			link := needsAuth(t, c, "alice")
			lu, err := url.Parse(link)
			if err != nil || !strings.HasPrefix(link, linkURL+"?") {
				t.Fatalf("handed out %q, want a link under %s", link, linkURL)
			}
			token := lu.Query().Get("link")
			if _, _, err := h.OpenAuthorizeLink(ctx, "mallory", token, "m-secret"); !errors.Is(err, hub.ErrForeignAuthorization) {
				t.Errorf("another user opening the link: %v, want ErrForeignAuthorization", err)
			}
			const secret = "alice-browser-secret"
			server, authURL, err := h.OpenAuthorizeLink(ctx, "alice", token, secret)
			if err != nil || server != "gh" || !strings.Contains(authURL, "/authorize?") {
				t.Fatalf("alice opening her link: %q %q %v", server, authURL, err)
			}
			if _, _, err := h.OpenAuthorizeLink(ctx, "alice", token, secret); !errors.Is(err, hub.ErrUnknownState) {
				t.Errorf("the link opened twice: %v, want ErrUnknownState", err)
			}
			hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := hc.Get(authURL + "&login_hint=alice")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cb := tc.cb("alice", secret)
			cb.URL = resp.Header.Get("Location")
			_, err = h.CompleteOAuthCallback(ctx, cb)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("callback: %v, want %v", err, tc.want)
			}
			st2, _ := h.StatusFor(ctx, "alice", "gh")
			if authorized := st2.Authorization == hub.AuthAuthorized; authorized != (tc.want == nil) {
				t.Errorf("alice's authorization after the callback: %s", st2.Authorization)
			}
		})
	}
}
