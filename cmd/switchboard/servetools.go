package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/app"
	"github.com/switchboard-mcp/switchboard/internal/tools"
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
		s := tools.NewServer(opts)
		var t mcp.Transport = &mcp.StdioTransport{}
		if f, ok := e.stdin.(*os.File); !ok || f != os.Stdin {
			t = &mcp.IOTransport{Reader: io.NopCloser(e.stdin), Writer: nopWriteCloser{e.stdout}}
		}
		err := s.Run(ctx, t)
		if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	if !isLoopbackAddr(*addr) {
		return usageError{fmt.Sprintf("serve-tools has no sign-in, so --http takes a loopback address only, not %s; to offer the tools to others, use serve", *addr)}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	h := tools.NewHandler(opts)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxRequestBytes)
		h.ServeHTTP(w, r)
	})}
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

func loopbackOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
