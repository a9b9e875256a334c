package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// newToolServer is an MCP server over streamable HTTP with one tool,
// lookup, answering with what answer makes of the HTTP request.
func newToolServer(t *testing.T, answer func(r *http.Request) string) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "tool-server", Version: "1"}, nil)
	type reqKey struct{}
	mcp.AddTool(s, &mcp.Tool{Name: "lookup", Description: "looks up"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		text := ""
		if req.Extra != nil && req.Extra.Header != nil {
			text = answer(&http.Request{Header: req.Extra.Header})
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		srv.Close()
	})
	return srv
}

var (
	ridRE  = regexp.MustCompile(`name="rid" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// signInWithNaver plays a browser signing in at /login with the NAVER
// button; the fake NAVER approves at once.
func (ta *testApp) signInWithNaver(t *testing.T) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	resp, err := b.Get(ta.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	rid, csrf := ridRE.FindStringSubmatch(page.String()), csrfRE.FindStringSubmatch(page.String())
	if rid == nil || csrf == nil {
		t.Fatalf("sign-in page has no rid/csrf:\n%s", page.String())
	}
	resp, err = b.PostForm(ta.srv.URL+"/login/naver", url.Values{"rid": {rid[1]}, "csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	page.Reset()
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), ta.srv.URL) {
		t.Fatalf("NAVER sign-in ended at %s with %s:\n%s", resp.Request.URL, resp.Status, page.String())
	}
}

// Issue 9, acceptance 2: a user who signs in with NAVER gets a username
// (the nickname, made unique: a local "kim" exists, so "kim-2") and the
// profile's e-mail; named in access.servers.*.users by either, they may
// use the server at /mcp, /mcp/{server}, /api and in chat alike, and an
// API key made by `switchboard tokens create` (the CLI's code path) works
// for them. Named by neither, they may not, at every endpoint.
func TestAccessForIdentityProviderUser(t *testing.T) {
	naverUser := idptest.NaverUser{ID: "48213", Nickname: "kim", Email: "kim@naver.com", Name: "김철수"}
	tests := []struct {
		name  string
		rule  string // who access.servers.docs.users names
		allow bool
	}{
		{"by email", naverUser.Email, true},
		{"by username", "kim-2", true},
		{"someone else", "lee@naver.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			naver := idptest.NewNaver(t, &idptest.NaverOptions{Users: []idptest.NaverUser{naverUser}})
			nc := naver.Config()
			docs := newToolServer(t, func(*http.Request) string { return "the docs" })
			model := llmtest.NewOpenAI()
			t.Cleanup(model.Close)
			ta := startApp(t, "", fmt.Sprintf(`auth:
  providers:
    naver:
      clientId: %q
      clientSecret: %q
      issuer: %q
      profileURL: %q
access:
  servers:
    docs:
      users: [%q]
mcpServers:
  docs:
    type: streamable-http
    url: %q
llm:
  default: fake/m1
  providers:
    fake: {type: openai, baseURL: %q, apiKey: k, models: [m1]}
`, nc.ClientID, nc.ClientSecret, nc.Issuer, nc.ProfileURL, tt.rule, docs.URL, model.URL))
			ta.addUser(t, "kim", store.RoleUser) // the nickname is taken locally
			ta.signInWithNaver(t)

			// The command line names the user like a local one.
			ad, err := OpenAdmin(t.Context(), ta.Config(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var list bytes.Buffer
			if err := ad.WriteUsers(t.Context(), &list); err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`(?m)^kim-2\s+kim@naver\.com\s+user\s`).MatchString(list.String()) {
				t.Errorf("users list does not show kim-2 with the profile's e-mail:\n%s", list.String())
			}
			key, username, err := ad.CreateAPIKey(t.Context(), "kim-2", "test")
			ad.Close()
			if err != nil || username != "kim-2" {
				t.Fatalf("tokens create kim-2: %q, %v", username, err)
			}

			t.Run("mcp", func(t *testing.T) {
				tools := ta.listTools(t, "/mcp", key)
				if got := slices.Contains(tools, "docs__lookup"); got != tt.allow {
					t.Errorf("/mcp lists docs__lookup: %v, want %v (tools %v)", got, tt.allow, tools)
				}
				if !slices.Contains(tools, "switchboard__get_current_time") {
					t.Errorf("/mcp lacks the built-in tools: %v", tools)
				}
				st, _ := ta.do(t, http.MethodPost, "/mcp/docs", key, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
				if (st != http.StatusNotFound) != tt.allow {
					t.Errorf("/mcp/docs: %d, allowed %v", st, tt.allow)
				}
			})
			t.Run("api", func(t *testing.T) {
				st, body := ta.do(t, http.MethodGet, "/api/servers", key, "")
				var reply struct {
					Servers []struct{ Name string } `json:"servers"`
				}
				if err := json.Unmarshal([]byte(body), &reply); err != nil || st != http.StatusOK {
					t.Fatalf("GET /api/servers: %d %s", st, body)
				}
				got := slices.ContainsFunc(reply.Servers, func(s struct{ Name string }) bool { return s.Name == "docs" })
				if got != tt.allow {
					t.Errorf("/api/servers lists docs: %v, want %v (%s)", got, tt.allow, body)
				}
				if st, _ := ta.do(t, http.MethodGet, "/api/servers/docs", key, ""); (st == http.StatusOK) != tt.allow {
					t.Errorf("GET /api/servers/docs: %d, allowed %v", st, tt.allow)
				}
			})
			t.Run("chat", func(t *testing.T) {
				model.Push(llmtest.Turn{Text: []string{"done"}})
				st, body := ta.do(t, http.MethodPost, "/api/chat", key, `{"message":"find the docs"}`)
				if st != http.StatusOK || !strings.Contains(body, "done") {
					t.Fatalf("POST /api/chat: %d %s", st, body)
				}
				reqs := model.Requests()
				if len(reqs) == 0 {
					t.Fatal("the model was not asked")
				}
				offered := reqs[len(reqs)-1].ToolNames()
				got := slices.ContainsFunc(offered, func(n string) bool { return strings.HasPrefix(n, "docs") })
				if got != tt.allow {
					t.Errorf("chat offers a docs tool: %v, want %v (offered %v)", got, tt.allow, offered)
				}
			})
		})
	}
}

// listTools lists the tools at path with key as bearer token.
func (ta *testApp) listTools(t *testing.T, path, key string) []string {
	t.Helper()
	hc := &http.Client{Transport: bearer{key, http.DefaultTransport}}
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: ta.srv.URL + path, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", path, err)
	}
	defer cs.Close()
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	return names
}

type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}
