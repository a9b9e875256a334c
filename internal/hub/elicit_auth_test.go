package hub_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// testDownstream is the party a tool call is made for. It answers every
// elicitation with action and, when browse is set, opens the URL of a
// URL-mode one in the background as the user's browser would.
type testDownstream struct {
	action string
	browse func(url string)

	wg sync.WaitGroup // the browser

	mu    sync.Mutex // guards the fields below
	asked []*mcp.ElicitParams
}

var _ hub.Downstream = (*testDownstream)(nil)

func (d *testDownstream) Elicit(_ context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	d.mu.Lock()
	d.asked = append(d.asked, p)
	d.mu.Unlock()
	if p.Mode == "url" && d.browse != nil {
		d.wg.Go(func() { d.browse(p.URL) })
	}
	return &mcp.ElicitResult{Action: d.action}, nil
}

func (d *testDownstream) elicitations() []*mcp.ElicitParams {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*mcp.ElicitParams(nil), d.asked...)
}

func (d *testDownstream) CreateMessage(context.Context, *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error) {
	return nil, errors.New("no sampling here")
}

func (d *testDownstream) ListRoots(context.Context, *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{}, nil
}

func (d *testDownstream) Log(context.Context, *mcp.LoggingMessageParams) error { return nil }

func (d *testDownstream) Progress(context.Context, *mcp.ProgressNotificationParams) error {
	return nil
}

// urlDownstream is a testDownstream whose client declared URL-mode
// elicitation (or, with can false, declared only form mode).
type urlDownstream struct {
	*testDownstream
	can bool
}

var _ hub.URLElicitor = urlDownstream{}

func (d urlDownstream) CanElicitURL() bool { return d.can }

// A tool call that needs the user to authorize the upstream asks a client
// that can open URLs to do so, waits for the callback and returns the
// tool's result; any other client gets the authorization URL at once.
func TestCallToolElicitsAuthorization(t *testing.T) {
	tests := []struct {
		name   string
		action string
		url    bool // the downstream is a URLElicitor
		can    bool // ... and its client declared URL mode
		browse bool // the user opens the URL
		// wantAsked is how many elicitations the downstream sees; with
		// wantAuthorized the call succeeds, else it fails with an
		// AuthorizationError naming the URL.
		wantAsked      int
		wantAuthorized bool
	}{
		{name: "accepted", action: "accept", url: true, can: true, browse: true, wantAsked: 1, wantAuthorized: true},
		{name: "declined", action: "decline", url: true, can: true, wantAsked: 1},
		{name: "cancelled", action: "cancel", url: true, can: true, wantAsked: 1},
		{name: "no URL mode", action: "accept", url: true, can: false, wantAsked: 0},
		{name: "not a URLElicitor", action: "accept", wantAsked: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const user = "alice"
			clk := &clock{}
			up := newOAuthUpstream(t, clk)
			st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
			h, _ := newHub(t, &hub.Options{Store: st, Now: clk.now, OAuthRedirectURL: "http://sb.example/oauth/callback",
				AllowedDomains: []string{"localhost"}}, oauthServer(up))
			c := conn(t, h, "gh")
			waitFor(t, 10*time.Second, "OAuth to be detected", func() bool { return c.UserScoped() })

			td := &testDownstream{action: tt.action}
			if tt.browse {
				td.browse = func(authURL string) { browse(t, h, up, user, authURL) }
			}
			var d hub.Downstream = td
			if tt.url {
				d = urlDownstream{testDownstream: td, can: tt.can}
			}
			ctx, cancel := context.WithTimeout(hub.WithDownstream(hub.WithUser(t.Context(), user), d), 30*time.Second)
			defer cancel()
			who, err := call(ctx, c, "whoami", nil)
			td.wg.Wait()

			asked := td.elicitations()
			if len(asked) != tt.wantAsked {
				t.Fatalf("%d elicitations, want %d: %+v", len(asked), tt.wantAsked, asked)
			}
			for _, p := range asked {
				if p.Mode != "url" || !strings.HasPrefix(p.URL, up.issuer+"/authorize?") || p.ElicitationID == "" || !strings.Contains(p.Message, "gh") {
					t.Errorf("elicitation mode %q, URL %q, id %q, message %q: want URL mode at %s/authorize with an id, naming gh",
						p.Mode, p.URL, p.ElicitationID, p.Message, up.issuer)
				}
			}
			status, serr := h.StatusFor(t.Context(), user, "gh")
			if serr != nil {
				t.Fatal(serr)
			}
			if tt.wantAuthorized {
				if err != nil || who != user {
					t.Fatalf("call: %q, %v; want %q", who, err, user)
				}
				if status.Authorization != hub.AuthAuthorized {
					t.Errorf("status after the call: %s, want %s", status.Authorization, hub.AuthAuthorized)
				}
				return
			}
			var ae *hub.AuthorizationError
			if !errors.As(err, &ae) || !strings.HasPrefix(ae.URL, up.issuer+"/authorize?") {
				t.Fatalf("call: %q, %v; want an AuthorizationError with the authorization URL", who, err)
			}
			// The call did not wait for an authorization nobody started.
			if ctx.Err() != nil {
				t.Errorf("the call returned only when its context ended: %v", ctx.Err())
			}
			for _, p := range asked {
				if p.URL != ae.URL {
					t.Errorf("elicited URL %s, error URL %s: want the same", p.URL, ae.URL)
				}
			}
			if status.Authorization != hub.AuthNeedsAuthorization || status.OAuthURL != ae.URL {
				t.Errorf("status: %s %q, want %s %q", status.Authorization, status.OAuthURL, hub.AuthNeedsAuthorization, ae.URL)
			}
		})
	}
}

// browse plays user's browser at authURL: the test authorization server
// approves at once and redirects to Switchboard's callback, which is handed
// to the hub as its callback endpoint would.
func browse(t *testing.T, h *hub.Hub, up *oauthUpstream, user, authURL string) {
	if !strings.HasPrefix(authURL, up.issuer+"/authorize?") {
		t.Errorf("asked to open %s, not the authorization endpoint %s/authorize", authURL, up.issuer)
		return
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL + "&login_hint=" + user)
	if err != nil {
		t.Errorf("open %s: %v", authURL, err)
		return
	}
	resp.Body.Close()
	if _, err := h.HandleOAuthCallback(t.Context(), user, resp.Header.Get("Location")); err != nil {
		t.Errorf("callback: %v", err)
	}
}
