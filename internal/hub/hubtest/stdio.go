package hubtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// stdioServerPkg is the package of the stdio server binary.
const stdioServerPkg = "github.com/switchboard-mcp/switchboard/internal/hub/hubtest/stdioserver"

// BuildStdioServer builds the stdio test server into dir and returns the
// binary's path. Call it once, from TestMain: a build takes seconds.
func BuildStdioServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "hubtest-stdio")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, stdioServerPkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the hubtest stdio server: %w\n%s", err, out.String())
	}
	return bin, nil
}

// StdioOptions are the arguments of one configured stdio server.
type StdioOptions struct {
	ServerOptions
	// Value is what whoami answers: a literal, or a placeholder the host
	// expands per user ("{{MY_VAR}}").
	Value string
	// PIDDir is where every process records itself (see Children). Empty:
	// nowhere.
	PIDDir string
	// DownFile, while it exists, makes every new process exit at once with
	// a message on stderr: the server is down.
	DownFile string
}

// Args returns the command-line arguments of the stdio server binary.
func (o StdioOptions) Args() []string {
	args := []string{"-name", o.Name, "-value", o.Value}
	if o.Instructions != "" {
		args = append(args, "-instructions", o.Instructions)
	}
	if o.PIDDir != "" {
		args = append(args, "-pid-dir", o.PIDDir)
	}
	if o.DownFile != "" {
		args = append(args, "-down-file", o.DownFile)
	}
	return args
}

// Child is one recorded process of the stdio server.
type Child struct {
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"` // the process that started it
	Name  string `json:"name"`
	Value string `json:"value"` // what its whoami answers
	dir   string
}

// RecordChild records the calling process in dir. The stdio server calls it
// at start.
func RecordChild(dir, name, value string) error {
	c := Child{PID: os.Getpid(), PPID: os.Getppid(), Name: name, Value: value}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+strconv.Itoa(c.PID))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record child: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, strconv.Itoa(c.PID)+".json"))
}

// Children returns the processes recorded in dir that are still alive
// (neither gone nor a zombie), by pid.
func Children(dir string) ([]Child, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Child
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var c Child
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		c.dir = dir
		if c.Alive() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Child) int { return a.PID - b.PID })
	return out, nil
}

// Alive reports whether the process still runs: it exists, is not a zombie
// and is still the stdio server that recorded itself (not a reused pid).
func (c Child) Alive() bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.PID))
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat("/proc/self/stat"); err == nil {
			return false // a system with /proc: the process is gone
		}
		p, err := os.FindProcess(c.PID)
		return err == nil && p.Signal(syscall.Signal(0)) == nil
	}
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses (proc(5)).
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.PID))
	return err == nil && bytes.Contains(cmdline, []byte("-pid-dir\x00"+c.dir+"\x00"))
}

// Kill kills the process with SIGKILL, as a crash would end it.
func (c Child) Kill() error {
	p, err := os.FindProcess(c.PID)
	if err != nil {
		return err
	}
	return p.Kill()
}
