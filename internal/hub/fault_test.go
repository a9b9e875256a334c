package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// A stdio server that dies while handling a call fails that call at once,
// is restarted with backoff, and leaves the other servers alone.
func TestCrashMidCall(t *testing.T) {
	builtin := mcp.NewServer(&mcp.Implementation{Name: "builtin", Version: "1"}, nil)
	addEcho(builtin)
	h, rec := newHub(t, &hub.Options{Builtin: builtin}, stdioServer("crashy", modeServer))
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	crashy, other := conn(t, h, "crashy"), conn(t, h, hub.BuiltinName)
	if st := crashy.Status(); st.State != hub.StateConnected {
		t.Fatalf("crashy: state %s, last error %q", st.State, st.LastError)
	}

	// The other server answers throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherCalls atomic.Int64
	otherErrs := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			got, err := call(ctx, other, "echo", map[string]any{"text": "still here"})
			if err == nil && got != "still here" {
				err = errors.New("echo returned " + got)
			}
			if err != nil {
				select {
				case otherErrs <- err:
				default:
				}
				continue
			}
			otherCalls.Add(1)
		}
	})
	stopOther := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopOther()

	start := time.Now()
	_, err := call(ctx, crashy, "crash", nil)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("crash: call succeeded")
	}
	t.Logf("crash: error after %s: %v", elapsed, err)
	if elapsed >= time.Second {
		t.Errorf("crash: error took %s, want under 1s", elapsed)
	}
	if !errors.Is(err, hub.ErrUnavailable) {
		t.Errorf("crash: error %q is not ErrUnavailable", err)
	}

	waitFor(t, 5*time.Second, "crashy to fail and reconnect", func() bool {
		states := rec.states("crashy")
		i := slices.Index(states, hub.StateFailed)
		return i >= 0 && slices.Contains(states[i:], hub.StateConnected) && crashy.Status().State == hub.StateConnected
	})
	failed, _ := rec.lastWith("crashy", hub.StateFailed)
	t.Logf("crash: failed status: %q, next retry in %s", failed.LastError, failed.NextRetry.Sub(failed.Since).Round(time.Millisecond))
	if !strings.Contains(failed.LastError, "connection closed") {
		t.Errorf("crash: last error %q does not say the connection closed", failed.LastError)
	}
	if failed.NextRetry.IsZero() {
		t.Errorf("crash: failed status has no next retry")
	}
	if got, err := call(ctx, crashy, "echo", map[string]any{"text": "back"}); err != nil || got != "back" {
		t.Errorf("crashy after restart: echo = %q, %v", got, err)
	}

	stopOther()
	select {
	case err := <-otherErrs:
		t.Errorf("built-in server failed while crashy crashed: %v", err)
	default:
	}
	if otherCalls.Load() == 0 {
		t.Error("no calls to the built-in server completed")
	}
	if st := other.Status(); st.State != hub.StateConnected {
		t.Errorf("built-in server: state %s, last error %q", st.State, st.LastError)
	}
}

// A request the server never answers times out with ErrTimeout and the
// server is told to cancel it.
func TestHang(t *testing.T) {
	srv := stdioServer("slow", modeServer)
	srv.Timeout = 300 * time.Millisecond
	h, _ := newHub(t, nil, srv)
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	c := conn(t, h, "slow")
	_, err := call(ctx, c, "hang", map[string]any{"text": "req-1"})
	if !errors.Is(err, hub.ErrTimeout) {
		t.Fatalf("hang: error %v, want ErrTimeout", err)
	}
	t.Logf("hang: %v", err)
	if !strings.Contains(err.Error(), "slow") || !strings.Contains(err.Error(), "300ms") {
		t.Errorf("hang: error %q names neither the server nor the timeout", err)
	}
	waitFor(t, 5*time.Second, "the server to see notifications/cancelled", func() bool {
		return slices.Contains(c.Status().StderrTail, "cancelled req-1")
	})
	// The server still answers, so it keeps running.
	if got, err := call(ctx, c, "echo", map[string]any{"text": "alive"}); err != nil || got != "alive" {
		t.Errorf("echo after timeout = %q, %v", got, err)
	}
}

// A server that stops answering altogether, pings included, is killed and
// started again.
func TestHungServerRestarted(t *testing.T) {
	srv := stdioServer("stuck", modeHangAll)
	srv.Timeout = 300 * time.Millisecond
	h, rec := newHub(t, nil, srv)
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	c := conn(t, h, "stuck")
	if st := c.Status(); st.State != hub.StateConnected {
		t.Fatalf("state %s, last error %q", st.State, st.LastError)
	}
	oldPID, ok := pidFromStderr(c.Status().StderrTail)
	if !ok {
		t.Fatalf("no pid in stderr %q", c.Status().StderrTail)
	}

	_, err := call(ctx, c, "bye", nil)
	if !errors.Is(err, hub.ErrTimeout) {
		t.Fatalf("hang: error %v, want ErrTimeout", err)
	}

	// The probe waits 5s for a ping, the stop takes 2.2s to reach SIGKILL
	// (this server ignores SIGTERM), and the first retry comes 0.5s later.
	waitFor(t, 20*time.Second, "the hung server to be restarted", func() bool {
		states := rec.states("stuck")
		i := slices.Index(states, hub.StateFailed)
		if i < 0 || !slices.Contains(states[i:], hub.StateConnected) || c.Status().State != hub.StateConnected {
			return false
		}
		pid, ok := pidFromStderr(c.Status().StderrTail)
		return ok && pid != oldPID
	})
	failed, _ := rec.lastWith("stuck", hub.StateFailed)
	t.Logf("failed status: %q", failed.LastError)
	if !strings.Contains(failed.LastError, "ping") || strings.Contains(failed.LastError, "already closed") {
		t.Errorf("last error %q does not say the server stopped answering pings", failed.LastError)
	}
	waitFor(t, 5*time.Second, "the old process to be gone", func() bool { return processGone(oldPID) })
}

// A server that writes what is not JSON-RPC to stdout fails with a clear
// error, and a huge line costs the hub no more than the frame limit.
func TestGarbageOnStdout(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr string // in Status().LastError
	}{
		{modeGarbage, "invalid character"},
		{modeHugeLine, "exceeded the configured maximum line length"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			builtin := mcp.NewServer(&mcp.Implementation{Name: "builtin", Version: "1"}, nil)
			addEcho(builtin)

			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				var ms runtime.MemStats
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			})

			h, rec := newHub(t, &hub.Options{Builtin: builtin}, stdioServer("noisy", tt.mode))
			c := conn(t, h, "noisy")
			waitFor(t, 30*time.Second, "noisy to fail", func() bool {
				_, ok := rec.lastWith("noisy", hub.StateFailed)
				return ok
			})
			close(stop)
			wg.Wait()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)

			failed, _ := rec.lastWith("noisy", hub.StateFailed)
			t.Logf("last error: %q", failed.LastError)
			if !strings.Contains(failed.LastError, tt.wantErr) {
				t.Errorf("last error %q does not contain %q", failed.LastError, tt.wantErr)
			}
			const bound = 50 << 20
			if grew := int64(peak.Load()) - int64(before.HeapInuse); grew > bound {
				t.Errorf("heap in use grew by %d MiB, want under %d MiB", grew>>20, bound>>20)
			}
			if grew := int64(after.Sys) - int64(before.Sys); grew > bound {
				t.Errorf("memory from the OS grew by %d MiB, want under %d MiB", grew>>20, bound>>20)
			}
			t.Logf("heap in use peak +%d MiB, sys +%d MiB", (int64(peak.Load())-int64(before.HeapInuse))>>20, (int64(after.Sys)-int64(before.Sys))>>20)

			// The hub carries on.
			if got, err := call(t.Context(), conn(t, h, hub.BuiltinName), "echo", map[string]any{"text": "ok"}); err != nil || got != "ok" {
				t.Errorf("built-in server: echo = %q, %v", got, err)
			}
			if st := c.Status(); st.State == hub.StateConnected {
				t.Errorf("noisy is connected")
			}
		})
	}
}

// An HTTP server that answers 500 fails with a clear error and is retried
// with backoff.
func TestHTTPServerErrors(t *testing.T) {
	var mu sync.Mutex
	var attempts []time.Time // initialize requests
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"initialize"`) {
			mu.Lock()
			attempts = append(attempts, time.Now())
			mu.Unlock()
		}
		http.Error(w, "database on fire", http.StatusInternalServerError)
	}))
	t.Cleanup(ts.Close)
	h, rec := newHub(t, nil, &config.Server{Name: "broken", Type: config.StreamableHTTP, URL: ts.URL, Startup: true})
	c := conn(t, h, "broken")

	// Backoff: the attempts come 0.5s, 1s, 2s… apart, ±25%.
	waitFor(t, 10*time.Second, "three connect attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) >= 3
	})
	mu.Lock()
	gaps := []time.Duration{attempts[1].Sub(attempts[0]), attempts[2].Sub(attempts[1])}
	mu.Unlock()
	t.Logf("gaps between attempts: %v", gaps)
	if gaps[1] <= gaps[0] {
		t.Errorf("gaps between attempts %v do not grow", gaps)
	}
	st := c.Status()
	t.Logf("status: %s %q, next retry %s", st.State, st.LastError, st.NextRetry)
	if !strings.Contains(st.LastError, "500") && !strings.Contains(st.LastError, "Internal Server Error") {
		t.Errorf("last error %q does not mention the 500", st.LastError)
	}
	failed, ok := rec.lastWith("broken", hub.StateFailed)
	if !ok {
		t.Fatal("no failed status reported")
	}
	if failed.NextRetry.IsZero() {
		t.Error("failed status has no next retry")
	}
	if _, err := c.Session(t.Context()); !errors.Is(err, hub.ErrUnavailable) {
		t.Errorf("Session: error %v, want ErrUnavailable", err)
	}
}

// A streamable HTTP connection that drops mid-call fails the call, and the
// hub connects again.
func TestHTTPStreamDrop(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := mcp.NewServer(&mcp.Implementation{Name: "remote", Version: "1"}, nil)
	addEcho(srv)
	mcp.AddTool(srv, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-release:
			return textResult("finished"), nil, nil
		}
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	t.Cleanup(ts.Close)
	h, _ := newHub(t, nil, &config.Server{Name: "remote", Type: config.StreamableHTTP, URL: ts.URL, Startup: true})
	// The hub does not cancel the orphaned call, and the server keeps its
	// session open until the call ends: end it before the hub closes.
	t.Cleanup(func() { close(release) })
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	c := conn(t, h, "remote")
	if st := c.Status(); st.State != hub.StateConnected {
		t.Fatalf("state %s, last error %q", st.State, st.LastError)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := call(ctx, c, "slow", nil)
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("slow tool did not start")
	}
	ts.CloseClientConnections()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("slow: call succeeded after its connection dropped")
		}
		t.Logf("slow: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("slow: call still running 10s after its connection dropped")
	}

	waitFor(t, 10*time.Second, "a call to succeed again", func() bool {
		got, err := call(ctx, c, "echo", map[string]any{"text": "again"})
		return err == nil && got == "again"
	})
	if st := c.Status(); st.State != hub.StateConnected {
		t.Errorf("state %s, last error %q", st.State, st.LastError)
	}
}

// After five consecutive failures the circuit opens: Session fails at once
// without starting the server until the cool-down has passed.
func TestCircuitBreaker(t *testing.T) {
	spawns := filepath.Join(t.TempDir(), "spawns")
	srv := stdioServer("dead", modeExitAtStart)
	srv.Env[spawnEnv] = spawns
	h, _ := newHub(t, &hub.Options{BreakerCooldown: time.Minute}, srv)
	c := conn(t, h, "dead")
	ctx := t.Context()

	// Each Session call makes (or waits for) one attempt until the circuit
	// opens; the automatic retries may add some.
	open := func() bool {
		st := c.Status()
		return st.State == hub.StateFailed && time.Until(st.NextRetry) > 30*time.Second
	}
	for i := 0; !open(); i++ {
		if i == 10 {
			t.Fatalf("circuit still closed after %d attempts: %+v", i, c.Status())
		}
		if _, err := c.Session(ctx); !errors.Is(err, hub.ErrUnavailable) {
			t.Fatalf("Session: error %v, want ErrUnavailable", err)
		}
	}
	st := c.Status()
	t.Logf("status: %q, next retry in %s", st.LastError, time.Until(st.NextRetry).Round(time.Second))
	if st.LastError == "" {
		t.Error("no last error")
	}
	n := countLines(t, spawns)
	if n < 5 {
		t.Errorf("started %d times before the circuit opened, want at least 5", n)
	}

	for range 3 {
		start := time.Now()
		_, err := c.Session(ctx)
		if !errors.Is(err, hub.ErrUnavailable) {
			t.Fatalf("Session with the circuit open: error %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Session with the circuit open took %s", d)
		}
		if !strings.Contains(err.Error(), "circuit open") {
			t.Errorf("Session error %q does not say the circuit is open", err)
		}
	}
	if _, err := c.CallTool(ctx, hub.Caller{}, &mcp.CallToolParams{Name: "echo"}); !errors.Is(err, hub.ErrUnavailable) {
		t.Errorf("CallTool with the circuit open: error %v, want ErrUnavailable", err)
	}
	if got := countLines(t, spawns); got != n {
		t.Errorf("the server was started %d more times with the circuit open", got-n)
	}
}

func countLines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// A stdio server sees only the safe part of the hub's environment plus its
// configured env, and gets its arguments verbatim, without a shell.
func TestStdioEnvAndArgs(t *testing.T) {
	t.Setenv("SWITCHBOARD_TEST_SECRET", "hunter2")
	args := []string{"two words", "$(touch /tmp/pwned)", "a;b", "`id`", "'single'", `"double"`, "*", "x > y", ""}
	srv := stdioServer("env", modeServer)
	srv.Args = args
	srv.Env["GREETING"] = "hello world"
	h, _ := newHub(t, nil, srv)
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	c := conn(t, h, "env")

	out, err := call(ctx, c, "argv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var gotArgs []string
	if err := json.Unmarshal([]byte(out), &gotArgs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(args, gotArgs); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}

	out, err = call(ctx, c, "env", nil)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	if v, ok := got["SWITCHBOARD_TEST_SECRET"]; ok {
		t.Errorf("the child sees SWITCHBOARD_TEST_SECRET=%q", v)
	}
	want := map[string]string{modeEnv: modeServer, "GREETING": "hello world"}
	for _, k := range []string{"HOME", "PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			want[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("child env %s=%q, want %q", k, got[k], v)
		}
	}
	safe := []string{"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE",
		"TMPDIR", "TZ", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "XDG_CACHE_HOME",
		"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", modeEnv, "GREETING"}
	for k := range got {
		if !slices.Contains(safe, k) {
			t.Errorf("child env has %s, which is neither safe nor configured", k)
		}
	}
}

// The last lines a stdio server wrote to stderr are kept, and only those.
func TestStderrTail(t *testing.T) {
	h, _ := newHub(t, nil, stdioServer("chatty", modeServer))
	ctx := t.Context()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	c := conn(t, h, "chatty")
	if _, err := call(ctx, c, "stderr", map[string]any{"n": 50000}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"line 49990", "line 49991", "line 49992", "line 49993", "line 49994",
		"line 49995", "line 49996", "line 49997", "line 49998", "line 49999",
	}
	var got []string
	waitFor(t, 5*time.Second, "the last stderr line", func() bool {
		got = c.Status().StderrTail
		return len(got) > 0 && got[len(got)-1] == want[len(want)-1]
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stderr tail (-want +got):\n%s", diff)
	}
}

// An answer written just before the server exits still arrives: the hub
// reads stdout to its end before it reaps the process.
func TestAnswerThenExit(t *testing.T) {
	for i := range 10 {
		h, _ := newHub(t, nil, stdioServer("brief", modeAnswerExit))
		ctx := t.Context()
		if err := h.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := call(ctx, conn(t, h, "brief"), "bye", nil)
		if err != nil || got != "bye" {
			t.Fatalf("attempt %d: bye = %q, %v", i, got, err)
		}
		h.Close()
	}
}

// A stdio server's exit is reported in words, without the pipe-closing noise
// of the hub's own clean-up.
func TestExitReadable(t *testing.T) {
	for i := range 10 {
		h, rec := newHub(t, nil, stdioServer("brief", modeAnswerExit))
		ctx := t.Context()
		if err := h.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		call(ctx, conn(t, h, "brief"), "bye", nil)
		waitFor(t, 5*time.Second, "brief to fail", func() bool {
			_, ok := rec.lastWith("brief", hub.StateFailed)
			return ok
		})
		failed, _ := rec.lastWith("brief", hub.StateFailed)
		if strings.Contains(failed.LastError, "already closed") {
			t.Fatalf("attempt %d: last error %q", i, failed.LastError)
		}
		h.Close()
	}
}

// A stdio server that exits before answering initialize is reported with its
// exit status or its last words on stderr, not a bare EOF.
func TestExitAtStartReadable(t *testing.T) {
	h, rec := newHub(t, nil, stdioServer("dead", modeExitAtStart))
	waitFor(t, 5*time.Second, "dead to fail", func() bool {
		_, ok := rec.lastWith("dead", hub.StateFailed)
		return ok
	})
	failed, _ := rec.lastWith("dead", hub.StateFailed)
	t.Logf("last error: %q", failed.LastError)
	if !strings.Contains(failed.LastError, "exiting at start on purpose") && !strings.Contains(failed.LastError, "exit status 1") {
		t.Errorf("last error %q gives neither the exit status nor stderr", failed.LastError)
	}
	h.Close()
}
