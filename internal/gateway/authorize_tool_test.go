package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

// A user who never signed in to an OAuth-protected server finds, in the
// aggregate, one tool that hands out the sign-in link; once they signed in,
// the server's own tools replace it.
func TestAuthorizeToolForNewUser(t *testing.T) {
	const user = "carol"
	up := newProtectedUpstream(t)
	_, srv := newOAuthGateway(t, &config.Server{Name: "gh", Type: config.StreamableHTTP, URL: up.URL + "/mcp", Startup: true, RequiresOAuth: ptrTrue()}, 0)

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
