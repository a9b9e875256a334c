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

func (d *testDownstream) ElicitationComplete(context.Context, *mcp.ElicitationCompleteParams) error {
	return nil
}

// A tool call that needs the user to authorize the upstream fails at once
// with an AuthorizationError carrying the URL, without asking anyone
// (prompting a person is the gateway's and the agent's job); once the user
// has authorized, WaitAuthorized returns and the call succeeds.
func TestCallToolReportsAuthorization(t *testing.T) {
	tests := []struct {
		name   string
		browse bool // the user opens the URL
	}{
		{name: "authorized", browse: true},
		{name: "never authorized"},
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

			td := &testDownstream{action: "accept"}
			ctx := context.WithValue(t.Context(), testCaller{}, hub.Caller{User: user, Downstream: td})
			_, err := call(ctx, c, "whoami", nil)
			var ae *hub.AuthorizationError
			if !errors.As(err, &ae) || !strings.HasPrefix(ae.URL, up.issuer+"/authorize?") || ae.Server != "gh" {
				t.Fatalf("call: %v; want an AuthorizationError for gh with the authorization URL", err)
			}
			if asked := td.elicitations(); len(asked) != 0 {
				t.Errorf("the hub asked the downstream %d times; prompting is the caller's job", len(asked))
			}
			status, serr := h.StatusFor(t.Context(), user, "gh")
			if serr != nil {
				t.Fatal(serr)
			}
			if status.Authorization != hub.AuthNeedsAuthorization || status.OAuthURL != ae.URL {
				t.Errorf("status: %s %q, want %s %q", status.Authorization, status.OAuthURL, hub.AuthNeedsAuthorization, ae.URL)
			}
			wctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			if !tt.browse {
				if err := c.WaitAuthorized(wctx, hub.Caller{User: user}); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("WaitAuthorized without an authorization: %v, want the deadline", err)
				}
				cancel()
				return
			}
			cancel()
			browse(t, h, up, user, ae.URL)
			wctx, cancel = context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if err := c.WaitAuthorized(wctx, hub.Caller{User: user}); err != nil {
				t.Fatalf("WaitAuthorized after the callback: %v", err)
			}
			if who, err := call(ctx, c, "whoami", nil); err != nil || who != user {
				t.Fatalf("call after authorizing: %q, %v; want %q", who, err, user)
			}
			if status, _ := h.StatusFor(t.Context(), user, "gh"); status.Authorization != hub.AuthAuthorized {
				t.Errorf("status after the call: %s, want %s", status.Authorization, hub.AuthAuthorized)
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
