package hubtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPOptions configure an HTTPServer. The zero value is valid.
type HTTPOptions struct {
	ServerOptions
	// ValueHeader names the request header whose value whoami answers
	// (for example a user's customUserVar). Empty: whoami answers Value.
	ValueHeader string
	// Value is what whoami answers without ValueHeader.
	Value string
	// NoGETStream makes the server answer 405 to GET, as the spec lets a
	// server that offers no standalone SSE stream do: a client then has no
	// open stream that breaks when the server dies.
	NoGETStream bool

	// value, if set, replaces ValueHeader and Value (the OAuth server's
	// user of the token): the value of a request with these headers.
	value func(http.Header) string
	// routes adds handlers beside /mcp to each life's mux.
	routes func(*http.ServeMux)
	// protect wraps /mcp.
	protect func(http.Handler) http.Handler
}

// HTTPServer is a streamable-HTTP MCP server at URL on a fixed loopback
// port. Stop kills it (the listener and every connection close at once) and
// Start brings it back on the same port as a new process would: with a new
// MCP server that answers 404 to the session ids of its previous life.
type HTTPServer struct {
	// URL is the MCP endpoint, http://127.0.0.1:PORT/mcp.
	URL string
	// Addr is HOST:PORT.
	Addr string

	opts HTTPOptions

	mu      sync.Mutex // guards the fields below
	srv     *http.Server
	mcp     *mcp.Server
	noGET   bool
	lives   int
	gets    int // GET requests answered with a stream
	refused int // GET requests answered 405
	used    []use
}

// use is one request of a client in a session.
type use struct {
	at             time.Time
	session, value string
}

// NewHTTPServer starts an HTTPServer on a free loopback port; it stops when
// the test ends.
func NewHTTPServer(t testing.TB, opts *HTTPOptions) *HTTPServer {
	t.Helper()
	s := &HTTPServer{}
	if opts != nil {
		s.opts = *opts
	}
	s.noGET = s.opts.NoGETStream
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.URL = "http://" + s.Addr + "/mcp"
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// Base is the server's origin, http://127.0.0.1:PORT.
func (s *HTTPServer) Base() string { return "http://" + s.Addr }

// SetGETStream sets whether the server offers a standalone GET stream from
// its next life on.
func (s *HTTPServer) SetGETStream(on bool) {
	s.mu.Lock()
	s.noGET = !on
	s.mu.Unlock()
}

// Running reports whether the server is up.
func (s *HTTPServer) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// Lives counts how many times the server was started.
func (s *HTTPServer) Lives() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lives
}

// GETStreams counts the GET requests answered with a stream, and those
// refused with 405.
func (s *HTTPServer) GETStreams() (served, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.refused
}

// SessionsUsed returns, per caller value (see HTTPOptions.ValueHeader), the
// MCP sessions that received requests since t, whichever life they
// belong to.
func (s *HTTPServer) SessionsUsed(since time.Time) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, u := range s.used {
		if u.session != "" && !u.at.Before(since) && !slices.Contains(out[u.value], u.session) {
			out[u.value] = append(out[u.value], u.session)
		}
	}
	return out
}

// Sessions counts the MCP sessions of the current life.
func (s *HTTPServer) Sessions() int {
	s.mu.Lock()
	m := s.mcp
	s.mu.Unlock()
	if m == nil {
		return 0
	}
	n := 0
	for range m.Sessions() {
		n++
	}
	return n
}

// Stop kills the server: the listener and every open connection (streams
// included) close at once. Stopping a stopped server does nothing.
func (s *HTTPServer) Stop() {
	s.mu.Lock()
	srv, m := s.srv, s.mcp
	s.srv, s.mcp = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close()
	for ss := range m.Sessions() {
		ss.Close()
	}
}

// Start brings a stopped server back on the same port. Starting a running
// server does nothing.
func (s *HTTPServer) Start() error {
	if s.Running() {
		return nil
	}
	// The port was ours a moment ago; a connection of the previous life
	// may hold it for a moment while it closes.
	var (
		ln  net.Listener
		err error
	)
	for deadline := time.Now().Add(5 * time.Second); ; {
		ln, err = net.Listen("tcp", s.Addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restart %s on %s: %w", s.opts.Name, s.Addr, err)
	}
	s.serve(ln)
	return nil
}

// Restart stops the server and starts it again at once: a server that
// restarts faster than its clients notice.
func (s *HTTPServer) Restart() error {
	s.Stop()
	return s.Start()
}

// serve starts a new life on ln.
func (s *HTTPServer) serve(ln net.Listener) {
	value := s.opts.value
	if value == nil {
		value = func(h http.Header) string {
			if s.opts.ValueHeader != "" {
				return h.Get(s.opts.ValueHeader)
			}
			return s.opts.Value
		}
	}
	m := NewMCPServer(s.opts.ServerOptions, func(req *mcp.CallToolRequest) string { return value(req.Extra.Header) }, false)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return m }, nil)
	s.mu.Lock()
	refuse := s.noGET // for the whole life
	s.mu.Unlock()
	var endpoint http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			s.mu.Lock()
			if refuse {
				s.refused++
			} else {
				s.gets++
			}
			s.mu.Unlock()
			if refuse {
				w.Header().Set("Allow", "POST, DELETE")
				http.Error(w, "this server offers no standalone stream", http.StatusMethodNotAllowed)
				return
			}
		}
		u := use{at: time.Now(), session: r.Header.Get("Mcp-Session-Id"), value: value(r.Header)}
		h.ServeHTTP(w, r)
		if u.session == "" { // initialize: the session id is in the answer
			u.session = w.Header().Get("Mcp-Session-Id")
		}
		s.mu.Lock()
		s.used = append(s.used, u)
		s.mu.Unlock()
	})
	if s.opts.protect != nil {
		endpoint = s.opts.protect(endpoint)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", endpoint)
	if s.opts.routes != nil {
		s.opts.routes(mux)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv, s.mcp = srv, m
	s.lives++
	s.mu.Unlock()
	go srv.Serve(ln)
}
