package hub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// The test binary doubles as the upstream stdio server: with modeEnv set it
// serves MCP on stdin/stdout in that mode instead of running tests.
const (
	modeEnv  = "SWITCHBOARD_HUBTEST_MODE"
	spawnEnv = "SWITCHBOARD_HUBTEST_SPAWNLOG" // file each child appends a line to when it starts
	downEnv  = "SWITCHBOARD_HUBTEST_DOWN"     // a file whose existence makes a child exit at start
)

// Child modes.
const (
	modeServer      = "server"        // an SDK server with the tools below
	modeGarbage     = "garbage"       // non-JSON lines on stdout, then modeServer
	modeHugeLine    = "huge-line"     // a 100 MB line on stdout, then modeServer
	modeHangAll     = "hang-all"      // answers initialize and tools/list, then nothing at all
	modeExitAtStart = "exit-at-start" // exits before reading anything
	modeAnswerExit  = "answer-exit"   // answers one tools/call, then exits at once
)

// hugeLineBytes is what modeHugeLine writes before its first newline.
const hugeLineBytes = 100 << 20

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(modeEnv); ok {
		os.Exit(runChild(mode))
	}
	goleak.VerifyTestMain(m)
}

func runChild(mode string) int {
	fmt.Fprintf(os.Stderr, "pid %d\n", os.Getpid())
	if f := os.Getenv(spawnEnv); f != "" {
		if w, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(w, "%d\n", os.Getpid())
			w.Close()
		}
	}
	if f := os.Getenv(downEnv); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "down on purpose")
			return 1
		}
	}
	switch mode {
	case modeServer:
	case modeGarbage:
		fmt.Println("Welcome to the noisy server!")
		fmt.Println("npm WARN deprecated something@1.0.0")
	case modeHugeLine:
		// Valid JSON as far as it goes, so that a decoder keeps reading.
		fmt.Print(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"`)
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range hugeLineBytes / len(chunk) {
			if _, err := os.Stdout.Write(chunk); err != nil {
				return 1
			}
		}
		fmt.Println(`"}}`)
	case modeHangAll:
		signal.Ignore(syscall.SIGTERM)
		rawServer(nil)
		select {} // ignore stdin's end too
	case modeAnswerExit:
		rawServer(func() { os.Exit(0) })
		return 0
	case modeExitAtStart:
		fmt.Fprintln(os.Stderr, "exiting at start on purpose")
		return 1
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		return 2
	}
	if err := childServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

type textIn struct {
	Text string `json:"text"`
}

type countIn struct {
	N int `json:"n"`
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func jsonResult(v any) *mcp.CallToolResult {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return textResult(string(b))
}

// childServer is the upstream in modeServer.
func childServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "hubtest", Version: "1"}, nil)
	addEcho(s)
	mcp.AddTool(s, &mcp.Tool{Name: "crash"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(3)
		return nil, nil, nil
	})
	// hang never returns, whatever happens to its request; it notes the
	// cancellation on stderr, where the hub keeps it.
	mcp.AddTool(s, &mcp.Tool{Name: "hang"}, func(ctx context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		<-ctx.Done()
		fmt.Fprintf(os.Stderr, "cancelled %s\n", in.Text)
		select {}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "argv"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return jsonResult(os.Args[1:]), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "env"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		env := os.Environ()
		slices.Sort(env)
		return jsonResult(env), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "pid"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return jsonResult(os.Getpid()), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "stderr"}, func(_ context.Context, _ *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, any, error) {
		w := bufio.NewWriter(os.Stderr)
		for i := range in.N {
			fmt.Fprintf(w, "line %05d\n", i)
		}
		w.Flush()
		return textResult("done"), nil, nil
	})
	return s
}

func addEcho(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		return textResult(in.Text), nil, nil
	})
}

// rawServer is a hand-written stdio server that completes the handshake and
// lists one tool, "bye". With onCall nil it then answers nothing at all,
// pings included; otherwise it answers tools/call with the text "bye" and
// calls onCall once the answer is written. It returns at stdin's end.
func rawServer(onCall func()) {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	silent := false
	for sc.Scan() {
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.ID == nil || silent {
			continue
		}
		var result any
		switch msg.Method {
		case "initialize":
			result = map[string]any{
				"protocolVersion": msg.Params.ProtocolVersion,
				"capabilities":    map[string]any{"tools": map[string]any{}},
				"serverInfo":      map[string]any{"name": "raw", "version": "1"},
			}
		case "tools/list":
			result = map[string]any{"tools": []any{map[string]any{"name": "bye", "inputSchema": map[string]any{"type": "object"}}}}
			silent = onCall == nil
		case "tools/call":
			result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "bye"}}}
		default:
			continue
		}
		out.Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
		if msg.Method == "tools/call" {
			onCall()
		}
	}
}

// stdioServer configures the test binary as a stdio server in mode.
func stdioServer(name, mode string) *config.Server {
	return &config.Server{
		Name:    name,
		Type:    config.Stdio,
		Command: os.Args[0],
		Env:     map[string]string{modeEnv: mode},
		Startup: true,
	}
}

// recorder keeps every status the hub reported to its observer.
type recorder struct {
	mu   sync.Mutex // guards the fields below
	h    *hub.Hub
	seen []hub.Status
}

func (r *recorder) ResourceUpdated(string, string, *mcp.ResourceUpdatedNotificationParams) {}
func (r *recorder) Log(string, string, *mcp.LoggingMessageParams)                          {}

func (r *recorder) Changed(server string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		return
	}
	c, err := r.h.Conn(server)
	if err != nil {
		return
	}
	r.seen = append(r.seen, c.Status())
}

// states returns the states server went through, without repeats.
func (r *recorder) states(server string) []hub.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hub.State
	for _, st := range r.seen {
		if st.Name == server && (len(out) == 0 || out[len(out)-1] != st.State) {
			out = append(out, st.State)
		}
	}
	return out
}

// lastWith returns the last status of server in state s.
func (r *recorder) lastWith(server string, s hub.State) (hub.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.seen) - 1; i >= 0; i-- {
		if st := r.seen[i]; st.Name == server && st.State == s {
			return st, true
		}
	}
	return hub.Status{}, false
}

// newHub starts a hub for servers and closes it when the test ends.
func newHub(t *testing.T, opts *hub.Options, servers ...*config.Server) (*hub.Hub, *recorder) {
	t.Helper()
	rec := &recorder{}
	o := hub.Options{}
	if opts != nil {
		o = *opts
	}
	o.Observer = rec
	h := hub.New(&config.Config{Servers: servers}, &o)
	rec.mu.Lock()
	rec.h = h
	rec.mu.Unlock()
	t.Cleanup(func() { h.Close() })
	h.Start()
	return h, rec
}

func conn(t *testing.T, h *hub.Hub, name string) *hub.Conn {
	t.Helper()
	c, err := h.Conn(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, c *hub.Conn, s hub.State, d time.Duration) hub.Status {
	t.Helper()
	var st hub.Status
	waitFor(t, d, fmt.Sprintf("%s to be %s", c.Name(), s), func() bool {
		st = c.Status()
		return st.State == s
	})
	return st
}

// testCaller is how these tests say who calls: the hub takes the caller
// as a parameter; a test keeps it next to its context for brevity.
type testCaller struct{}

// withUser returns ctx naming the user the test's calls are made for.
func withUser(ctx context.Context, user string) context.Context {
	c := callerOf(ctx)
	c.User = user
	return context.WithValue(ctx, testCaller{}, c)
}

func callerOf(ctx context.Context) hub.Caller {
	c, _ := ctx.Value(testCaller{}).(hub.Caller)
	return c
}

// call calls a tool with a bounded context and returns its text.
func call(ctx context.Context, c *hub.Conn, tool string, args any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, callerOf(ctx), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %v", text(res))
	}
	return text(res), nil
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// pidFromStderr returns the pid the latest child reported in tail.
func pidFromStderr(tail []string) (int, bool) {
	for _, l := range slices.Backward(tail) {
		var pid int
		if _, err := fmt.Sscanf(l, "pid %d", &pid); err == nil {
			return pid, true
		}
	}
	return 0, false
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
