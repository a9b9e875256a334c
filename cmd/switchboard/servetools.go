package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/app"
)

// cmdServeTools is `switchboard serve-tools`: the built-in tools alone, for
// another MCP host, over stdin/stdout or, with --http, streamable HTTP on a
// loopback address.
func cmdServeTools(ctx context.Context, args []string, e *env) error {
	fs := newFlags("serve-tools", e)
	cfgPath := fs.String("config", "", "config file (its tools section)")
	addr := fs.String("http", "", "serve streamable HTTP at this loopback HOST:PORT instead of stdio")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	logger := newLogger(e.stderr, slog.LevelWarn)
	opts := app.ToolOptions(cfg, version())
	opts.Logger = logger
	if *addr == "" {
		return app.ServeToolsStdio(ctx, opts, e.stdin, e.stdout)
	}
	if !isLoopbackAddr(*addr) {
		return usageError{fmt.Sprintf("serve-tools has no sign-in, so --http takes a loopback address only, not %s; to offer the tools to others, use serve", *addr)}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: app.ToolsHandler(cfg, opts)}
	logger.Warn("serving the built-in tools", slog.String("url", "http://"+ln.Addr().String()+"/"))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
