package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

// rawRequest sends one request the way a browser page (or a rebound name)
// would, and returns the status and body.
func rawRequest(t *testing.T, method, url, host, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Issue 10, finding 2: with --insecure-no-auth, the HTTP API and the agent
// host refuse what /mcp refuses: a cross-site text/plain POST to /api/chat
// (which ran a tool through the agent), a read of /api/servers through a
// rebound name (Host: evil.example), and a cross-site POST that
// reinitializes a server. The same requests from a local client still
// work.
func TestNoAuthRefusesBrowserAttacks(t *testing.T) {
	model := llmtest.NewOpenAI(
		llmtest.Turn{ToolCalls: []llmtest.Call{{ID: "c1", Name: "switchboard__get_current_time", Args: []string{`{"timezone":"UTC"}`}}}},
		llmtest.Turn{Text: []string{"It is noon."}},
	)
	t.Cleanup(model.Close)
	addr := freeAddr(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf(`llm:
  default: fake/m
  providers:
    fake:
      type: openai
      baseURL: %q
      apiKey: k
      models: [m]
`, model.URL))
	sb := serve(t, "switchboard", cfg, addr, "--insecure-no-auth")
	crossSite := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
	chat := `{"message":"what time is it?"}`

	for _, tc := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		want                           int
	}{
		{"cross-site text/plain chat", "POST", "/api/chat", "", chat, crossSite, http.StatusForbidden},
		{"text/plain chat without Origin", "POST", "/api/chat", "", chat, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"rebound name reads servers", "GET", "/api/servers", "evil.example:" + strings.Split(addr, ":")[1], "", nil, http.StatusForbidden},
		{"cross-site reinitialize", "POST", "/api/servers/switchboard/reinitialize", "", "", crossSite, http.StatusForbidden},
		{"cross-site reinitialize, old browser", "POST", "/api/servers/switchboard/reinitialize", "", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"the same on /mcp", "POST", "/mcp", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, crossSite, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := rawRequest(t, tc.method, sb.base+tc.path, tc.host, tc.body, tc.header); st != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, st, body, tc.want)
			}
		})
	}
	if n := len(model.Requests()); n != 0 {
		t.Fatalf("the agent asked the model %d times for refused requests", n)
	}

	// A local client (no Origin, JSON) is served: the refusals above are
	// the policy, not a broken route.
	if st, body := rawRequest(t, "GET", sb.base+"/api/servers", "", "", nil); st != http.StatusOK {
		t.Errorf("GET /api/servers: %d %s", st, body)
	}
	if st, body := rawRequest(t, "POST", sb.base+"/api/servers/switchboard/reinitialize", "", "", map[string]string{"Origin": "http://localhost:6274"}); st != http.StatusOK {
		t.Errorf("reinitialize from a loopback origin: %d %s", st, body)
	}
	st, body := rawRequest(t, "POST", sb.base+"/api/chat", "", chat, map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream"})
	if st != http.StatusOK || !strings.Contains(body, "It is noon.") {
		t.Errorf("chat from a local client: %d %s", st, body)
	}
	if n := len(model.Requests()); n != 2 {
		t.Errorf("the model saw %d requests for the local chat, want 2 (tool call, answer)", n)
	}
}

// Issue 10, finding 4: with small configured timeouts, a slow request
// body to /token and /register is cut within the read timeout, an idle
// keep-alive connection is closed after the idle timeout, and SSE streams
// (legacy /sse, GET /mcp, chat) stay open past all three, the write timeout
// included.
func TestServerTimeouts(t *testing.T) {
	const readTimeout, idleTimeout = time.Second, time.Second
	hold := make(chan struct{})
	model := llmtest.NewOpenAI(llmtest.Turn{Text: []string{"thinking…"}, Hold: hold}, llmtest.Turn{Text: []string{"done"}})
	t.Cleanup(model.Close)
	addr := freeAddr(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf(`  readTimeout: 1s
  idleTimeout: 1s
  writeTimeout: 1s
llm:
  default: fake/m
  providers:
    fake:
      type: openai
      baseURL: %q
      apiKey: k
      models: [m]
`, model.URL))
	addUser(t, cfg, "alice", "user")
	key := apiKey(t, cfg, "alice")
	sb := serve(t, "switchboard", cfg, addr)

	// closedWithin reports whether the server closes conn within d.
	closedWithin := func(conn net.Conn, d time.Duration) bool {
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		return err == nil // EOF from the server, not our deadline
	}
	for _, path := range []string{"/token", "/register"} {
		t.Run("slow body to "+path, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ngrant_type=", path, addr)
			// One byte now and then, never the whole body.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}()
			if !closedWithin(conn, readTimeout+5*time.Second) {
				t.Errorf("a slow body to %s was not cut within the read timeout (%s)", path, readTimeout)
			}
		})
	}
	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		if !closedWithin(conn, idleTimeout+5*time.Second) {
			t.Errorf("an idle keep-alive connection stayed open past the idle timeout (%s)", idleTimeout)
		}
	})
	t.Run("legacy SSE stream", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", sb.base+"/sse", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /sse: %v %v", resp, err)
		}
		defer resp.Body.Close()
		events := bufio.NewReader(resp.Body)
		endpoint := ""
		for endpoint == "" {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the endpoint event: %v", err)
			}
			if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok {
				endpoint = strings.TrimSpace(d)
			}
		}
		time.Sleep(readTimeout + idleTimeout + time.Second)
		msg := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		target, err := resp.Request.URL.Parse(endpoint)
		if err != nil {
			t.Fatalf("endpoint %q: %v", endpoint, err)
		}
		post, _ := http.NewRequestWithContext(t.Context(), "POST", target.String(), strings.NewReader(msg))
		post.Header.Set("Authorization", "Bearer "+key)
		post.Header.Set("Content-Type", "application/json")
		presp, err := http.DefaultClient.Do(post)
		if err != nil {
			t.Fatal(err)
		}
		presp.Body.Close()
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("the SSE stream ended after %s: %v", readTimeout+idleTimeout+time.Second, err)
			}
			if strings.Contains(line, `"protocolVersion"`) {
				return // the answer came on the stream that outlived both timeouts
			}
		}
	})
	t.Run("GET /mcp stream", func(t *testing.T) {
		sid := openSession(t, sb.base+"/mcp", key)
		req, _ := http.NewRequestWithContext(t.Context(), "GET", sb.base+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /mcp: %v %v", resp, err)
		}
		ended := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			ended <- err
		}()
		select {
		case err := <-ended:
			t.Errorf("the GET /mcp stream ended before the test closed it: %v", err)
		case <-time.After(readTimeout + idleTimeout + time.Second):
		}
		resp.Body.Close()
	})
	t.Run("chat stream", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", sb.base+"/api/chat", strings.NewReader(`{"message":"hi"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/chat: %v %v", resp, err)
		}
		defer resp.Body.Close()
		time.AfterFunc(readTimeout+idleTimeout+time.Second, func() { close(hold) })
		b, err := io.ReadAll(resp.Body)
		if err != nil || !strings.Contains(string(b), "thinking…") || !strings.Contains(string(b), "run.finished") {
			t.Errorf("chat stream across the timeouts: %v\n%s", err, b)
		}
	})
}
