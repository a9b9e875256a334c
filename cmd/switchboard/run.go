package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"
	_ "time/tzdata" // zones for get_current_time on machines without zoneinfo

	"github.com/switchboard-mcp/switchboard/internal/app"
	"github.com/switchboard-mcp/switchboard/internal/bench"
	"github.com/switchboard-mcp/switchboard/internal/config"
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
  switchboard stdio [--config FILE] [--user NAME]   serve all tools over stdin/stdout (as a local user)
  switchboard serve-tools [--config FILE] [--http 127.0.0.1:PORT]   only the built-in tools
  switchboard servers [--config FILE] [--json] show each server's status
  switchboard tools [--config FILE] [--json] [SERVER]
  switchboard call [--config FILE] [--json] SERVER TOOL [JSON-ARGS]
  switchboard config check [FILE]
  switchboard bench [--calls N] [--sessions N] [--idle N] [--json]
  switchboard chat [--agent NAME] [--model provider/model] [--server NAME]... [-p QUESTION] [--json] [--url URL --token T]
  switchboard users add USERNAME [--role admin|user] [--password-stdin] | users list
  switchboard tokens create USER [--name NAME]   personal API key (USER: username or email)
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
	return a.Serve(ctx, ln)
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
	user := fs.String("user", "", "serve as this local user (username or email): their per-user servers, values and OAuth tokens")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	// stdout carries the protocol; logs go to stderr only.
	logger := newLogger(e.stderr, slog.LevelWarn)
	a, err := app.New(ctx, cfg, &app.Options{Logger: logger, LookupEnv: e.lookupEnv, Version: version(), User: *user})
	if err != nil {
		return err
	}
	defer a.Close()
	a.Start(ctx, 30*time.Second)
	return a.ServeStdio(ctx, e.stdin, e.stdout, e.stderr)
}

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
	return a.WriteServers(e.stdout, *asJSON)
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
	server := ""
	if len(pos) > 0 {
		server = pos[0]
	}
	return a.WriteTools(e.stdout, e.stderr, server, *asJSON)
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
	return a.Call(ctx, e.stdout, pos[0], pos[1], arguments, *asJSON)
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
