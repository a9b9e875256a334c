package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

// maxLineBytes bounds one JSON-RPC frame read from a stdio server. A server
// that writes a longer line is disconnected with a clear error instead of
// growing the gateway's memory without limit.
const maxLineBytes = 8 << 20

// stopGrace is how long a stdio server gets between SIGTERM and SIGKILL.
const stopGrace = 2 * time.Second

// safeEnvKeys are the parent environment variables a stdio server inherits.
// The rest of the gateway's environment (API keys, tokens) is not passed on:
// only what the config's env adds.
var safeEnvKeys = []string{
	"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE",
	"TMPDIR", "TZ", "SystemRoot", "APPDATA", "USERPROFILE", "LOCALAPPDATA", "PROGRAMDATA",
	"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
	"XDG_DATA_HOME", "XDG_RUNTIME_DIR",
}

// stdioEnv builds a child's environment: a small safe subset of the parent's,
// with the configured variables laid over it.
func stdioEnv(lookup func(string) (string, bool), extra map[string]string) []string {
	env := make(map[string]string)
	for _, k := range safeEnvKeys {
		if v, ok := lookup(k); ok {
			env[k] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// process is a running stdio server.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	exited chan struct{} // closed when the process has been reaped
	err    error         // exit status; valid after exited is closed
}

func startProcess(srv *config.Server, lookup func(string) (string, bool), stderr io.Writer) (*process, error) {
	// Arguments go to exec directly, never through a shell.
	cmd := exec.Command(srv.Command, srv.Args...)
	cmd.Env = stdioEnv(lookup, srv.Env)
	cmd.Dir = srv.Cwd
	cmd.Stderr = stderr
	setProcessGroup(cmd)
	// Pipes of our own rather than cmd.StdinPipe/StdoutPipe, which Wait
	// closes as soon as the child exits, racing the reader: the last frames
	// could be lost and the session would end with "file already closed".
	stdinR, stdin, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdin.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = cmd.Start()
	stdinR.Close() // the child has its own copies
	stdoutW.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", srv.Command, err)
	}
	p := &process{cmd: cmd, stdin: stdin, stdout: stdout, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop closes the child's stdin (the MCP stdio shutdown signal), then sends
// SIGTERM, then SIGKILL after a grace period.
func (p *process) stop() {
	defer p.stdout.Close()
	p.stdin.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(200 * time.Millisecond):
	}
	signalGroup(p.cmd, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(stopGrace):
	}
	signalGroup(p.cmd, syscall.SIGKILL)
	<-p.exited
}

func (p *process) kill() {
	signalGroup(p.cmd, syscall.SIGKILL)
}

func setProcessGroup(cmd *exec.Cmd) {
	if runtime.GOOS != "windows" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if runtime.GOOS != "windows" {
		// The negative pid addresses the whole process group, so that a
		// server started through a wrapper (npx, uvx, sh) goes too.
		if err := syscall.Kill(-cmd.Process.Pid, sig); err == nil {
			return
		}
	}
	cmd.Process.Signal(sig)
}

// stdioTransport is an mcp.Transport whose connection owns a child process:
// closing the connection stops the process.
type stdioTransport struct {
	p *process
}

func (t *stdioTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	inner, err := (&mcp.IOTransport{Reader: t.p.stdout, Writer: t.p.stdin, MaxLineLength: maxLineBytes}).Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &processConn{Connection: inner, p: t.p}, nil
}

type processConn struct {
	mcp.Connection
	p        *process
	stopOnce sync.Once
}

func (c *processConn) Close() error {
	err := c.Connection.Close()
	c.stopOnce.Do(c.p.stop)
	return err
}

// headerTransport adds configured headers to every request to an HTTP server.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}

// apiKeyHeaders returns the header an admin-provided apiKey adds.
func apiKeyHeaders(k *config.APIKey) (map[string]string, error) {
	if k == nil || k.Source != "admin" {
		return nil, nil
	}
	switch strings.ToLower(k.AuthorizationType) {
	case "", "bearer":
		return map[string]string{"Authorization": "Bearer " + k.Key}, nil
	case "basic":
		return map[string]string{"Authorization": "Basic " + k.Key}, nil
	case "custom":
		return map[string]string{k.CustomHeader: k.Key}, nil
	}
	return nil, fmt.Errorf("unknown apiKey authorization_type %q", k.AuthorizationType)
}

var errUnsupportedTransport = errors.New("unsupported transport")

func lookupEnvOS(k string) (string, bool) { return os.LookupEnv(k) }
