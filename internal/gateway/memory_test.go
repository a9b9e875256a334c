package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// 1,000 users each open and close a session at /mcp, through the real
// HTTP handler, with a server that connects per user (so that each gets
// views of their own): once their sessions are closed, the heap returns to
// within 10% of what it was before.
func TestMemoryAfterManyUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 sessions")
	}
	up := newUpstream("shared", func(string) {})
	uh := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return up }, nil))
	t.Cleanup(func() {
		uh.Close()
		for ss := range up.Sessions() {
			ss.Close()
		}
	})
	keys, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sb.db"), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := &config.Config{Servers: []*config.Server{
		{Name: "shared", Type: config.StreamableHTTP, URL: uh.URL, Startup: true},
		// Per user; nobody has entered TOKEN, so it never connects.
		{Name: "mine", Type: config.StreamableHTTP, URL: uh.URL, Startup: true,
			Headers: map[string]string{"X-Token": "{{TOKEN}}"}, CustomUserVars: map[string]config.CustomUserVar{"TOKEN": {}}},
	}}
	h := hub.New(cfg, &hub.Options{Store: st})
	gw := gateway.New(h, &gateway.Options{Verify: testVerify})
	t.Cleanup(func() {
		h.Close()
		gw.Close()
	})
	h.Start()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	h.WaitConnected(ctx)
	gw.Sync()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)

	session := func(user string) {
		client := mcp.NewClient(&mcp.Implementation{Name: "memory-test", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: &asUser{user, tr}}},
			&mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		if _, err := cs.ListTools(ctx, nil); err != nil {
			t.Fatal(err)
		}
		cs.Close()
	}
	if os.Getenv("SWITCHBOARD_MEMPROFILE") != "" {
		runtime.MemProfileRate = 512
	}
	session("warm-up") // the one-time allocations of a first user
	base := heapAfterGC()
	const users = 1000
	for i := range users {
		session(fmt.Sprintf("user-%d", i))
	}
	after := heapAfterGC()
	if f := os.Getenv("SWITCHBOARD_MEMPROFILE"); f != "" {
		w, _ := os.Create(f)
		pprof.WriteHeapProfile(w)
		w.Close()
	}
	t.Logf("heap before: %d KiB; after %d users opened and closed a session: %d KiB (%+.1f%%)",
		base/1024, users, after/1024, 100*(float64(after)-float64(base))/float64(base))
	if float64(after) > 1.10*float64(base) {
		t.Errorf("heap grew from %d KiB to %d KiB after %d users' sessions closed, more than 10%%", base/1024, after/1024, users)
	}
}
