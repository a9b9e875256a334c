package gateway_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/cluster"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// replica is one gateway of a cluster, with a hub of its own.
type replica struct {
	url string
	gw  *gateway.Gateway
}

// newReplica starts a gateway over the beta upstream at upstreamURL, sharing
// dir and key with the other replicas.
func newReplica(t *testing.T, upstreamURL string, dir cluster.Directory, key []byte) *replica {
	t.Helper()
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := &config.Config{Servers: []*config.Server{
		{Name: "beta", Type: config.StreamableHTTP, URL: upstreamURL, Startup: true, ChatMenu: true},
	}}
	var gw *gateway.Gateway
	h := hub.New(cfg, &hub.Options{})
	fwd := &http.Transport{}
	gw = gateway.New(h, &gateway.Options{
		Verify:     testVerify,
		Sessions:   dir,
		ReplicaURL: srv.URL,
		SignForward: func(b []byte) []byte {
			m := hmac.New(sha256.New, key)
			m.Write(b)
			return m.Sum(nil)
		},
		ForwardTransport: fwd,
	})
	t.Cleanup(func() {
		h.Close()
		gw.Close()
		fwd.CloseIdleConnections()
	})
	h.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	gw.Sync()
	hh := gw.AcceptForwarded(gw.Handler())
	handler.Store(&hh)
	return &replica{url: srv.URL, gw: gw}
}

// splitter sends the first request (initialize) to first and every later
// one to rest, as a load balancer without sticky sessions may; it signs in
// as user.
type splitter struct {
	first, rest string
	user        string
	base        http.RoundTripper

	mu    sync.Mutex // guards n, hosts
	n     int
	hosts []string
}

func (s *splitter) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	target := s.rest
	if s.n == 0 {
		target = s.first
	}
	s.n++
	u, _ := url.Parse(target)
	s.hosts = append(s.hosts, r.Method+" "+u.Host)
	s.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Host, r.Host = u.Host, ""
	r.Header.Set("Authorization", "Bearer "+s.user)
	return s.base.RoundTrip(r)
}

// A session opened at replica A is used, server-to-client requests and
// notifications included, and closed entirely through replica B.
func TestSessionAcrossReplicas(t *testing.T) {
	beta := newUpstream("beta", func(string) {})
	betaHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return beta }, nil))
	t.Cleanup(betaHTTP.Close)
	dir := cluster.NewMemory(nil)
	key := []byte("a key both replicas share")
	a := newReplica(t, betaHTTP.URL, dir, key)
	b := newReplica(t, betaHTTP.URL, dir, key)

	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	split := &splitter{first: a.url, rest: b.url, user: "alice", base: base}
	var events sync.Map
	client := mcp.NewClient(&mcp.Implementation{Name: "alice", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			events.Store("elicit: "+req.Params.Message, true)
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			events.Store("progress: "+req.Params.Message, true)
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   a.url + "/mcp",
		HTTPClient: &http.Client{Transport: split},
	}, &mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatal(err)
	}
	sid := cs.ID()
	if o, err := dir.Lookup(ctx, sid); err != nil || o != (cluster.Owner{Replica: a.url, User: "alice"}) {
		t.Fatalf("directory entry = %+v, %v; want A and alice", o, err)
	}

	call := func(tool string, progress bool) string {
		t.Helper()
		p := &mcp.CallToolParams{Name: "beta__" + tool, Arguments: map[string]any{"tag": "alice"}}
		if progress {
			p.SetProgressToken("tok")
		}
		res, err := cs.CallTool(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if res.IsError {
			t.Fatalf("%s: tool error %+v", tool, res.Content)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	if got := call("ask", false); got != "accept: yes" {
		t.Errorf("ask = %q", got)
	}
	if got := call("progress", true); got != "done" {
		t.Errorf("progress = %q", got)
	}
	// Notifications are handled apart from the call's result: wait.
	var got []string
	for deadline := time.Now().Add(waitFor); ; time.Sleep(5 * time.Millisecond) {
		got = nil
		events.Range(func(k, _ any) bool { got = append(got, k.(string)); return true })
		if len(got) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	want := []string{
		"elicit: gwtest-beta asks alice",
		"progress: gwtest-beta progress 1 for alice",
		"progress: gwtest-beta progress 2 for alice",
		"progress: gwtest-beta progress 3 for alice",
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(x, y string) bool { return x < y })); diff != "" {
		t.Errorf("server-to-client messages (-want +got):\n%s", diff)
	}

	t.Run("another user at B", func(t *testing.T) {
		for _, base := range []string{b.url, a.url} {
			st := rawPost(t, base+"/mcp", "bob", sid, nil)
			if st != http.StatusNotFound {
				t.Errorf("bob with alice's session at %s: %d, want 404", base, st)
			}
		}
	})
	t.Run("forged forwarding header at A", func(t *testing.T) {
		st := rawPost(t, a.url+"/mcp", "", sid, map[string]string{
			"X-Switchboard-Forwarded":      "1",
			"X-Switchboard-Forwarded-User": "eyJ1IjoiYWxpY2UifQ.AAAA",
		})
		if st != http.StatusForbidden {
			t.Errorf("forged forwarding: %d, want 403", st)
		}
	})

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.Lookup(ctx, sid); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("after DELETE through B the directory still has the session: %v", err)
	}
	split.mu.Lock()
	hosts := split.hosts
	split.mu.Unlock()
	bHost := strings.TrimPrefix(b.url, "http://")
	for i, h := range hosts[1:] {
		if !strings.HasSuffix(h, " "+bHost) {
			t.Errorf("request %d went to %s, want B", i+1, h)
		}
	}
	if !strings.HasPrefix(hosts[len(hosts)-1], "DELETE ") {
		t.Errorf("last request %q, want the DELETE", hosts[len(hosts)-1])
	}
	// The session is gone at A too.
	if st := rawPost(t, a.url+"/mcp", "alice", sid, nil); st != http.StatusNotFound {
		t.Errorf("closed session at A: %d, want 404", st)
	}
}

// rawPost sends tools/list in session sid as user and returns the status.
func rawPost(t *testing.T, u, user, sid string, headers map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", legacyProtocol)
	req.Header.Set("Mcp-Session-Id", sid)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The legacy SSE transport: the stream is opened at A, and the messages
// posted to B reach the session at A.
func TestSSESessionAcrossReplicas(t *testing.T) {
	beta := newUpstream("beta", func(string) {})
	betaHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return beta }, nil))
	t.Cleanup(betaHTTP.Close)
	dir := cluster.NewMemory(nil)
	key := []byte("a key both replicas share")
	a := newReplica(t, betaHTTP.URL, dir, key)
	b := newReplica(t, betaHTTP.URL, dir, key)

	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	split := &splitter{first: a.url, rest: b.url, user: "alice", base: base}
	client := mcp.NewClient(&mcp.Implementation{Name: "alice", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "over sse"}}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.SSEClientTransport{
		Endpoint:   a.url + "/sse",
		HTTPClient: &http.Client{Transport: split},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "beta__ask", Arguments: map[string]any{"tag": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "accept: over sse" {
		t.Errorf("ask = %q", got)
	}
	split.mu.Lock()
	hosts := split.hosts
	split.mu.Unlock()
	if want := "GET " + strings.TrimPrefix(a.url, "http://"); hosts[0] != want {
		t.Errorf("first request %q, want %q", hosts[0], want)
	}
	for _, h := range hosts[1:] {
		if !strings.HasSuffix(h, strings.TrimPrefix(b.url, "http://")) {
			t.Errorf("request %q, want it at B", h)
		}
	}
	cs.Close()
}

// A session whose replica is gone (nothing listens at its address) is
// answered 404, so that the client starts a new session, and its directory
// entry is dropped.
func TestSessionOfGoneReplica(t *testing.T) {
	beta := newUpstream("beta", func(string) {})
	betaHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return beta }, nil))
	t.Cleanup(betaHTTP.Close)
	dir := cluster.NewMemory(nil)
	b := newReplica(t, betaHTTP.URL, dir, []byte("k"))

	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dir.Claim(ctx, "sess-1", cluster.Owner{Replica: goneURL, User: "alice"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", b.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", "sess-1")
	req.Header.Set("Mcp-Protocol-Version", legacyProtocol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d; want 404", resp.StatusCode)
	}
	if _, err := dir.Lookup(ctx, "sess-1"); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("directory entry still there: %v", err)
	}
}
