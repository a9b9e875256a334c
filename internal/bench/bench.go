// Package bench measures the gateway's overhead against direct connections:
// the same tool-call workload is run from an SDK client straight to an
// upstream server and through a switchboard gateway to that server, over
// stdio and streamable-HTTP upstreams, and the gateway's memory is measured
// idle and per idle downstream session.
//
// The gateway and the upstream servers run as child processes of the
// switchboard binary (the gateway as `switchboard serve`, the upstream as the
// hidden `switchboard bench-upstream`), so that the gateway's memory is its
// own and each hop crosses a process boundary. cmd/switchboard imports this
// package; it imports the MCP SDK and the standard library only.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Defaults of Options.
const (
	DefaultCalls        = 2000
	DefaultSessions     = 8
	DefaultIdleSessions = 1000
	DefaultWarmup       = 200
	// DefaultProtocolVersion is the revision today's clients speak, and the
	// last one with sessions, whose idle cost is measured.
	DefaultProtocolVersion = "2025-11-25"
)

// Targets the gateway should meet.
const (
	maxP50Ratio        = 1.5
	minThroughputRatio = 0.9
	maxIdleRSSKiB      = 25 << 10
	maxPerSessionKiB   = 64
)

// Options configure a run. The zero value is valid.
type Options struct {
	// Calls is the number of calls each session makes per measurement.
	// Zero: DefaultCalls.
	Calls int
	// Sessions is the number of sessions of the concurrent measurement.
	// Zero: DefaultSessions.
	Sessions int
	// IdleSessions is the number of idle downstream sessions opened to
	// measure the gateway's memory per session. Zero: DefaultIdleSessions;
	// negative: none.
	IdleSessions int
	// Warmup is the number of calls the sequential session makes before it
	// is measured; concurrent sessions make a tenth each, at least one.
	// Zero: DefaultWarmup; negative: none.
	Warmup int
	// Binary is the switchboard binary run as gateway and upstream server.
	// Empty: os.Executable.
	Binary string
	// ProtocolVersion is the MCP revision the clients ask for.
	// Empty: DefaultProtocolVersion.
	ProtocolVersion string
	// Progress receives a line as each step starts. Nil: nothing.
	Progress io.Writer
}

// Report is a run's result. It marshals to JSON as it is.
type Report struct {
	GOOS            string  `json:"goos"`
	GOARCH          string  `json:"goarch"`
	CPUs            int     `json:"cpus"`
	ProtocolVersion string  `json:"protocolVersion"`
	Calls           int     `json:"calls"`
	Sessions        int     `json:"sessions"`
	Warmup          int     `json:"warmup"`
	Upstreams       []*Pair `json:"upstreams"`
	// Memory is the gateway process's; nil where it cannot be measured.
	Memory  *Memory  `json:"memory"`
	Targets []Target `json:"targets"`
}

// Pair compares direct and gateway calls to one upstream transport.
type Pair struct {
	// Transport is the upstream's: "stdio" or "streamable-http".
	Transport  string     `json:"transport"`
	Sequential Sequential `json:"sequential"`
	Concurrent Concurrent `json:"concurrent"`
}

// Sequential is one session making one call after another.
type Sequential struct {
	Direct  Latency `json:"direct"`
	Gateway Latency `json:"gateway"`
	// P50Ratio is the gateway's median latency over the direct one.
	P50Ratio float64 `json:"p50Ratio"`
	// ThroughputRatio is the gateway's calls per second over the direct ones.
	ThroughputRatio float64 `json:"throughputRatio"`
}

// Latency summarizes one path's sequential calls.
type Latency struct {
	Calls       int     `json:"calls"`
	P50Micros   float64 `json:"p50Micros"`
	P99Micros   float64 `json:"p99Micros"`
	CallsPerSec float64 `json:"callsPerSec"`
}

// Concurrent is several sessions calling at once, each one call after
// another. Direct stdio sessions are one upstream process each, as separate
// clients would start; through the gateway they share its one upstream.
type Concurrent struct {
	Sessions           int     `json:"sessions"`
	CallsPerSession    int     `json:"callsPerSession"`
	DirectCallsPerSec  float64 `json:"directCallsPerSec"`
	GatewayCallsPerSec float64 `json:"gatewayCallsPerSec"`
	// Ratio is the gateway's throughput over the direct one.
	Ratio float64 `json:"ratio"`
}

// Memory is the gateway process's resident set size.
type Memory struct {
	// IdleRSSKiB is measured once the gateway has connected to its upstream
	// servers, before any downstream session.
	IdleRSSKiB int64 `json:"idleRssKiB"`
	// IdleAnonKiB is the idle process's anonymous memory: RSS without the
	// executable's file-backed pages, which are shared page cache.
	IdleAnonKiB int64 `json:"idleAnonKiB,omitempty"`
	// IdleSessions were opened (initialized, with their standalone SSE
	// stream, as SDK clients do) and kept open without calls.
	IdleSessions   int   `json:"idleSessions"`
	SessionsRSSKiB int64 `json:"sessionsRssKiB"`
	// PerSessionKiB is (SessionsRSSKiB-IdleRSSKiB)/IdleSessions.
	PerSessionKiB float64 `json:"perSessionKiB"`
	// AfterLoadRSSKiB is measured after the call measurements.
	AfterLoadRSSKiB int64 `json:"afterLoadRssKiB"`
}

// Target is a figure the gateway should reach.
type Target struct {
	Name   string  `json:"name"`
	Limit  string  `json:"limit"`
	Value  float64 `json:"value"`
	Status string  `json:"status"` // "pass", "miss", or "n/a" when not measured
}

// Run starts an upstream server and a gateway and measures calls to the
// upstream directly and through the gateway. It stops every process it
// started before it returns.
func Run(ctx context.Context, opts *Options) (*Report, error) {
	o := withDefaults(opts)
	exe := o.Binary
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the switchboard binary: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// Enough idle connections that concurrent sessions never dial anew.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4*o.Sessions + 16
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	b := &runner{o: o, exe: exe, hc: hc,
		client: mcp.NewClient(&mcp.Implementation{Name: "switchboard-bench", Version: "1"}, nil)}

	b.progress("starting the upstream server and the gateway")
	up, upURL, err := startHTTPUpstream(ctx, exe)
	if err != nil {
		return nil, err
	}
	defer up.stop(false, 5*time.Second)
	cfg := filepath.Join(dir, "switchboard.yaml")
	if err := os.WriteFile(cfg, gatewayConfig(exe, upURL), 0o600); err != nil {
		return nil, err
	}
	gw, base, err := startGateway(ctx, exe, cfg, hc)
	if err != nil {
		return nil, err
	}
	defer gw.stop(true, 15*time.Second)
	b.gwPID = gw.cmd.Process.Pid

	r := &Report{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
		ProtocolVersion: o.ProtocolVersion, Calls: o.Calls, Sessions: o.Sessions, Warmup: o.Warmup,
	}
	// Memory first, before the call measurements grow the gateway's heap.
	if r.Memory, err = b.memory(ctx, base+"/mcp"); err != nil {
		return nil, gw.failure(err)
	}
	upstreams := []struct {
		transport     string
		direct, viaGW dialer
	}{
		{transport: "stdio", direct: b.stdio, viaGW: b.http(base + "/mcp/" + stdioServer)},
		{transport: "streamable-http", direct: b.http(upURL), viaGW: b.http(base + "/mcp/" + httpServer)},
	}
	for _, u := range upstreams {
		p, err := b.pair(ctx, u.transport, u.direct, u.viaGW)
		if err != nil {
			return nil, gw.failure(fmt.Errorf("%s: %w", u.transport, err))
		}
		r.Upstreams = append(r.Upstreams, p)
	}
	if r.Memory != nil {
		if r.Memory.AfterLoadRSSKiB, err = b.settledRSS(ctx); err != nil {
			return nil, err
		}
	}
	r.Targets = r.targets()
	return r, nil
}

func withDefaults(opts *Options) Options {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Calls <= 0 {
		o.Calls = DefaultCalls
	}
	if o.Sessions <= 0 {
		o.Sessions = DefaultSessions
	}
	switch {
	case o.IdleSessions == 0:
		o.IdleSessions = DefaultIdleSessions
	case o.IdleSessions < 0:
		o.IdleSessions = 0
	}
	switch {
	case o.Warmup == 0:
		o.Warmup = DefaultWarmup
	case o.Warmup < 0:
		o.Warmup = 0
	}
	if o.ProtocolVersion == "" {
		o.ProtocolVersion = DefaultProtocolVersion
	}
	return o
}

// runner holds what the measurements share.
type runner struct {
	o      Options
	exe    string
	hc     *http.Client
	client *mcp.Client
	gwPID  int
}

func (b *runner) progress(msg string) {
	if b.o.Progress != nil {
		fmt.Fprintln(b.o.Progress, "bench:", msg)
	}
}

// A dialer opens one client session.
type dialer func(ctx context.Context) (*mcp.ClientSession, error)

// stdio starts an upstream server of its own, as a client without the
// gateway would.
func (b *runner) stdio(ctx context.Context) (*mcp.ClientSession, error) {
	t := &mcp.CommandTransport{Command: exec.Command(b.exe, UpstreamCommand)}
	return b.client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: b.o.ProtocolVersion})
}

func (b *runner) http(endpoint string) dialer {
	return func(ctx context.Context) (*mcp.ClientSession, error) {
		t := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: b.hc, MaxRetries: -1}
		return b.client.Connect(ctx, t, &mcp.ClientSessionOptions{ProtocolVersion: b.o.ProtocolVersion})
	}
}

// settledRSS reads the gateway's RSS after giving it a moment to settle.
func (b *runner) settledRSS(ctx context.Context) (int64, error) {
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return rssKiB(b.gwPID)
}

// memory measures the gateway's RSS idle and with IdleSessions sessions
// open to endpoint. It returns nil where RSS cannot be read.
func (b *runner) memory(ctx context.Context, endpoint string) (*Memory, error) {
	b.progress("measuring the idle gateway's memory")
	idle, err := b.settledRSS(ctx)
	if errors.Is(err, errNoRSS) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the gateway's RSS: %w", err)
	}
	m := &Memory{IdleRSSKiB: idle}
	m.IdleAnonKiB, _ = anonKiB(b.gwPID)
	n := b.o.IdleSessions
	if n == 0 {
		return m, nil
	}
	b.progress(fmt.Sprintf("opening %d idle sessions", n))
	sessions, err := openN(ctx, b.http(endpoint), n)
	defer closeAll(sessions)
	if err != nil {
		return nil, fmt.Errorf("open idle sessions: %w", err)
	}
	with, err := b.settledRSS(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the gateway's RSS: %w", err)
	}
	m.IdleSessions = n
	m.SessionsRSSKiB = with
	m.PerSessionKiB = float64(with-idle) / float64(n)
	return m, nil
}

// pair measures one upstream transport directly and through the gateway.
// Direct and gateway measurements alternate in rounds so that drift in the
// machine's load affects both alike.
func (b *runner) pair(ctx context.Context, transport string, direct, viaGW dialer) (*Pair, error) {
	p := &Pair{Transport: transport}
	rounds := split(b.o.Calls, 10)

	b.progress(transport + ": one session, sequential calls")
	paths := []dialer{direct, viaGW}
	var (
		lat     [2][]time.Duration
		elapsed [2]time.Duration
	)
	sessions := make([]*mcp.ClientSession, 2)
	defer closeAll(sessions)
	for i, d := range paths {
		cs, err := d(ctx)
		if err != nil {
			return nil, err
		}
		sessions[i] = cs
		if _, _, err := sequential(ctx, cs, b.o.Warmup); err != nil {
			return nil, err
		}
	}
	for r, n := range rounds {
		for k := range paths {
			i := (r + k) % 2
			l, d, err := sequential(ctx, sessions[i], n)
			if err != nil {
				return nil, err
			}
			lat[i] = append(lat[i], l...)
			elapsed[i] += d
		}
	}
	p.Sequential.Direct = summarize(lat[0], elapsed[0])
	p.Sequential.Gateway = summarize(lat[1], elapsed[1])
	p.Sequential.P50Ratio = ratio(p.Sequential.Gateway.P50Micros, p.Sequential.Direct.P50Micros)
	p.Sequential.ThroughputRatio = ratio(p.Sequential.Gateway.CallsPerSec, p.Sequential.Direct.CallsPerSec)

	b.progress(fmt.Sprintf("%s: %d sessions, concurrent calls", transport, b.o.Sessions))
	var groups [2][]*mcp.ClientSession
	defer func() {
		closeAll(groups[0])
		closeAll(groups[1])
	}()
	for i, d := range paths {
		var err error
		if groups[i], err = openN(ctx, d, b.o.Sessions); err != nil {
			return nil, err
		}
		if b.o.Warmup > 0 {
			if _, err := concurrent(ctx, groups[i], max(1, b.o.Warmup/10)); err != nil {
				return nil, err
			}
		}
	}
	var wall [2]time.Duration
	for r, n := range rounds {
		for k := range paths {
			i := (r + k) % 2
			d, err := concurrent(ctx, groups[i], n)
			if err != nil {
				return nil, err
			}
			wall[i] += d
		}
	}
	calls := b.o.Sessions * b.o.Calls
	p.Concurrent = Concurrent{
		Sessions:           b.o.Sessions,
		CallsPerSession:    b.o.Calls,
		DirectCallsPerSec:  perSec(calls, wall[0]),
		GatewayCallsPerSec: perSec(calls, wall[1]),
	}
	p.Concurrent.Ratio = ratio(p.Concurrent.GatewayCallsPerSec, p.Concurrent.DirectCallsPerSec)
	return p, nil
}

// sequential makes n calls one after another and returns their latencies
// and the time they took together.
func sequential(ctx context.Context, cs *mcp.ClientSession, n int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for range n {
		t := time.Now()
		if err := call(ctx, cs); err != nil {
			return nil, 0, err
		}
		lat = append(lat, time.Since(t))
	}
	return lat, time.Since(start), nil
}

// concurrent has every session make n calls, all at once, and returns the
// time until the last one ended.
func concurrent(ctx context.Context, sessions []*mcp.ClientSession, n int) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := time.Now()
	for _, cs := range sessions {
		wg.Go(func() {
			for range n {
				if err := call(ctx, cs); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

const echoText = "switchboard bench"

// call calls the echo tool and checks its answer.
func call(ctx context.Context, cs *mcp.ClientSession) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: echoTool, Arguments: echoArgs{Text: echoText}})
	if err != nil {
		return err
	}
	if res.IsError || len(res.Content) != 1 {
		return fmt.Errorf("echo: unexpected result (isError %v, %d contents)", res.IsError, len(res.Content))
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != echoText {
		return fmt.Errorf("echo: unexpected content %#v", res.Content[0])
	}
	return nil
}

// openN opens n sessions, a few at a time. On error it returns the sessions
// opened so far with it.
func openN(ctx context.Context, d dialer, n int) ([]*mcp.ClientSession, error) {
	out := make([]*mcp.ClientSession, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
		next  = make(chan int)
	)
	for range min(n, 8) {
		wg.Go(func() {
			for i := range next {
				cs, err := d(ctx)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				out[i] = cs
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return slices.DeleteFunc(out, func(cs *mcp.ClientSession) bool { return cs == nil }), first
}

// closeAll closes sessions, a few at a time; nil entries are skipped.
func closeAll(sessions []*mcp.ClientSession) {
	var wg sync.WaitGroup
	next := make(chan *mcp.ClientSession)
	for range min(len(sessions), 8) {
		wg.Go(func() {
			for cs := range next {
				cs.Close()
			}
		})
	}
	for _, cs := range sessions {
		if cs != nil {
			next <- cs
		}
	}
	close(next)
	wg.Wait()
}

// split divides n into at most k nearly equal positive parts.
func split(n, k int) []int {
	k = max(1, min(k, n))
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

func summarize(lat []time.Duration, elapsed time.Duration) Latency {
	slices.Sort(lat)
	return Latency{
		Calls:       len(lat),
		P50Micros:   micros(percentile(lat, 0.50)),
		P99Micros:   micros(percentile(lat, 0.99)),
		CallsPerSec: perSec(len(lat), elapsed),
	}
}

// percentile returns the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
