package hubtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/switchboard-mcp/switchboard/internal/hub/hubtest"
)

var stdioBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hubtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if stdioBin, err = hubtest.BuildStdioServer(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return code
}

func connect(t *testing.T, tr mcp.Transport, protocol string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "hubtest-test", Version: "1"}, nil).Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func whoami(t *testing.T, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: hubtest.ToolWhoami})
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("whoami: %+v", res)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func TestStdioServer(t *testing.T) {
	dir := t.TempDir()
	down := filepath.Join(t.TempDir(), "down")
	opts := hubtest.StdioOptions{
		ServerOptions: hubtest.ServerOptions{Name: "s1", Instructions: "use whoami"},
		Value:         "value-1", PIDDir: dir, DownFile: down,
	}
	cmd := exec.Command(stdioBin, opts.Args()...)
	cs := connect(t, &mcp.CommandTransport{Command: cmd}, "2025-11-25")
	if got := whoami(t, cs); got != "value-1" {
		t.Errorf("whoami = %q", got)
	}
	if d := cmp.Diff(hubtest.ToolNames(true), toolNames(t, cs)); d != "" {
		t.Errorf("tools (-want +got):\n%s", d)
	}
	if got := cs.InitializeResult().Instructions; got != "use whoami" {
		t.Errorf("instructions %q", got)
	}
	kids, err := hubtest.Children(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 1 || kids[0].PID != cmd.Process.Pid || kids[0].PPID != os.Getpid() || kids[0].Value != "value-1" || kids[0].Name != "s1" {
		t.Fatalf("children %+v, want the one process %d started by %d", kids, cmd.Process.Pid, os.Getpid())
	}

	if err := kids[0].Kill(); err != nil {
		t.Fatal(err)
	}
	// Killed, and not yet reaped (a zombie) or reaped: not alive either way.
	for deadline := time.Now().Add(10 * time.Second); kids[0].Alive(); {
		if time.Now().After(deadline) {
			t.Fatal("the killed child is still alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if kids, _ := hubtest.Children(dir); len(kids) != 0 {
		t.Errorf("children after the kill: %+v", kids)
	}

	// Down: a new process exits at once and says why.
	if err := os.WriteFile(down, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	downCmd := exec.Command(stdioBin, opts.Args()...)
	downCmd.Stderr = &stderr
	out, err := downCmd.Output()
	if err == nil || len(out) != 0 || !strings.Contains(stderr.String(), "hubtest-s1 is down") {
		t.Errorf("down server: %v, stdout %q, stderr %q", err, out, stderr.String())
	}
}

// post sends one JSON-RPC message with a session id and returns the status.
func post(t *testing.T, endpoint, sid, msg string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(msg))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := noReuse.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

const listMsg = `{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}`

func TestHTTPServerRestart(t *testing.T) {
	for _, noGET := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoGETStream=%v", noGET), func(t *testing.T) {
			s := hubtest.NewHTTPServer(t, &hubtest.HTTPOptions{
				ServerOptions: hubtest.ServerOptions{Name: "h", Instructions: "hi", ProtocolVersions: hubtest.LegacyProtocolVersions()},
				ValueHeader:   "X-Value", NoGETStream: noGET,
			})
			start := time.Now()
			hc := &http.Client{Transport: headerTransport{"X-Value", "v-1"}}
			// A client that would speak 2026-07-28 falls back to a session.
			cs := connect(t, &mcp.StreamableClientTransport{Endpoint: s.URL, HTTPClient: hc}, "")
			if got := whoami(t, cs); got != "v-1" {
				t.Errorf("whoami = %q", got)
			}
			sid := cs.ID()
			if sid == "" {
				t.Fatal("no session id: the legacy-only server should keep sessions")
			}
			if st := post(t, s.URL, sid, listMsg); st != http.StatusOK {
				t.Fatalf("tools/list in the session: %d", st)
			}
			// post sends no X-Value: its request counts for the value "".
			if d := cmp.Diff(map[string][]string{"v-1": {sid}, "": {sid}}, s.SessionsUsed(start)); d != "" {
				t.Errorf("sessions used (-want +got):\n%s", d)
			}
			if used := s.SessionsUsed(time.Now()); len(used) != 0 {
				t.Errorf("sessions used from now: %v", used)
			}
			// The client opens its GET stream in the background after
			// initialize.
			served, refused := s.GETStreams()
			for deadline := time.Now().Add(10 * time.Second); served+refused == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
				served, refused = s.GETStreams()
			}
			if noGET && (served != 0 || refused == 0) || !noGET && served == 0 {
				t.Errorf("GET streams served %d, refused %d", served, refused)
			}
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if st := post(t, s.URL, sid, listMsg); st != http.StatusNotFound {
				t.Errorf("the old session id after a restart: %d, want 404", st)
			}
			if s.Lives() != 2 {
				t.Errorf("lives %d", s.Lives())
			}
			cs2 := connect(t, &mcp.StreamableClientTransport{Endpoint: s.URL, HTTPClient: hc}, "2025-11-25")
			if got := whoami(t, cs2); got != "v-1" {
				t.Errorf("whoami after the restart = %q", got)
			}
			s.Stop()
			if _, err := http.Post(s.URL, "application/json", strings.NewReader(listMsg)); err == nil {
				t.Error("a stopped server answered")
			}
			cs.Close()
			cs2.Close()
		})
	}
}

type headerTransport struct{ name, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return noReuse.RoundTrip(r)
}

// noReuse opens a connection per request: a restart closes the pooled
// connections of the server's previous life, and a request sent on one in
// the moment before the client notices fails (as it would for any client).
var noReuse = &http.Transport{DisableKeepAlives: true}

func TestOAuthServer(t *testing.T) {
	for _, preregistered := range []bool{false, true} {
		t.Run(fmt.Sprintf("preregistered=%v", preregistered), func(t *testing.T) {
			opts := &hubtest.OAuthOptions{ServerOptions: hubtest.ServerOptions{Name: "o"}}
			if preregistered {
				opts.ClientID, opts.ClientSecret = "cid", "secret"
			}
			u := hubtest.NewOAuthServer(t, opts)
			var md struct {
				Resource string   `json:"resource"`
				AS       []string `json:"authorization_servers"`
			}
			getJSON(t, u.Base()+"/.well-known/oauth-protected-resource/mcp", &md)
			if md.Resource != u.URL || len(md.AS) != 1 || md.AS[0] != u.Issuer {
				t.Fatalf("protected resource metadata %+v", md)
			}
			var asmd map[string]any
			getJSON(t, u.Issuer+"/.well-known/oauth-authorization-server", &asmd)
			_, hasReg := asmd["registration_endpoint"]
			if hasReg == preregistered {
				t.Errorf("registration endpoint offered: %v", hasReg)
			}
			const redirect = "http://127.0.0.1:1/callback"
			client := "cid"
			if !preregistered {
				resp, err := http.Post(u.Issuer+"/register", "application/json", strings.NewReader(`{"redirect_uris":["`+redirect+`"]}`))
				if err != nil {
					t.Fatal(err)
				}
				var reg map[string]any
				json.NewDecoder(resp.Body).Decode(&reg)
				resp.Body.Close()
				client, _ = reg["client_id"].(string)
				if resp.StatusCode != http.StatusCreated || client == "" {
					t.Fatalf("register: %d %v", resp.StatusCode, reg)
				}
			}
			verifier := "a-verifier-of-enough-length-0123456789-abcdefghijkl"
			sum := sha256.Sum256([]byte(verifier))
			q := url.Values{
				"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "state": {"st"},
				"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
				"login_hint": {"alice"},
			}
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Get(u.Issuer + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("state") != "st" || loc.Query().Get("iss") != u.Issuer {
				t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			tok := func(form url.Values) (int, map[string]any) {
				req, _ := http.NewRequest(http.MethodPost, u.Issuer+"/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if preregistered {
					req.SetBasicAuth("cid", "secret")
				} else {
					form.Set("client_id", client)
					req.Body = io.NopCloser(strings.NewReader(form.Encode()))
					req.ContentLength = int64(len(form.Encode()))
				}
				resp, err := noReuse.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out map[string]any
				json.NewDecoder(resp.Body).Decode(&out)
				return resp.StatusCode, out
			}
			code := loc.Query().Get("code")
			if st, _ := tok(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {"wrong"}}); st != http.StatusBadRequest {
				t.Errorf("wrong PKCE verifier: %d", st)
			}
			// The code was spent by the failed attempt; a new one.
			resp, _ = noFollow.Get(u.Issuer + "/authorize?" + q.Encode())
			resp.Body.Close()
			loc, _ = url.Parse(resp.Header.Get("Location"))
			st, tr := tok(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
			access, _ := tr["access_token"].(string)
			rt, _ := tr["refresh_token"].(string)
			if st != http.StatusOK || access == "" || rt == "" {
				t.Fatalf("token: %d %v", st, tr)
			}

			// Without a token: 401 with the RFC 9728 challenge.
			resp, err = http.Post(u.URL, "application/json", strings.NewReader(listMsg))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
				t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
			hc := &http.Client{Transport: headerTransport{"Authorization", "Bearer " + access}}
			cs := connect(t, &mcp.StreamableClientTransport{Endpoint: u.URL, HTTPClient: hc}, "2025-11-25")
			if got := whoami(t, cs); got != "alice" {
				t.Errorf("whoami = %q, want the user of login_hint", got)
			}
			cs.Close()
			// Grants survive a restart of the server.
			if err := u.Restart(); err != nil {
				t.Fatal(err)
			}
			cs = connect(t, &mcp.StreamableClientTransport{Endpoint: u.URL, HTTPClient: hc}, "2025-11-25")
			if got := whoami(t, cs); got != "alice" {
				t.Errorf("whoami after a restart = %q", got)
			}
			cs.Close()

			if st, tr := tok(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != http.StatusOK || tr["refresh_token"] == rt {
				t.Errorf("refresh: %d %v", st, tr)
			}
			if st, _ := tok(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); st != http.StatusBadRequest {
				t.Errorf("a refresh token used twice: %d", st)
			}
			if ok, reused := u.Refreshes(); ok != 1 || reused != 1 {
				t.Errorf("refreshes %d, reused %d; want 1 and 1", ok, reused)
			}
			if seen := u.Seen(); len(seen) == 0 || slices.ContainsFunc(seen, func(s string) bool { return s != "alice" }) {
				t.Errorf("seen %v", seen)
			}
		})
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
