package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Pre-registered client of the upstream's authorization server.
const (
	upstreamClientID     = "switchboard-client"
	upstreamClientSecret = "switchboard-client-secret"
)

// protectedUpstream is an MCP server (streamable HTTP at /mcp) and its own
// authorization server in one httptest server on 127.0.0.1. It approves
// every authorization request at once (the user is "octocat"), checks
// PKCE and the pre-registered client, issues access tokens that expire and
// refresh tokens that rotate and work once, and counts refreshes.
type protectedUpstream struct {
	*httptest.Server

	mu        sync.Mutex // guards the fields below
	codes     map[string]upstreamCode
	access    map[string]bool // access token -> still valid
	refresh   map[string]bool // refresh token -> unused
	refreshes int             // refresh requests that succeeded
	reused    int             // refresh tokens presented a second time
	n         int
}

type upstreamCode struct{ challenge, redirect string }

func newProtectedUpstream(t *testing.T) *protectedUpstream {
	u := &protectedUpstream{codes: map[string]upstreamCode{}, access: map[string]bool{}, refresh: map[string]bool{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "protected", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "octocat"}}}, nil, nil
	})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"resource": u.URL + "/mcp", "authorization_servers": []string{u.URL}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": u.URL, "authorization_endpoint": u.URL + "/authorize", "token_endpoint": u.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"}, "response_types_supported": []string{"code"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != upstreamClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := u.next("code")
		u.mu.Lock()
		u.codes[code] = upstreamCode{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		u.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {u.URL}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != upstreamClientID || secret != upstreamClientSecret {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
			return
		}
		r.ParseForm()
		ok := false
		u.mu.Lock()
		switch r.Form.Get("grant_type") {
		case "authorization_code":
			c, found := u.codes[r.Form.Get("code")]
			delete(u.codes, r.Form.Get("code"))
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			ok = found && c.redirect == r.Form.Get("redirect_uri") && base64.RawURLEncoding.EncodeToString(sum[:]) == c.challenge
		case "refresh_token":
			rt := r.Form.Get("refresh_token")
			unused, known := u.refresh[rt]
			if known && !unused {
				u.reused++
			}
			ok = unused
			u.refresh[rt] = false // rotation: one use
			if ok {
				u.refreshes++
			}
		}
		u.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
			return
		}
		at, rt := u.next("at"), u.next("rt")
		u.mu.Lock()
		u.access[at], u.refresh[rt] = true, true
		u.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer", "refresh_token": rt, "expires_in": 3600})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		valid := u.access[tok]
		u.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+u.URL+`/.well-known/oauth-protected-resource/mcp"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		u.Close()
	})
	return u
}

func (u *protectedUpstream) next(prefix string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return fmt.Sprintf("%s-%d", prefix, u.n)
}

// expireAccessTokens lets every access token issued so far expire.
func (u *protectedUpstream) expireAccessTokens() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for at := range u.access {
		u.access[at] = false
	}
}

func (u *protectedUpstream) counts() (refreshes, reused int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.refreshes, u.reused
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// authorizeUpstream signs the user in to the upstream the way a browser
// does: reinitialize at startAt returns the oauthUrl; the test
// authorization server approves at once and redirects to Switchboard's
// callback (the public URL), which is followed.
func authorizeUpstream(t *testing.T, startAt *instance, key, server string) {
	t.Helper()
	st, body := apiDo(t, http.MethodPost, startAt.base+"/api/servers/"+server+"/reinitialize", key, "")
	var reply struct {
		OAuthRequired bool   `json:"oauthRequired"`
		OAuthURL      string `json:"oauthUrl"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil || st != http.StatusOK || !reply.OAuthRequired || reply.OAuthURL == "" {
		t.Fatalf("reinitialize: %d %s, want 200 with an oauthUrl", st, body)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(reply.OAuthURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(cb, "/oauth/callback?") {
		t.Fatalf("authorization: %d to %q", resp.StatusCode, cb)
	}
	resp, err = hc.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Switchboard's callback: %d %s", resp.StatusCode, page)
	}
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
`, public, dsn, up.URL+"/mcp", upstreamClientID, upstreamClientSecret)
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

	authorizeUpstream(t, b, apiKeyA, "gh")

	sessions := map[*instance]string{}
	for _, in := range []*instance{a, b} {
		sid := openSession(t, in.base+"/mcp", apiKeyA)
		waitTool(t, in.base+"/mcp", apiKeyA, sid, "gh__whoami")
		if who, err := rpc(t.Context(), in.base+"/mcp", apiKeyA, sid, callMsg("gh__whoami")); err != nil || who != "octocat" {
			t.Fatalf("%s: call before expiry: %q, %v", in.name, who, err)
		}
		sessions[in] = sid
	}
	if n, _ := up.counts(); n != 0 {
		t.Fatalf("%d refreshes before expiry", n)
	}

	up.expireAccessTokens()
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
	if n, reused := up.counts(); n != 1 || reused != 0 {
		t.Errorf("the upstream saw %d refreshes and %d reused refresh tokens, want exactly 1 and 0", n, reused)
	}
}

func callMsg(tool string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool)
}
