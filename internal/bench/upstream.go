package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// UpstreamCommand is the hidden switchboard subcommand that serves the
// benchmark's upstream server; Run re-executes the switchboard binary with it.
const UpstreamCommand = "bench-upstream"

// echoTool is the one tool of the upstream server.
const echoTool = "echo"

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

// NewUpstream returns the benchmark's upstream server: one tool, echo, that
// returns its text argument, so that a call measures the transport and the
// gateway rather than the tool.
func NewUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "switchboard-bench-upstream", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: echoTool, Description: "Returns its text argument."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	return s
}

// UpstreamOptions configure ServeUpstream. The zero value serves stdio on
// Stdin and Stdout, which must then be set.
type UpstreamOptions struct {
	// HTTPAddr, if set, makes the server listen there for streamable HTTP
	// instead of serving stdio. The endpoint URL is written to Stdout as one
	// line once the server listens, and the server stops when Stdin reaches
	// EOF, so that it never outlives the benchmark that started it.
	// Empty: stdio.
	HTTPAddr string
	// Stdin is the protocol input (stdio) or the lifeline (HTTP). Required.
	Stdin io.Reader
	// Stdout is the protocol output (stdio) or where the URL goes (HTTP).
	// Required.
	Stdout io.Writer
}

// ServeUpstream serves NewUpstream until the client goes away or ctx is done.
func ServeUpstream(ctx context.Context, o *UpstreamOptions) error {
	if o == nil || o.Stdin == nil || o.Stdout == nil {
		panic("bench: ServeUpstream needs Stdin and Stdout")
	}
	srv := NewUpstream()
	if o.HTTPAddr == "" {
		t := &mcp.IOTransport{Reader: io.NopCloser(o.Stdin), Writer: nopWriteCloser{o.Stdout}}
		err := srv.Run(ctx, t)
		if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	ln, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if _, err := fmt.Fprintf(o.Stdout, "http://%s/mcp\n", ln.Addr()); err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	eof := make(chan struct{})
	go func() {
		// Only EOF or an error ends the copy; the caller writes nothing.
		io.Copy(io.Discard, bufio.NewReader(o.Stdin))
		close(eof)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	case <-eof:
	}
	// Open standalone SSE streams would hold Shutdown until its deadline.
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		hs.Close()
	}
	<-errc
	return nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
