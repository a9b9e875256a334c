// Package httpguard owns the checks every browser-reachable endpoint of
// Switchboard applies before its handler runs: where a request comes from
// (Origin and Sec-Fetch-Site against the allowed origins, against
// cross-site requests and CSRF) and which host it was sent to (Host
// against DNS rebinding), that JSON bodies are declared as JSON, and how
// large a body may be. The MCP endpoints, the HTTP API, the chat pages and
// the OAuth pages share this one implementation, in every auth mode.
package httpguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure a Policy. The zero value allows loopback origins and
// hosts only.
type Options struct {
	// AllowedOrigins lists browser origins ("https://claude.ai") allowed
	// besides loopback ones and PublicURL's. Nil: none.
	AllowedOrigins []string
	// PublicURL is Switchboard's public address: its origin is allowed,
	// and its host is a valid Host header behind a reverse proxy. Empty:
	// none.
	PublicURL string
}

// Policy decides whether a request may be served. It is safe for
// concurrent use.
type Policy struct {
	origins map[string]bool // scheme://host[:port], no trailing slash
	hosts   map[string]bool // lower-case host[:port] of PublicURL and allowed origins
	cop     *http.CrossOriginProtection
}

// Refusals, for callers that answer them in their own format.
var (
	ErrHost   = errors.New("the request's Host is not this server's")
	ErrOrigin = errors.New("the request comes from an origin that is not allowed")
)

// New returns the policy of opts (nil: the zero Options).
func New(opts *Options) *Policy {
	if opts == nil {
		opts = &Options{}
	}
	p := &Policy{origins: map[string]bool{}, hosts: map[string]bool{}, cop: http.NewCrossOriginProtection()}
	add := func(o string) {
		u, err := url.Parse(strings.TrimRight(o, "/"))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return
		}
		p.origins[u.Scheme+"://"+u.Host] = true
		p.hosts[strings.ToLower(u.Host)] = true
		if u.Port() == "" {
			p.hosts[strings.ToLower(u.Hostname())] = true
		}
	}
	for _, o := range opts.AllowedOrigins {
		add(o)
	}
	add(opts.PublicURL)
	return p
}

// Check returns why r may not be served, or nil:
//
//   - On a loopback listener, Host must name a loopback address or the
//     public URL's host: a page whose name was rebound to 127.0.0.1 sends
//     its own name (MCP security best practices, "Local MCP Server
//     Compromise"; the SDK applies the same rule to its handlers).
//   - An Origin header must be a loopback origin, the public URL's or an
//     allowed one, for every method: reading a response is as sensitive
//     as changing state here.
//   - Without Origin, an unsafe method sent cross-site (Sec-Fetch-Site) is
//     refused, by net/http.CrossOriginProtection.
func (p *Policy) Check(r *http.Request) error {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil && isLoopbackAddr(la.String()) {
		if !p.hostAllowed(r.Host) {
			return fmt.Errorf("%w: %q", ErrHost, r.Host)
		}
	}
	switch o := r.Header.Values("Origin"); {
	case len(o) > 1:
		return fmt.Errorf("%w: more than one Origin", ErrOrigin)
	case len(o) == 1:
		if !p.OriginAllowed(o[0]) {
			return fmt.Errorf("%w: %s", ErrOrigin, o[0])
		}
		return nil
	}
	if err := p.cop.Check(r); err != nil {
		return fmt.Errorf("%w: %v", ErrOrigin, err)
	}
	return nil
}

// OriginAllowed reports whether a browser origin may call Switchboard.
func (p *Policy) OriginAllowed(o string) bool {
	o = strings.TrimRight(o, "/")
	if p.origins[o] {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return IsLoopbackHost(u.Hostname())
}

func (p *Policy) hostAllowed(host string) bool {
	if host == "" {
		return true // HTTP/1.0 without Host: no name to have been rebound
	}
	if p.hosts[strings.ToLower(host)] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	return IsLoopbackHost(strings.Trim(h, "[]"))
}

// IsLoopbackHost reports whether h ("localhost", "127.0.0.1", "::1")
// names the local machine.
func IsLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackAddr(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		h = addr
	}
	return IsLoopbackHost(strings.Trim(h, "[]"))
}

// Handler serves r with next when Check allows it, and else answers 403
// with deny, or with a JSON {"error": …} body when deny is nil.
func (p *Policy) Handler(next http.Handler, deny func(w http.ResponseWriter, r *http.Request, err error)) http.Handler {
	if deny == nil {
		deny = func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusForbidden, err.Error())
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Check(r); err != nil {
			deny(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireJSON refuses (415) a request that has a body not declared as
// application/json: a page can send text/plain or a form to any site
// without a CORS preflight, never application/json.
func RequireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "the request body must be application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && (r.ContentLength > 0 || r.ContentLength == -1)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Limits applies per-route body limits and the write timeout: the body
// of r may be at most limit(r) bytes (http.MaxBytesReader: reading more
// fails, and the connection is closed after the response). With
// writeTimeout, the connection's write deadline is pushed forward before
// every write and flush, so it bounds a single write — a client that stops
// reading — and never a stream's or a slow call's whole response. (The
// server's ReadTimeout needs no such help: it bounds reading the request,
// and net/http lifts it once the body is read.)
func Limits(limit func(*http.Request) int64, writeTimeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit(r))
		}
		if writeTimeout > 0 {
			w = &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: writeTimeout}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineWriter pushes the write deadline forward before every write.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(b)
}

func (w *deadlineWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
