package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// child is a switchboard process the benchmark started.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *lastLines
	exited chan struct{} // closed once the process has been reaped
	err    error         // exit status; valid after exited is closed
}

// startChild starts exe with args. Its stdout is returned when wantStdout is
// set and discarded otherwise; the last lines of its stderr are kept for
// error messages.
func startChild(name, exe string, wantStdout bool, args ...string) (*child, io.Reader, error) {
	cmd := exec.Command(exe, args...)
	c := &child{name: name, cmd: cmd, stderr: &lastLines{max: 20}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	c.stdin = stdin
	var stdout io.Reader
	if wantStdout {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, stdout, nil
}

// stop asks the process to end, by closing its stdin and, when term is set,
// by SIGTERM, and kills it if it has not ended after grace.
func (c *child) stop(term bool, grace time.Duration) {
	c.stdin.Close()
	if term {
		if runtime.GOOS == "windows" {
			c.cmd.Process.Kill()
		} else {
			c.cmd.Process.Signal(os.Interrupt)
		}
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
		return
	case <-t.C:
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// failure describes why the process is not usable: its exit status, if it
// ended, and the end of its stderr.
func (c *child) failure(err error) error {
	select {
	case <-c.exited:
		err = fmt.Errorf("%w (%s exited: %v)", err, c.name, c.err)
	default:
	}
	if tail := c.stderr.String(); tail != "" {
		err = fmt.Errorf("%w; %s stderr:\n%s", err, c.name, tail)
	}
	return err
}

// startHTTPUpstream starts the upstream server on streamable HTTP and returns
// its endpoint URL.
func startHTTPUpstream(ctx context.Context, exe string) (*child, string, error) {
	c, stdout, err := startChild("upstream", exe, true, UpstreamCommand, "--http", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		// The first line is the URL; the pipe closes when the process ends.
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, stdout)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case u := <-line:
		if strings.HasPrefix(u, "http://") {
			return c, u, nil
		}
		err = errors.New("no URL from the upstream server")
	case <-t.C:
		err = errors.New("the upstream server did not start within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	err = c.failure(err)
	c.stop(false, 0)
	return nil, "", err
}

// Names of the upstream servers in the gateway's configuration.
const (
	stdioServer = "echo-stdio"
	httpServer  = "echo-http"
)

// gatewayConfig is the gateway's configuration: the upstream server once as
// a stdio child of the gateway and once over streamable HTTP.
func gatewayConfig(exe, upstreamURL string) []byte {
	q := func(s string) string {
		// A JSON string is a YAML double-quoted scalar; "$${" keeps config
		// from reading a path as a ${VAR} reference.
		b, _ := json.Marshal(strings.ReplaceAll(s, "${", "$${"))
		return string(b)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by switchboard bench.\n")
	if u, err := url.Parse(upstreamURL); err == nil {
		// The upstream listens on loopback, which SSRF rules refuse unless allowed.
		fmt.Fprintf(&b, "mcpSettings:\n  allowedAddresses: [%s]\n", q(u.Host))
	}
	fmt.Fprintf(&b, "mcpServers:\n")
	fmt.Fprintf(&b, "  %s:\n    command: %s\n    args: [%s]\n", stdioServer, q(exe), q(UpstreamCommand))
	fmt.Fprintf(&b, "  %s:\n    type: streamable-http\n    url: %s\n", httpServer, q(upstreamURL))
	return b.Bytes()
}

// startGateway runs `switchboard serve` on a free loopback port with the
// configuration at cfgPath and waits until it has connected to both upstream
// servers. It returns the gateway's base URL.
func startGateway(ctx context.Context, exe, cfgPath string, hc *http.Client) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	c, _, err := startChild("gateway", exe, false, "serve", "--insecure-no-auth", "--config", cfgPath, "--listen", addr)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := waitConnected(ctx, c, base, hc); err != nil {
		c.stop(true, 5*time.Second)
		return nil, "", err
	}
	return c, base, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitConnected polls the gateway's server list until both upstream servers
// are connected.
func waitConnected(ctx context.Context, c *child, base string, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		ok, status := serversConnected(ctx, base, hc)
		if ok {
			return nil
		}
		if status != "" {
			last = status
		}
		select {
		case <-c.exited:
			return c.failure(errors.New("the gateway stopped"))
		case <-ctx.Done():
			return c.failure(fmt.Errorf("the gateway did not connect to the upstream servers: %v (last status: %s)", ctx.Err(), last))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func serversConnected(ctx context.Context, base string, hc *http.Client) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/servers", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	var body struct {
		Servers []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			LastError string `json:"lastError"`
		} `json:"servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, err.Error()
	}
	connected := 0
	var status []string
	for _, s := range body.Servers {
		if s.Name != stdioServer && s.Name != httpServer {
			continue
		}
		if s.State == "connected" {
			connected++
		}
		status = append(status, fmt.Sprintf("%s %s %s", s.Name, s.State, s.LastError))
	}
	return connected == 2, strings.Join(status, "; ")
}

// errNoRSS is returned where a process's resident set size cannot be read.
var errNoRSS = errors.New("RSS is only read on Linux")

// rssKiB returns a process's resident set size in KiB.
func rssKiB(pid int) (int64, error) {
	if runtime.GOOS != "linux" {
		return 0, errNoRSS
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// anonKiB returns a process's anonymous resident memory in KiB: RSS less
// the pages of the executable (and other files) that are mapped in.
func anonKiB(pid int) (int64, error) {
	if runtime.GOOS != "linux" {
		return 0, errNoRSS
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return statusKiB(b, "RssAnon:")
}

// parseVmRSS reads the VmRSS line of /proc/PID/status ("VmRSS:  1234 kB").
func parseVmRSS(status []byte) (int64, error) { return statusKiB(status, "VmRSS:") }

func statusKiB(status []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", key, line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s line", key)
}

// lastLines keeps the last lines written to it.
type lastLines struct {
	max int

	mu      sync.Mutex // guards the fields below
	lines   []string
	partial []byte
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		if len(l.lines) > l.max {
			l.lines = l.lines[len(l.lines)-l.max:]
		}
	}
	if len(l.partial) > 4096 {
		l.partial = l.partial[:4096]
	}
	return len(p), nil
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(l.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(l.partial))
	}
	return strings.Join(lines, "\n")
}
