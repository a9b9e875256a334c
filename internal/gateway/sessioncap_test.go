package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// capEnv is a gateway over the beta upstream (streamable HTTP) that allows
// max sessions per user; "Authorization: Bearer NAME" signs in NAME.
type capEnv struct {
	url  string
	beta *noteLog
}

func newCapEnv(t testing.TB, max int) *capEnv {
	t.Helper()
	notes := &noteLog{}
	beta := newUpstream("beta", notes.add)
	betaHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return beta }, nil))
	t.Cleanup(betaHTTP.Close)
	cfg := &config.Config{Servers: []*config.Server{
		{Name: "beta", Type: config.StreamableHTTP, URL: betaHTTP.URL, Startup: true, ChatMenu: true},
	}}
	h := hub.New(cfg, nil)
	gw := gateway.New(h, &gateway.Options{
		Verify:             testVerify,
		MaxSessionsPerUser: max,
	})
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		h.Close()
		gw.Close()
	})
	h.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	gw.Sync()
	return &capEnv{url: srv.URL, beta: notes}
}

// capClient is one downstream session, and the URL its messages are posted
// to (the endpoint, or for SSE the one the stream named).
type capClient struct {
	cs *mcp.ClientSession

	mu   sync.Mutex // guards post
	post string
}

// postURL returns where the session's messages go.
func (c *capClient) postURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.post
}

type recordPosts struct {
	c    *capClient
	user string
	base http.RoundTripper
}

func (r *recordPosts) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		r.c.mu.Lock()
		r.c.post = req.URL.String()
		r.c.mu.Unlock()
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+r.user)
	return r.base.RoundTrip(req)
}

func (e *capEnv) connect(t *testing.T, sse bool, user string) *capClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &capClient{}
	hc := &http.Client{Transport: &recordPosts{c: c, user: user, base: tr}}
	var transport mcp.Transport = &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp", HTTPClient: hc}
	if sse {
		transport = &mcp.SSEClientTransport{Endpoint: e.url + "/sse", HTTPClient: hc}
	}
	// The SSE transport's stream lives as long as the context of Connect.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: user, Version: "1"}, nil).Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cs.Close() })
	c.cs = cs
	return c
}

// exists posts tools/list in c's session as user and reports whether the
// session exists (anything but 404).
func (c *capClient) exists(t *testing.T, user string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.postURL(), strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", legacyProtocol)
	if id := c.cs.ID(); id != "" {
		req.Header.Set("Mcp-Session-Id", id)
	}
	req.Header.Set("Authorization", "Bearer "+user)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

// A user at the limit who opens one more session loses their longest-idle
// one; other users keep theirs.
func TestSessionCapClosesLongestIdle(t *testing.T) {
	for _, tt := range []struct {
		name string
		sse  bool
	}{{"streamable", false}, {"sse", true}} {
		t.Run(tt.name, func(t *testing.T) {
			const max = 3
			e := newCapEnv(t, max)
			carol := e.connect(t, tt.sse, "carol")
			var alice []*capClient
			for range max {
				alice = append(alice, e.connect(t, tt.sse, "alice"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			// alice[0] is used last, so alice[1] is now the longest idle.
			for _, i := range []int{1, 2, 0} {
				if _, err := alice[i].cs.ListTools(ctx, nil); err != nil {
					t.Fatalf("alice[%d] list: %v", i, err)
				}
			}
			alice = append(alice, e.connect(t, tt.sse, "alice"))
			for i, c := range alice {
				if got, want := c.exists(t, "alice"), i != 1; got != want {
					t.Errorf("alice's session %d exists = %v, want %v", i, got, want)
				}
			}
			if !carol.exists(t, "carol") {
				t.Error("carol's session was closed by alice's")
			}
			if _, err := carol.cs.ListTools(ctx, nil); err != nil {
				t.Errorf("carol list: %v", err)
			}
		})
	}
}

// A user whose sessions all have a tool call in flight cannot open another:
// 429 with Retry-After and a JSON-RPC error. Other users can, and once a
// call ends the user can too.
func TestSessionCapAllBusy(t *testing.T) {
	const max = 3
	e := newCapEnv(t, max)
	var bob []*capClient
	for range max {
		bob = append(bob, e.connect(t, false, "bob"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	callCtx, stopCalls := context.WithCancel(ctx)
	defer stopCalls()
	var wg sync.WaitGroup
	for i, c := range bob {
		tag := "bob" + string(rune('0'+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.cs.CallTool(callCtx, &mcp.CallToolParams{Name: "beta__slow", Arguments: map[string]any{"tag": tag}})
		}()
		waitUntil(t, "slow started "+tag, func() bool { return e.beta.has("slow started " + tag) })
	}

	status, header, body := rawInitialize(t, e.url+"/mcp", "bob")
	if status != http.StatusTooManyRequests {
		t.Fatalf("initialize with all sessions busy: %d %s, want 429", status, body)
	}
	if header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	var msg struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.JSONRPC != "2.0" || !strings.Contains(msg.Error.Message, "too many MCP sessions") {
		t.Errorf("429 body %s is not a JSON-RPC error naming the limit (%v)", body, err)
	}
	for i, c := range bob {
		if !c.exists(t, "bob") {
			t.Errorf("bob's busy session %d was closed", i)
		}
	}
	if status, _, body := rawInitialize(t, e.url+"/mcp", "carol"); status != http.StatusOK {
		t.Errorf("carol's initialize: %d %s, want 200", status, body)
	}

	stopCalls()
	wg.Wait()
	// The gateway notes the end of a call just after the client has its
	// answer.
	waitUntil(t, "bob's initialize admitted after his calls ended", func() bool {
		status, _, _ := rawInitialize(t, e.url+"/mcp", "bob")
		return status == http.StatusOK
	})
}

// rawInitialize opens a streamable-HTTP session as user and returns the
// response; the session is ended when the test ends.
func rawInitialize(t testing.TB, u, user string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+legacyProtocol+`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+user)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, u, nil)
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Authorization", "Bearer "+user)
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	return resp.StatusCode, resp.Header, string(b)
}

// BenchmarkSessionsOfOneUser opens 4,000 sessions as one user, without a
// limit and with the default one, and reports the heap in use and the
// resident memory they add (run with -benchtime=1x).
func BenchmarkSessionsOfOneUser(b *testing.B) {
	for _, bb := range []struct {
		name string
		max  int
	}{{"uncapped", -1}, {"cap64", 0}} {
		b.Run(bb.name, func(b *testing.B) {
			for range b.N {
				e := newCapEnv(b, bb.max)
				heap0, rss0 := memNow(b)
				for i := range 4000 {
					if st, _, body := rawInitialize(b, e.url+"/mcp", "mallory"); st != http.StatusOK {
						b.Fatalf("session %d: %d %s", i, st, body)
					}
				}
				heap1, rss1 := memNow(b)
				b.ReportMetric(float64(heap1-heap0)/(1<<20), "heap-MiB")
				b.ReportMetric(float64(rss1-rss0)/(1<<20), "rss-MiB")
			}
		})
	}
}

// memNow returns the heap in use after a collection and the process's
// resident set size, in bytes.
func memNow(b testing.TB) (heap, rss int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return int64(ms.HeapInuse), rss
}
