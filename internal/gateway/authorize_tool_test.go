package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/web"
)

// A user who never signed in to an OAuth-protected server finds, in the
// aggregate, one tool that hands out the sign-in link; once they signed in,
// the server's own tools replace it.
func TestAuthorizeToolForNewUser(t *testing.T) {
	const user = "carol"
	up := newProtectedUpstream(t)
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cb := httptest.NewUnstartedServer(nil)
	t.Cleanup(cb.Close)
	callbackURL := "http://" + cb.Listener.Addr().String() + "/oauth/callback"

	var gw *gateway.Gateway
	cfg := &config.Config{Servers: []*config.Server{{Name: "gh", Type: config.StreamableHTTP, URL: up.URL + "/mcp", Startup: true, RequiresOAuth: ptrTrue()}}}
	h := hub.New(cfg, &hub.Options{
		Store: st, OAuthRedirectURL: callbackURL, AllowedDomains: []string{"localhost"},
		OnChange: func(s string) { gw.Changed(s) },
	})
	gw = gateway.New(h, &gateway.Options{UserOf: func(r *http.Request) string { return r.Header.Get(userHeader) }})
	t.Cleanup(func() {
		h.Close()
		gw.Close()
	})
	mux := http.NewServeMux()
	mux.Handle("GET /oauth/callback", web.NewAPI(h, nil).OAuthCallback())
	cb.Config.Handler = mux
	cb.Start()
	h.Start()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := mcp.NewClient(&mcp.Implementation{Name: "no-elicitation", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: &asUser{user, tr}}}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })

	has := func(name string) bool {
		res, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range res.Tools {
			if tl.Name == name {
				return true
			}
		}
		return false
	}
	waitUntil(t, "gh__authorize to be listed", func() bool { return has("gh__authorize") })

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "gh__authorize"})
	if err != nil || res.IsError {
		t.Fatalf("gh__authorize: %v %+v", err, res)
	}
	sc, _ := res.StructuredContent.(map[string]any)
	link, _ := sc["url"].(string)
	if !strings.HasPrefix(link, up.issuer+"/authorize?") || !strings.Contains(link, "state=") {
		t.Fatalf("sign-in link %q; want the authorization server's, with its query intact", link)
	}
	if err := signIn(ctx, user, link); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "gh's own tools to replace gh__authorize", func() bool { return !has("gh__authorize") && has("gh__whoami") })
}

func ptrTrue() *bool { b := true; return &b }
