package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub/hubtest"
)

// Pre-registered client of the upstream's authorization server.
const (
	upstreamClientID     = "switchboard-client"
	upstreamClientSecret = "switchboard-client-secret"
)

// newProtectedUpstream is an MCP server and its own authorization server on
// 127.0.0.1 that knows one pre-registered client and approves every
// authorization request at once as "octocat".
func newProtectedUpstream(t *testing.T) *hubtest.OAuthServer {
	return hubtest.NewOAuthServer(t, &hubtest.OAuthOptions{
		ServerOptions: hubtest.ServerOptions{Name: "protected"},
		ClientID:      upstreamClientID, ClientSecret: upstreamClientSecret,
	})
}

// authorizeUpstream signs the user in to the upstream the way a browser
// does: reinitialize at startAt returns the authorize link; the user's
// browser opens it (signing in to Switchboard on the way when it is not
// yet), the test authorization server approves at once and redirects to
// Switchboard's callback, which links the account. It returns the browser.
func authorizeUpstream(t *testing.T, startAt *instance, key, server, user string) *browser {
	t.Helper()
	b := newBrowser()
	link := oauthLink(t, startAt, key, server)
	if resp, page := b.visit(t, link, user); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Connected") {
		t.Fatalf("authorizing %s: %d %s", server, resp.StatusCode, page)
	}
	return b
}

// oauthLink asks Switchboard to reconnect server for the API key's user
// and returns the authorize link it answers with.
func oauthLink(t *testing.T, in *instance, key, server string) string {
	t.Helper()
	st, body := apiDo(t, http.MethodPost, in.base+"/api/servers/"+server+"/reinitialize", key, "")
	var reply struct {
		OAuthRequired bool   `json:"oauthRequired"`
		OAuthURL      string `json:"oauthUrl"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil || st != http.StatusOK || !reply.OAuthRequired || reply.OAuthURL == "" {
		t.Fatalf("reinitialize: %d %s, want 200 with an oauthUrl", st, body)
	}
	return reply.OAuthURL
}

// rpc sends one JSON-RPC request and returns the tools/call result text,
// for use from several goroutines (it reports errors instead of failing).
func rpc(ctx context.Context, url, token, sid, msg string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(msg)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	payload := b
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.SplitSeq(string(b), "\n") {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				payload = []byte(strings.TrimSpace(d))
			}
		}
	}
	r := mcpResponse{status: resp.StatusCode, body: string(b)}
	var env struct {
		Result map[string]any `json:"result"`
	}
	if json.Unmarshal(payload, &env) != nil || env.Result == nil {
		return "", fmt.Errorf("no result: %s", b)
	}
	r.result = env.Result
	text, isErr := resultText(r)
	if isErr {
		return "", fmt.Errorf("tool error: %s", text)
	}
	return text, nil
}

// Issue 4, acceptance 3: two Switchboard processes sharing PostgreSQL serve
// one user of an OAuth-protected upstream; after the access token expires,
// concurrent tool calls at both processes make the upstream see exactly
// one refresh (its refresh tokens rotate and work once, so a second
// redemption would be a reuse), and every call succeeds. The user starts
// the authorization at B while the callback, at the public URL, lands on A.
func TestUpstreamRefreshAcrossProcesses(t *testing.T) {
	dsn := postgresSchema(t)
	up := newProtectedUpstream(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	public := "http://" + addrA
	extra := fmt.Sprintf(`  publicURL: %q
store:
  driver: postgres
  dsn: %q
mcpServers:
  gh:
    type: streamable-http
    url: %q
    requiresOAuth: true
    oauth:
      client_id: %s
      client_secret: %s
      token_exchange_method: basic_auth_header
`, public, dsn, up.URL, upstreamClientID, upstreamClientSecret)
	dataA, dataB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	cfgA, cfgB := writeConfig(t, dataA, extra), writeConfig(t, dataB, extra)
	addUser(t, cfgA, "alice", "user")
	key, err := os.ReadFile(filepath.Join(dataA, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "secrets.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	apiKeyA := apiKey(t, cfgA, "alice")
	a := serve(t, "switchboard A", cfgA, addrA)
	b := serve(t, "switchboard B", cfgB, addrB)

	authorizeUpstream(t, b, apiKeyA, "gh", "alice")

	sessions := map[*instance]string{}
	for _, in := range []*instance{a, b} {
		sid := openSession(t, in.base+"/mcp", apiKeyA)
		waitTool(t, in.base+"/mcp", apiKeyA, sid, "gh__whoami")
		if who, err := rpc(t.Context(), in.base+"/mcp", apiKeyA, sid, callMsg("gh__whoami")); err != nil || who != "octocat" {
			t.Fatalf("%s: call before expiry: %q, %v", in.name, who, err)
		}
		sessions[in] = sid
	}
	if n, _ := up.Refreshes(); n != 0 {
		t.Fatalf("%d refreshes before expiry", n)
	}

	up.ExpireAccessTokens()
	var wg sync.WaitGroup
	for i := range 4 {
		for _, in := range []*instance{a, b} {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"gh__whoami","arguments":{}}}`, 100+i)
				if who, err := rpc(ctx, in.base+"/mcp", apiKeyA, sessions[in], msg); err != nil || who != "octocat" {
					t.Errorf("%s: call after expiry: %q, %v", in.name, who, err)
				}
			})
		}
	}
	wg.Wait()
	if n, reused := up.Refreshes(); n != 1 || reused != 0 {
		t.Errorf("the upstream saw %d refreshes and %d reused refresh tokens, want exactly 1 and 0", n, reused)
	}
}

func callMsg(tool string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool)
}
