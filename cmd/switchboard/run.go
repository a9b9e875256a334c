package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	_ "time/tzdata" // zones for get_current_time on machines without zoneinfo

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/app"
	"github.com/switchboard-mcp/switchboard/internal/bench"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// env is the process environment, injected so that tests can run commands
// in-process.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	getwd     func() (string, error)
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

const usage = `Switchboard: an MCP hub, gateway and agent host.

Usage:
  switchboard serve [--config FILE] [--listen HOST:PORT] [--insecure-no-auth]
                    (state in server.dataDir, default ./switchboard-data)
  switchboard stdio [--config FILE]            serve all tools over stdin/stdout
  switchboard serve-tools [--config FILE] [--http 127.0.0.1:PORT]   only the built-in tools
  switchboard servers [--config FILE] [--json] show each server's status
  switchboard tools [--config FILE] [--json] [SERVER]
  switchboard call [--config FILE] [--json] SERVER TOOL [JSON-ARGS]
  switchboard config check [FILE]
  switchboard bench [--calls N] [--sessions N] [--idle N] [--json]
  switchboard chat [--agent NAME] [--model provider/model] [--server NAME]... [-p QUESTION] [--json] [--url URL --token T]
  switchboard users add USERNAME [--role admin|user] [--password-stdin] | users list
  switchboard tokens create USERNAME [--name NAME]   personal API key
  switchboard secrets rotate [--continue]
  switchboard credentials set SERVER VAR --user USERNAME   value from stdin
  switchboard credentials clear SERVER --user USERNAME | credentials status --user USERNAME
  switchboard version
`

func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return usageError{"missing command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, e)
	case "stdio":
		return cmdStdio(ctx, rest, e)
	case "serve-tools":
		return cmdServeTools(ctx, rest, e)
	case "servers":
		return cmdServers(ctx, rest, e)
	case "tools":
		return cmdTools(ctx, rest, e)
	case "call":
		return cmdCall(ctx, rest, e)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			return usageError{"usage: switchboard config check [FILE]"}
		}
		return cmdConfigCheck(rest[1:], e)
	case "bench":
		return cmdBench(ctx, rest, e)
	case "chat":
		return cmdChat(ctx, rest, e)
	case "users":
		return cmdUsers(ctx, rest, e)
	case "tokens":
		return cmdTokens(ctx, rest, e)
	case "secrets":
		return cmdSecrets(ctx, rest, e)
	case "credentials":
		return cmdCredentials(ctx, rest, e)
	case bench.UpstreamCommand: // hidden: the upstream server bench starts
		return cmdBenchUpstream(ctx, rest, e)
	case "version", "--version", "-v":
		fmt.Fprintln(e.stdout, "switchboard", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	fmt.Fprint(e.stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newFlags(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses flags wherever they appear among the arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func loadConfig(path string, e *env) (*config.Config, error) {
	p, err := config.Find(path, func(f string) error { _, err := os.Stat(f); return err })
	if err != nil {
		return nil, err
	}
	if p == "" {
		return config.Default(), nil
	}
	return config.Load(p, e.lookupEnv)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func cmdServe(ctx context.Context, args []string, e *env) error {
	fs := newFlags("serve", e)
	cfgPath := fs.String("config", "", "config file (default ./switchboard.yaml if present, else the built-in default)")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:8080)")
	noAuth := fs.Bool("insecure-no-auth", false, "serve without sign-in or tokens, for single-user local use (loopback addresses only)")
	verbose := fs.Bool("v", false, "debug logging")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := newLogger(e.stderr, level)
	if len(cfg.IgnoredSections) > 0 {
		logger.Info("ignoring config sections that Switchboard does not use", slog.String("sections", strings.Join(cfg.IgnoredSections, ", ")))
	}
	addr := cfg.Listen
	if *listen != "" {
		addr = *listen
	}
	if *noAuth && !isLoopbackAddr(addr) {
		return usageError{fmt.Sprintf("--insecure-no-auth serves every tool to anyone who can connect, so it is allowed on loopback addresses only, not %s", addr)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	a, err := app.New(ctx, cfg, &app.Options{
		Logger: logger, LookupEnv: e.lookupEnv, Version: version(),
		Serve: true, Insecure: *noAuth, Addr: ln.Addr().String(),
	})
	if err != nil {
		return err
	}
	defer a.Close()
	a.Start(ctx, 3*time.Second)
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("switchboard listening", slog.String("url", "http://"+ln.Addr().String()+"/mcp"), slog.String("config", cfg.File), slog.Int("servers", len(cfg.Servers)+1))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func cmdStdio(ctx context.Context, args []string, e *env) error {
	fs := newFlags("stdio", e)
	cfgPath := fs.String("config", "", "config file")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	// stdout carries the protocol; logs go to stderr only.
	logger := newLogger(e.stderr, slog.LevelWarn)
	a, err := app.New(ctx, cfg, &app.Options{Logger: logger, LookupEnv: e.lookupEnv, Version: version()})
	if err != nil {
		return err
	}
	defer a.Close()
	a.Start(ctx, 30*time.Second)
	var t mcp.Transport = &mcp.StdioTransport{}
	if f, ok := e.stdin.(*os.File); !ok || f != os.Stdin {
		t = &mcp.IOTransport{Reader: io.NopCloser(e.stdin), Writer: nopWriteCloser{e.stdout}}
	}
	err = a.Gateway().ServeStdio(ctx, t)
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// localApp starts the hub from config, waits for the servers to connect and
// returns it, for the one-shot commands.
func localApp(ctx context.Context, cfgPath string, e *env) (*app.App, error) {
	cfg, err := loadConfig(cfgPath, e)
	if err != nil {
		return nil, err
	}
	a, err := app.New(ctx, cfg, &app.Options{LookupEnv: e.lookupEnv, Version: version()})
	if err != nil {
		return nil, err
	}
	a.Start(ctx, 60*time.Second)
	return a, nil
}

func cmdServers(ctx context.Context, args []string, e *env) error {
	fs := newFlags("servers", e)
	cfgPath := fs.String("config", "", "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := localApp(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	st := a.Hub().Statuses()
	// Which built-in tools the configuration leaves out, and why.
	missing := a.UnavailableTools()
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"servers": st, "unavailableTools": missing})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTRANSPORT\tSTATE\tTOOLS\tRESOURCES\tPROMPTS\tDETAIL")
	for _, s := range st {
		detail := s.LastError
		if detail == "" && s.ServerName != "" {
			detail = s.ServerName + " " + s.ServerVersion
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Transport, s.State, s.Tools, s.Resources+s.ResourceTemplates, s.Prompts, detail)
	}
	tw.Flush()
	for _, s := range st {
		if len(s.StderrTail) > 0 && s.State != hub.StateConnected {
			fmt.Fprintf(e.stdout, "\n%s stderr (last lines):\n  %s\n", s.Name, strings.Join(s.StderrTail, "\n  "))
		}
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintln(e.stdout, "\nbuilt-in tools not offered:")
		for _, n := range names {
			fmt.Fprintf(e.stdout, "  %s: %s\n", n, missing[n])
		}
	}
	return nil
}

func cmdTools(ctx context.Context, args []string, e *env) error {
	fs := newFlags("tools", e)
	cfgPath := fs.String("config", "", "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	a, err := localApp(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	type row struct {
		Server      string `json:"server"`
		Name        string `json:"name"`
		Qualified   string `json:"qualifiedName"`
		Description string `json:"description,omitempty"`
		InputSchema any    `json:"inputSchema,omitempty"`
	}
	var rows []row
	for _, c := range a.Hub().Conns() {
		if len(pos) > 0 && pos[0] != c.Name() {
			continue
		}
		cat := c.Catalog()
		if cat == nil {
			continue
		}
		for _, t := range cat.Tools {
			rows = append(rows, row{c.Name(), t.Name, hub.QualifiedName(c.Name(), t.Name), t.Description, t.InputSchema})
		}
	}
	if len(pos) > 0 {
		if _, err := a.Hub().Conn(pos[0]); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"tools": rows})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Server, r.Name, firstLine(r.Description, 80))
	}
	tw.Flush()
	for _, s := range a.Hub().Statuses() {
		if s.State != hub.StateConnected && (len(pos) == 0 || pos[0] == s.Name) {
			fmt.Fprintf(e.stderr, "note: %s is %s: %s\n", s.Name, s.State, s.LastError)
		}
	}
	return nil
}

func cmdCall(ctx context.Context, args []string, e *env) error {
	fs := newFlags("call", e)
	cfgPath := fs.String("config", "", "config file")
	asJSON := fs.Bool("json", false, "print the whole result as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || len(pos) > 3 {
		return usageError{"usage: switchboard call SERVER TOOL [JSON-ARGS]"}
	}
	var arguments map[string]any
	if len(pos) == 3 && strings.TrimSpace(pos[2]) != "" {
		if err := json.Unmarshal([]byte(pos[2]), &arguments); err != nil {
			return usageError{fmt.Sprintf("arguments must be a JSON object: %v", err)}
		}
	}
	a, err := localApp(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := a.Hub().Conn(pos[0])
	if err != nil {
		return err
	}
	res, err := c.CallTool(hub.WithDownstream(ctx, cliDownstream{}), &mcp.CallToolParams{Name: pos[1], Arguments: arguments})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		printResult(e.stdout, res)
	}
	if res.IsError {
		return errors.New("the tool reported an error")
	}
	return nil
}

func printResult(w io.Writer, res *mcp.CallToolResult) {
	printed := false
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			fmt.Fprintln(w, c.Text)
			printed = true
		case *mcp.ImageContent:
			fmt.Fprintf(w, "[image %s, %d bytes]\n", c.MIMEType, len(c.Data))
		case *mcp.AudioContent:
			fmt.Fprintf(w, "[audio %s, %d bytes]\n", c.MIMEType, len(c.Data))
		case *mcp.ResourceLink:
			fmt.Fprintf(w, "[resource link %s]\n", c.URI)
		case *mcp.EmbeddedResource:
			fmt.Fprintf(w, "[resource %s]\n", c.Resource.URI)
		}
	}
	if res.StructuredContent != nil {
		b, _ := json.MarshalIndent(res.StructuredContent, "", "  ")
		if printed {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, string(b))
	}
}

// cliDownstream answers what a server asks of a terminal user: nothing can
// be sampled or asked interactively, so such requests are declined.
type cliDownstream struct{}

func (cliDownstream) CreateMessage(context.Context, *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error) {
	return nil, errors.New("switchboard call cannot answer sampling requests")
}
func (cliDownstream) Elicit(context.Context, *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	return &mcp.ElicitResult{Action: "decline"}, nil
}
func (cliDownstream) ListRoots(context.Context, *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
}
func (cliDownstream) Log(context.Context, *mcp.LoggingMessageParams) error { return nil }
func (cliDownstream) Progress(context.Context, *mcp.ProgressNotificationParams) error {
	return nil
}

func cmdConfigCheck(args []string, e *env) error {
	path := ""
	if len(args) > 0 {
		path = args[0]
	}
	cfg, err := loadConfig(path, e)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, config.Explain(cfg))
	return nil
}

func cmdBench(ctx context.Context, args []string, e *env) error {
	fs := newFlags("bench", e)
	o := bench.Options{}
	fs.IntVar(&o.Calls, "calls", 2000, "calls per session in each measurement")
	fs.IntVar(&o.Sessions, "sessions", 8, "concurrent sessions")
	fs.IntVar(&o.IdleSessions, "idle", 1000, "idle downstream sessions for the memory measurement")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	o.Progress = e.stderr
	rep, err := bench.Run(ctx, &o)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, rep)
	}
	rep.Print(e.stdout)
	return nil
}

// cmdBenchUpstream serves bench's upstream server: over stdio, or over
// streamable HTTP at --http until stdin closes.
func cmdBenchUpstream(ctx context.Context, args []string, e *env) error {
	fs := newFlags(bench.UpstreamCommand, e)
	addr := fs.String("http", "", "serve streamable HTTP on this address instead of stdio")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	return bench.ServeUpstream(ctx, &bench.UpstreamOptions{HTTPAddr: *addr, Stdin: e.stdin, Stdout: e.stdout})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}
