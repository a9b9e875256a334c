package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// binDir holds the switchboard binary that switchboardBinary builds.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "switchboard-bench-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(binDir)
		os.Exit(code)
	}))
}

var build struct {
	once sync.Once
	path string
	err  error
}

// switchboardBinary builds the switchboard command once, for the tests that
// run it; the benchmarks do not need it.
func switchboardBinary(t *testing.T) string {
	build.once.Do(func() {
		build.path = filepath.Join(binDir, "switchboard")
		if runtime.GOOS == "windows" {
			build.path += ".exe"
		}
		out, err := exec.Command("go", "build", "-o", build.path, "github.com/switchboard-mcp/switchboard/cmd/switchboard").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("build switchboard: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// TestRun runs the whole benchmark with tiny numbers and checks that every
// figure was filled in; it asserts no timing.
func TestRun(t *testing.T) {
	binary := switchboardBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, &Options{Calls: 20, Sessions: 2, IdleSessions: 10, Warmup: 5, Binary: binary})
	if err != nil {
		t.Fatal(err)
	}
	if n := childrenRunning(t, binary); n > 0 {
		t.Errorf("%d switchboard processes still running after Run", n)
	}

	var transports []string
	for _, p := range rep.Upstreams {
		transports = append(transports, p.Transport)
		for _, l := range []Latency{p.Sequential.Direct, p.Sequential.Gateway} {
			if l.Calls != 20 || l.P50Micros <= 0 || l.P99Micros < l.P50Micros || l.CallsPerSec <= 0 {
				t.Errorf("%s: sequential latency not filled in: %+v", p.Transport, l)
			}
		}
		if p.Sequential.P50Ratio <= 0 || p.Sequential.ThroughputRatio <= 0 {
			t.Errorf("%s: sequential ratios not filled in: %+v", p.Transport, p.Sequential)
		}
		c := p.Concurrent
		if c.Sessions != 2 || c.CallsPerSession != 20 || c.DirectCallsPerSec <= 0 || c.GatewayCallsPerSec <= 0 || c.Ratio <= 0 {
			t.Errorf("%s: concurrent figures not filled in: %+v", p.Transport, c)
		}
	}
	if diff := cmp.Diff([]string{"stdio", "streamable-http"}, transports); diff != "" {
		t.Errorf("upstream transports (-want +got):\n%s", diff)
	}

	if runtime.GOOS == "linux" {
		m := rep.Memory
		if m == nil || m.IdleRSSKiB <= 0 || m.SessionsRSSKiB <= 0 || m.AfterLoadRSSKiB <= 0 || m.IdleSessions != 10 {
			t.Errorf("memory not filled in: %+v", m)
		}
	}
	if len(rep.Targets) != 6 {
		t.Errorf("got %d targets, want 6: %+v", len(rep.Targets), rep.Targets)
	}
	for _, tg := range rep.Targets {
		if tg.Status != "pass" && tg.Status != "miss" && (runtime.GOOS == "linux" || tg.Status != "n/a") {
			t.Errorf("target %q has status %q", tg.Name, tg.Status)
		}
	}

	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"stdio", "streamable-http", "gateway/direct", "per idle session", "Targets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed report lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rep, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// childrenRunning counts the processes running exe, waiting briefly for
// ones that are exiting.
func childrenRunning(t *testing.T, exe string) int {
	if runtime.GOOS != "linux" {
		return 0
	}
	var n int
	for range 50 {
		n = 0
		dirs, _ := filepath.Glob("/proc/[0-9]*/exe")
		for _, d := range dirs {
			if p, err := os.Readlink(d); err == nil && p == exe {
				n++
			}
		}
		if n == 0 {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func TestGatewayConfig(t *testing.T) {
	b := gatewayConfig("/opt/${HOME}/switchboard", "http://127.0.0.1:1234/mcp")
	cfg, err := config.Parse("bench.yaml", b, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	type server struct {
		Name, Command, URL string
		Type               config.Transport
		Args               []string
	}
	var got []server
	for _, s := range cfg.Servers {
		got = append(got, server{s.Name, s.Command, s.URL, s.Type, s.Args})
	}
	want := []server{
		{Name: stdioServer, Command: "/opt/${HOME}/switchboard", Type: config.Stdio, Args: []string{UpstreamCommand}},
		{Name: httpServer, URL: "http://127.0.0.1:1234/mcp", Type: config.StreamableHTTP},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"127.0.0.1:1234"}, cfg.Settings.AllowedAddresses); diff != "" {
		t.Errorf("allowed addresses (-want +got):\n%s", diff)
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"ok", "Name:\tswitchboard\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n", 12345, false},
		{"missing", "Name:\tswitchboard\n", 0, true},
		{"unit", "VmRSS:\t12 MB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		n, k int
		want []int
	}{
		{10, 4, []int{3, 3, 2, 2}},
		{3, 10, []int{1, 1, 1}},
		{8, 1, []int{8}},
		{0, 4, []int{0}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, split(tt.n, tt.k)); diff != "" {
			t.Errorf("split(%d, %d) (-want +got):\n%s", tt.n, tt.k, diff)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(d, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

// The benchmarks below run the hot path in one process: BenchmarkDirect
// calls the echo server straight, BenchmarkGateway through a gateway and hub
// in front of it. Their difference is the gateway's cost per call; profile
// it with
//
//	go test -run '^$' -bench Gateway/http -cpuprofile cpu.out ./internal/bench

func BenchmarkDirect(b *testing.B) {
	b.Run("inmemory", func(b *testing.B) {
		ct, st := mcp.NewInMemoryTransports()
		ctx := context.Background()
		ss, err := NewUpstream().Connect(ctx, st, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ss.Close()
		benchCalls(b, ct)
	})
	b.Run("http", func(b *testing.B) {
		up, _ := startUpstreamHTTP(b)
		benchCalls(b, up)
	})
}

func BenchmarkGateway(b *testing.B) {
	// The upstream is the hub's in-process server: no upstream transport.
	b.Run("inmemory", func(b *testing.B) {
		srv := startInProcessGateway(b, nil, NewUpstream())
		benchCalls(b, srv.transport(hub.BuiltinName))
	})
	b.Run("http", func(b *testing.B) {
		_, url := startUpstreamHTTP(b)
		cfg, err := config.Parse("bench.yaml", []byte("mcpServers:\n  echo:\n    type: streamable-http\n    url: "+url+"\n"), nil)
		if err != nil {
			b.Fatal(err)
		}
		srv := startInProcessGateway(b, cfg, nil)
		benchCalls(b, srv.transport("echo"))
	})
}

func benchCalls(b *testing.B, t mcp.Transport) {
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: DefaultProtocolVersion})
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	for range 10 {
		if err := call(ctx, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := call(ctx, cs); err != nil {
			b.Fatal(err)
		}
	}
}

// startUpstreamHTTP serves the echo server over streamable HTTP and returns
// a client transport for it and its URL.
func startUpstreamHTTP(tb testing.TB) (*mcp.StreamableClientTransport, string) {
	srv := NewUpstream()
	hs := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	tr := &http.Transport{}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		hs.Close()
	})
	return &mcp.StreamableClientTransport{Endpoint: hs.URL, HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, hs.URL
}

type gatewayServer struct {
	url string
	hc  *http.Client
}

func (s *gatewayServer) transport(server string) mcp.Transport {
	return &mcp.StreamableClientTransport{Endpoint: s.url + "/mcp/" + server, HTTPClient: s.hc, MaxRetries: -1}
}

// startInProcessGateway wires a hub and a gateway as `switchboard serve` does and
// serves the gateway over HTTP.
func startInProcessGateway(tb testing.TB, cfg *config.Config, builtin *mcp.Server) *gatewayServer {
	var gw *gateway.Gateway
	h := hub.New(cfg, &hub.Options{
		Builtin: builtin,
	})
	gw = gateway.New(h, nil)
	h.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.WaitConnected(ctx)
	hs := httptest.NewServer(gw.Handler())
	tr := &http.Transport{}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		hs.Close()
		h.Close()
		gw.Close()
	})
	return &gatewayServer{url: hs.URL, hc: &http.Client{Transport: tr}}
}

// BenchmarkGatewayRevisions compares a downstream client of each revision
// through the gateway to an HTTP upstream: a 2026-07-28 client travels over
// the binding's second link, which speaks 2026-07-28 natively to the
// upstream; a 2025-11-25 client over the first.
func BenchmarkGatewayRevisions(b *testing.B) {
	for _, rev := range []string{"2025-11-25", "2026-07-28"} {
		b.Run(rev, func(b *testing.B) {
			_, url := startUpstreamHTTP(b)
			cfg, err := config.Parse("bench.yaml", []byte("mcpServers:\n  echo:\n    type: streamable-http\n    url: "+url+"\n"), nil)
			if err != nil {
				b.Fatal(err)
			}
			srv := startInProcessGateway(b, cfg, nil)
			ctx := context.Background()
			client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			cs, err := client.Connect(ctx, srv.transport("echo"), &mcp.ClientSessionOptions{ProtocolVersion: rev})
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			for range 10 {
				if err := call(ctx, cs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := call(ctx, cs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
