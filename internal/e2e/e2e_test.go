// Package e2e holds end-to-end tests of the switchboard binary: each test
// starts real `switchboard serve` processes on loopback ports with their own
// data directories (and, where asked, a shared PostgreSQL), signs in through
// the real authorization server and speaks MCP to the real gateway, asserting
// only what a client observes on the wire. It has no non-test code and nothing
// imports it.
//
// Tests that need Node run when SWITCHBOARD_TEST_NODE=1; those that need
// PostgreSQL when SWITCHBOARD_TEST_POSTGRES_DSN is set. CI sets both.
// SWITCHBOARD_BIN runs them against a prebuilt binary instead of building one.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub/hubtest"
)

// switchboardBin is the binary TestMain builds once for every test, and
// stdioServerBin hubtest's stdio server.
var switchboardBin, stdioServerBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	var (
		wg                 sync.WaitGroup
		stdioErr, buildErr error
	)
	wg.Go(func() { stdioServerBin, stdioErr = hubtest.BuildStdioServer(context.Background(), dir) })
	// SWITCHBOARD_BIN names a prebuilt binary, as for scripts/conformance*.sh.
	if switchboardBin = os.Getenv("SWITCHBOARD_BIN"); switchboardBin == "" {
		switchboardBin = filepath.Join(dir, "switchboard")
		build := exec.Command("go", "build", "-o", switchboardBin, "github.com/switchboard-mcp/switchboard/cmd/switchboard")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			buildErr = fmt.Errorf("building switchboard: %w", err)
		}
	}
	wg.Wait()
	if err := errors.Join(buildErr, stdioErr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// password is every test user's password.
const password = "correct horse battery staple"

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeConfig writes a config file with the data directory dataDir and the
// given extra YAML, and returns its path.
func writeConfig(t *testing.T, dataDir, extra string) string {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "switchboard.yaml")
	y := fmt.Sprintf("server:\n  dataDir: %q\n%s", dataDir, extra)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sb runs a one-shot switchboard command and returns its standard output.
func sb(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, switchboardBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("switchboard %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// addUser creates a local account with the test password.
func addUser(t *testing.T, cfg, name, role string) {
	t.Helper()
	out := sb(t, password+"\n", "users", "add", name, "--role", role, "--password-stdin", "--config", cfg)
	if !strings.Contains(out, "created "+role+" user "+name) {
		t.Fatalf("users add: %q", out)
	}
}

// apiKey creates a personal API key for a user.
func apiKey(t *testing.T, cfg, user string) string {
	t.Helper()
	key := strings.TrimSpace(sb(t, "", "tokens", "create", user, "--config", cfg))
	if key == "" || strings.ContainsAny(key, " \n") {
		t.Fatalf("tokens create printed %q", key)
	}
	return key
}

// logBuffer collects a process's output for failure messages.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// instance is a running `switchboard serve`.
type instance struct {
	t    *testing.T
	name string
	base string // http://ADDR, where it listens
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// serve starts `switchboard serve` with cfg on addr (and flags) and waits
// until it answers /healthz. The process is stopped when the test ends.
func serve(t *testing.T, name, cfg, addr string, flags ...string) *instance {
	t.Helper()
	in := &instance{t: t, name: name, base: "http://" + addr, log: &logBuffer{}, done: make(chan struct{})}
	in.cmd = exec.Command(switchboardBin, append([]string{"serve", "--config", cfg, "--listen", addr}, flags...)...)
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
		resp, err := hc.Get(in.base + "/healthz")
		if err == nil {
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

// stop ends the process the way an operator does (SIGTERM), and kills it if
// it has not exited after 15 seconds.
func (in *instance) stop() {
	select {
	case <-in.done:
		return
	default:
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		<-in.done
		in.t.Errorf("%s did not stop on SIGTERM within 15s", in.name)
	}
}

// mcpResponse is what an MCP POST answered.
type mcpResponse struct {
	status    int
	sessionID string
	body      string
	result    map[string]any // the JSON-RPC result, from a JSON or SSE body
	wwwAuth   string
}

// mcpPost sends one JSON-RPC message to an MCP endpoint.
func mcpPost(t *testing.T, url, token, sessionID, msg string) mcpResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := mcpResponse{status: resp.StatusCode, sessionID: resp.Header.Get("Mcp-Session-Id"), body: string(b), wwwAuth: resp.Header.Get("WWW-Authenticate")}
	payload := b
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		payload = nil
		for line := range strings.SplitSeq(string(b), "\n") {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				payload = []byte(strings.TrimSpace(d))
			}
		}
	}
	var env struct {
		Result map[string]any `json:"result"`
	}
	if json.Unmarshal(payload, &env) == nil {
		r.result = env.Result
	}
	return r
}

const (
	initializeMsg  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"switchboard-e2e","version":"1"}}}`
	initializedMsg = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	toolsListMsg   = `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
)

// openSession initializes an MCP session at url with token and returns its id.
func openSession(t *testing.T, url, token string) string {
	t.Helper()
	r := mcpPost(t, url, token, "", initializeMsg)
	if r.status != http.StatusOK || r.sessionID == "" || r.result == nil {
		t.Fatalf("initialize at %s: %d session=%q %s", url, r.status, r.sessionID, r.body)
	}
	if r := mcpPost(t, url, token, r.sessionID, initializedMsg); r.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", r.status, r.body)
	}
	return r.sessionID
}

// toolNames lists the tools of a session, failing the test unless it answers 200.
func toolNames(t *testing.T, url, token, sessionID string) []string {
	t.Helper()
	r := mcpPost(t, url, token, sessionID, toolsListMsg)
	if r.status != http.StatusOK {
		t.Fatalf("tools/list: %d %s", r.status, r.body)
	}
	tools, _ := r.result["tools"].([]any)
	var names []string
	for _, tl := range tools {
		if m, ok := tl.(map[string]any); ok {
			names = append(names, fmt.Sprint(m["name"]))
		}
	}
	return names
}

// tokenWorks reports whether an MCP endpoint accepts the token, by opening
// a session with it: 200, or 401 for a refused token. Anything else fails.
func tokenWorks(t *testing.T, url, token string) bool {
	t.Helper()
	r := mcpPost(t, url, token, "", initializeMsg)
	switch r.status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		if !strings.HasPrefix(r.wwwAuth, "Bearer ") || !strings.Contains(r.wwwAuth, "resource_metadata=") {
			t.Errorf("401 without an RFC 9728 challenge: WWW-Authenticate %q", r.wwwAuth)
		}
		return false
	}
	t.Fatalf("initialize at %s: unexpected %d %s", url, r.status, r.body)
	return false
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(wd, "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", wd, err)
	}
	return root
}
