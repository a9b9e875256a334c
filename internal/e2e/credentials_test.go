package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// serveVerbose is serve with debug logging (serve -v), for tests that
// search the log for what must never be in it.
func serveVerbose(t *testing.T, name, cfg, addr string) *instance {
	t.Helper()
	in := &instance{t: t, name: name, base: "http://" + addr, log: &logBuffer{}, done: make(chan struct{})}
	in.cmd = exec.Command(switchboardBin, "serve", "--config", cfg, "--listen", addr, "-v")
	in.cmd.Stdout, in.cmd.Stderr = in.log, in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.err = in.cmd.Wait()
		close(in.done)
	}()
	t.Cleanup(func() {
		in.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, in.log.String())
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-in.done:
			t.Fatalf("%s exited before it answered: %v\n%s", name, in.err, in.log.String())
		default:
		}
		if resp, err := hc.Get(in.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer /healthz within 30s\n%s", name, in.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiDo sends one request to Switchboard's HTTP API with a bearer token.
func apiDo(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// headerRecorder is an upstream MCP server (streamable HTTP) that records
// the user and token headers of every request of every connection.
type headerRecorder struct {
	*httptest.Server
	mu   sync.Mutex // guards seen
	seen []recorded
}

type recorded struct{ session, user, token string }

func newHeaderRecorder(t *testing.T) *headerRecorder {
	u := &headerRecorder{}
	s := mcp.NewServer(&mcp.Implementation{Name: "recorder", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "user=" + req.Extra.Header.Get("X-User")}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, recorded{r.Header.Get("Mcp-Session-Id"), r.Header.Get("X-User"), r.Header.Get("X-Token")})
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		for ss := range s.Sessions() {
			ss.Close()
		}
		u.Close()
	})
	return u
}

func (u *headerRecorder) records() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// callTool calls a tool in an MCP session and returns the raw response.
func callTool(t *testing.T, url, token, sid, name string) mcpResponse {
	t.Helper()
	return mcpPost(t, url, token, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, name))
}

// resultText is the text of a tools/call result, and whether it is an error.
func resultText(r mcpResponse) (string, bool) {
	isErr, _ := r.result["isError"].(bool)
	var b strings.Builder
	content, _ := r.result["content"].([]any)
	for _, c := range content {
		if m, ok := c.(map[string]any); ok {
			b.WriteString(fmt.Sprint(m["text"]))
		}
	}
	return b.String(), isErr
}

// Issue 4, acceptance 2, through the real binary: two users with personal
// API keys; alice's customUserVar and user id reach only her upstream
// connection; bob cannot read, use or learn of her value through the HTTP
// API or MCP, and the value is in no response and no log line.
func TestCredentialsOfTwoUsers(t *testing.T) {
	up := newHeaderRecorder(t)
	const (
		canaryA = "alice-CANARY-e2e-91c3"
		canaryB = "bob-CANARY-e2e-5d07"
	)
	servers := fmt.Sprintf(`mcpServers:
  svc:
    type: streamable-http
    url: %q
    headers:
      X-Token: "{{API_TOKEN}}"
      X-User: "{{LIBRECHAT_USER_ID}}"
    customUserVars:
      API_TOKEN:
        title: API token
        description: your token
`, up.URL+"/mcp")
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), servers)
	addUser(t, cfg, "alice", "user")
	addUser(t, cfg, "bob", "user")
	keyA, keyB := apiKey(t, cfg, "alice"), apiKey(t, cfg, "bob")
	in := serveVerbose(t, "switchboard", cfg, freeAddr(t))
	var bodies []string
	api := func(method, path, token, body string) (int, string) {
		t.Helper()
		st, b := apiDo(t, method, in.base+path, token, body)
		bodies = append(bodies, b)
		return st, b
	}
	bobView := func() string {
		t.Helper()
		var out []string
		for _, r := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/servers", ""},
			{http.MethodGet, "/api/servers/svc", ""},
			{http.MethodPost, "/api/servers/svc/reinitialize", ""},
			{http.MethodPut, "/api/servers/svc/credentials", `{"values":{"NOPE":"x"}}`},
		} {
			st, b := api(r.method, r.path, keyB, r.body)
			var v any
			if err := json.Unmarshal([]byte(b), &v); err != nil {
				t.Fatalf("%s %s: %d %q", r.method, r.path, st, b)
			}
			stripTimes(v)
			if m, ok := v.(map[string]any); ok && m["servers"] != nil {
				// Only svc: the built-in server connects on its own meanwhile.
				list, _ := m["servers"].([]any)
				m["servers"] = slices.DeleteFunc(list, func(s any) bool {
					sm, _ := s.(map[string]any)
					return sm["name"] != "svc"
				})
			}
			nb, _ := json.Marshal(v)
			out = append(out, fmt.Sprintf("%s %s -> %d %s", r.method, r.path, st, nb))
		}
		return strings.Join(out, "\n")
	}
	mcpURL := in.base + "/mcp"
	sidB := openSession(t, mcpURL, keyB)
	bobBefore := bobView()
	bobToolsBefore := toolNames(t, mcpURL, keyB, sidB)

	if st, b := api(http.MethodPut, "/api/servers/svc/credentials", keyA, `{"values":{"API_TOKEN":"`+canaryA+`"}}`); st != http.StatusOK {
		t.Fatalf("alice saves her value: %d %s", st, b)
	}
	sidA := openSession(t, mcpURL, keyA)
	waitTool(t, mcpURL, keyA, sidA, "svc__whoami")
	// The upstream answers with the {{LIBRECHAT_USER_ID}} it received.
	var idA, idB string
	if r := callTool(t, mcpURL, keyA, sidA, "svc__whoami"); r.status != http.StatusOK {
		t.Fatalf("alice's call: %d %s", r.status, r.body)
	} else if text, isErr := resultText(r); isErr || !strings.HasPrefix(text, "user=") || text == "user=" {
		t.Fatalf("alice's call: %q (error %v) %s", text, isErr, r.body)
	} else {
		idA = strings.TrimPrefix(text, "user=")
	}

	t.Run("bob's view does not change when alice saves a value", func(t *testing.T) {
		if got := bobView(); got != bobBefore {
			t.Errorf("before:\n%s\nafter:\n%s", bobBefore, got)
		}
		if got := toolNames(t, mcpURL, keyB, sidB); !slices.Equal(got, bobToolsBefore) {
			t.Errorf("bob's tools: before %v, after %v", bobToolsBefore, got)
		}
		if slices.Contains(bobToolsBefore, "svc__whoami") {
			t.Errorf("bob sees svc's tools without having entered his value: %v", bobToolsBefore)
		}
	})
	t.Run("bob's tool call does not use alice's value", func(t *testing.T) {
		r := callTool(t, mcpURL, keyB, sidB, "svc__whoami")
		text, isErr := resultText(r)
		if r.status == http.StatusOK && r.result != nil && !isErr {
			t.Fatalf("bob's call succeeded: %q", text)
		}
		if strings.Contains(r.body, canaryA) {
			t.Errorf("bob's answer carries alice's value: %s", r.body)
		}
	})
	t.Run("bob's DELETE leaves alice's value alone", func(t *testing.T) {
		if st, b := api(http.MethodDelete, "/api/servers/svc/credentials", keyB, ""); st != http.StatusOK {
			t.Fatalf("bob's DELETE: %d %s", st, b)
		}
		_, b := api(http.MethodGet, "/api/servers/svc", keyA, "")
		var s struct {
			Variables map[string]bool `json:"variables"`
		}
		json.Unmarshal([]byte(b), &s)
		if !s.Variables["API_TOKEN"] {
			t.Errorf("alice's variables after bob's DELETE: %s", b)
		}
		if r := callTool(t, mcpURL, keyA, sidA, "svc__whoami"); r.status != http.StatusOK {
			t.Fatalf("alice's call after bob's DELETE: %d %s", r.status, r.body)
		} else if _, isErr := resultText(r); isErr {
			t.Fatalf("alice's call after bob's DELETE: %s", r.body)
		}
	})
	t.Run("bob's own value reaches only his connection", func(t *testing.T) {
		if st, b := api(http.MethodPut, "/api/servers/svc/credentials", keyB, `{"values":{"API_TOKEN":"`+canaryB+`"}}`); st != http.StatusOK {
			t.Fatalf("bob saves his value: %d %s", st, b)
		}
		sid := openSession(t, mcpURL, keyB)
		waitTool(t, mcpURL, keyB, sid, "svc__whoami")
		r := callTool(t, mcpURL, keyB, sid, "svc__whoami")
		text, isErr := resultText(r)
		if isErr || !strings.HasPrefix(text, "user=") || text == "user=" || text == "user="+idA {
			t.Fatalf("bob's call: %d %s", r.status, r.body)
		}
		idB = strings.TrimPrefix(text, "user=")
	})
	t.Run("upstream connections carry their own user's values only", func(t *testing.T) {
		want := map[string]string{canaryA: idA, canaryB: idB}
		sessions := map[string]string{}
		seen := map[string]bool{}
		for _, r := range up.records() {
			seen[r.user] = true
			if want[r.token] != r.user {
				t.Errorf("a request for user %q carried token %q", r.user, r.token)
			}
			if r.session == "" {
				continue
			}
			if u, ok := sessions[r.session]; ok && u != r.user {
				t.Errorf("upstream session %s carried requests of %s and %s", r.session, u, r.user)
			}
			sessions[r.session] = r.user
		}
		if !seen[idA] || !seen[idB] || len(seen) != 2 {
			t.Errorf("the upstream saw users %v, want %s and %s", seen, idA, idB)
		}
	})
	t.Run("values appear in no response and no log line", func(t *testing.T) {
		for _, b := range bodies {
			if strings.Contains(b, canaryA) || strings.Contains(b, canaryB) {
				t.Errorf("an API response carries a value: %s", b)
			}
		}
		log := in.log.String()
		if !strings.Contains(log, "server=svc") {
			t.Fatalf("no log of svc to search:\n%s", log)
		}
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, canaryA) || strings.Contains(line, canaryB) {
				t.Errorf("a log line carries a value: %s", line)
			}
		}
	})
}

func stripTimes(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "since")
		delete(x, "nextRetry")
		for _, e := range x {
			stripTimes(e)
		}
	case []any:
		for _, e := range x {
			stripTimes(e)
		}
	}
}

// waitTool waits until the session lists the tool: saving values connects
// the user's connection in the background, and its tools then appear.
func waitTool(t *testing.T, url, token, sid, tool string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(toolNames(t, url, token, sid), tool) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear in the tool list within 15s", tool)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
