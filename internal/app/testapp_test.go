package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// testApp is Switchboard as serve wires it, with sign-in, over a data
// directory of its own, served by an httptest server.
type testApp struct {
	*App
	srv *httptest.Server
}

// startApp loads a config made of a server section (dataDir added) and
// the rest, and serves the app until the test ends.
func startApp(t *testing.T, serverSection, rest string) *testApp {
	t.Helper()
	cfg := writeConfig(t, serverSection, rest)
	// The listener comes first: its address is the issuer when the config
	// has no publicURL.
	srv := httptest.NewUnstartedServer(nil)
	a, err := New(t.Context(), cfg, &Options{Serve: true, Addr: srv.Listener.Addr().String()})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = a.Handler()
	srv.Start()
	ta := &testApp{App: a, srv: srv}
	t.Cleanup(func() {
		ta.srv.Close()
		a.Close()
	})
	a.Start(t.Context(), 5*time.Second)
	return ta
}

// writeConfig loads a config made of a server section (dataDir added)
// and the rest.
func writeConfig(t *testing.T, serverSection, rest string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "switchboard.yaml")
	y := fmt.Sprintf("server:\n  dataDir: %q\n%s%s", filepath.Join(dir, "data"), serverSection, rest)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// addUser creates a local user and returns it with a personal API key.
func (ta *testApp) addUser(t *testing.T, username string, role store.Role) (*store.User, string) {
	t.Helper()
	u, err := ta.as.CreateUser(t.Context(), username, "correct horse battery staple", role)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := ta.as.CreateAPIKey(t.Context(), u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	return u, key
}

// do sends a request with key as bearer token and returns the status and
// the body.
func (ta *testApp) do(t *testing.T, method, path, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ta.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
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
