package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// cimdUpstream is an MCP server with its own authorization server that
// supports Client ID Metadata Documents: at /authorize it fetches the
// client's document (from fetchDoc, standing in for the https URL) and
// checks the client_id and the redirect URI against it; it counts
// dynamic registrations, which a client with a document should not make.
type cimdUpstream struct {
	*httptest.Server
	fetchDoc func(clientID string) (map[string]any, error)

	mu            sync.Mutex // guards the fields below
	registrations int
	clientIDs     []string // client_id of each authorization request
	codes         map[string]string
	tokens        map[string]bool
}

func newCIMDUpstream(t *testing.T) *cimdUpstream {
	u := &cimdUpstream{codes: map[string]string{}, tokens: map[string]bool{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "cimd", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "octocat"}}}, nil, nil
	})
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"resource": u.URL + "/mcp", "authorization_servers": []string{u.URL}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{
			"issuer": u.URL, "authorization_endpoint": u.URL + "/authorize", "token_endpoint": u.URL + "/token",
			"registration_endpoint":                 u.URL + "/register",
			"client_id_metadata_document_supported": true,
			"code_challenge_methods_supported":      []string{"S256"}, "response_types_supported": []string{"code"},
			"token_endpoint_auth_methods_supported": []string{"none"},
		})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.registrations++
		u.mu.Unlock()
		reply(w, http.StatusCreated, map[string]any{"client_id": "registered-client", "token_endpoint_auth_method": "none"})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id := q.Get("client_id")
		u.mu.Lock()
		u.clientIDs = append(u.clientIDs, id)
		u.mu.Unlock()
		doc, err := u.fetchDoc(id)
		if err != nil {
			http.Error(w, "client metadata document: "+err.Error(), http.StatusBadRequest)
			return
		}
		redirects, _ := doc["redirect_uris"].([]any)
		if doc["client_id"] != id || !slices.Contains(redirects, any(q.Get("redirect_uri"))) {
			http.Error(w, "the redirect URI is not in the client's document", http.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("code-%d", len(q.Get("state")))
		u.mu.Lock()
		u.codes[code] = q.Get("code_challenge")
		u.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}, "iss": {u.URL}}.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		u.mu.Lock()
		challenge, ok := u.codes[r.Form.Get("code")]
		delete(u.codes, r.Form.Get("code"))
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		ok = ok && base64.RawURLEncoding.EncodeToString(sum[:]) == challenge && slices.Contains(u.clientIDs, r.Form.Get("client_id"))
		if ok {
			u.tokens["at-1"] = true
		}
		u.mu.Unlock()
		if !ok {
			reply(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
			return
		}
		reply(w, http.StatusOK, map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u.mu.Lock()
		valid := u.tokens[tok]
		u.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+u.URL+`/.well-known/oauth-protected-resource/mcp"`)
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

// Issue 9, item 5: with an https public URL, Switchboard's Client ID
// Metadata Document is offered to an upstream authorization server that
// supports them: its URL is the client_id, no registration is made, and
// the authorization completes with it.
func TestUpstreamGetsClientMetadataDocument(t *testing.T) {
	const public = "https://switchboard.example"
	up := newCIMDUpstream(t)
	ta := startApp(t, "  publicURL: "+public+"\n", fmt.Sprintf(`mcpServers:
  gh:
    type: streamable-http
    url: %q
    requiresOAuth: true
`, up.URL+"/mcp"))
	// The public URL is https, which the test server is not: requests for
	// it go to the test server instead.
	local := func(raw string) string {
		rest, ok := strings.CutPrefix(raw, public)
		if !ok {
			t.Fatalf("%q is not under the public URL %s", raw, public)
		}
		return ta.srv.URL + rest
	}
	up.fetchDoc = func(clientID string) (map[string]any, error) {
		if !strings.HasPrefix(clientID, public+"/") {
			return nil, fmt.Errorf("client_id %q is not a URL of Switchboard", clientID)
		}
		resp, err := http.Get(ta.srv.URL + strings.TrimPrefix(clientID, public))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", clientID, resp.Status)
		}
		var doc map[string]any
		return doc, json.NewDecoder(resp.Body).Decode(&doc)
	}
	alice, key := ta.addUser(t, "alice", store.RoleUser)

	st, body := ta.do(t, http.MethodPost, "/api/servers/gh/reinitialize", key, "")
	var reply struct {
		OAuthURL string `json:"oauthUrl"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.OAuthURL == "" {
		t.Fatalf("reinitialize: %d %s, want an oauthUrl", st, body)
	}
	// The hub hands out its authorize link; Alice's browser opening it
	// (as the link's handler does) leads to the upstream's URL.
	link, err := url.Parse(reply.OAuthURL)
	if err != nil || !strings.HasPrefix(reply.OAuthURL, public+oauthStartPath+"?") {
		t.Fatalf("oauthUrl %q is not Switchboard's authorize link", reply.OAuthURL)
	}
	const browserSecret = "alice's-browser-binding-secret-0123456789"
	_, authURL, err := ta.Hub().OpenAuthorizeLink(t.Context(), alice.ID, link.Query().Get("link"), browserSecret)
	if err != nil {
		t.Fatal(err)
	}
	au, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := au.Query().Get("client_id"), public+clientMetadataPath; got != want {
		t.Errorf("client_id in the authorization URL = %q, want %q", got, want)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("upstream authorization: %s", resp.Status)
	}
	cb, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, local(resp.Header.Get("Location")), nil)
	cb.Header.Set("Cookie", "__Host-sb_oauth_binding="+browserSecret) // the browser that opened the link
	resp, err = hc.Do(cb)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Switchboard's callback: %s", resp.Status)
	}
	st, body = ta.do(t, http.MethodGet, "/api/servers/gh", key, "")
	var status struct {
		Authorization string `json:"authorization"`
		State         string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &status); err != nil || status.Authorization != "authorized" {
		t.Errorf("after the callback: %d %s, want authorized", st, body)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.registrations != 0 {
		t.Errorf("%d dynamic registrations, want none: the document is the registration", up.registrations)
	}
}
