package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/cluster"
)

// Headers of a request one replica passes to another.
const (
	// forwardedHeader marks a request as passed on by a replica; such a
	// request is never passed on again.
	forwardedHeader = "X-Switchboard-Forwarded"
	// forwardedUserHeader carries the signed forwardClaims. The first
	// replica authenticated the user; this header is how the second one
	// learns who it was (the bearer token does not travel on).
	forwardedUserHeader = "X-Switchboard-Forwarded-User"
)

// forwardTTL bounds how long a signed forwarding header is accepted, to keep
// a captured one from being replayed later. Replicas' clocks must agree
// within it.
const forwardTTL = time.Minute

// directoryTimeout bounds one call to the session directory in a request.
const directoryTimeout = 3 * time.Second

// Log attribute keys.
const (
	attrSession = "session"
	attrReplica = "replica"
	attrError   = "error"
)

// forwardClaims is what a replica vouches for when it passes a request on.
type forwardClaims struct {
	User    string `json:"u"`
	Session string `json:"s"`
	Path    string `json:"p"`
	Handler string `json:"h"` // hash of the handler key, see handlerHash
	Expires int64  `json:"e"` // Unix seconds
}

// handlerHash stands for a handler key in forwarding headers: equal keys
// mean the user has the same access at both replicas.
func handlerHash(hkey handlerKey) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q\x00%t\x00%q\x00%q", hkey.single, hkey.sse, hkey.access, hkey.user))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (g *Gateway) signForward(c forwardClaims) string {
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(g.opts.SignForward([]byte(p)))
}

func (g *Gateway) verifyForward(v string, now time.Time) (forwardClaims, bool) {
	var c forwardClaims
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return c, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, g.opts.SignForward([]byte(p))) {
		return c, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, false
	}
	return c, now.Unix() < c.Expires
}

// forward passes a request for a session that this replica does not hold
// to the replica that does, and reports whether it answered the request.
// It does not when there is no directory, the request was already passed on
// once, or no other replica holds the session: the SDK then answers.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, sid, user string, hkey handlerKey) bool {
	if g.opts.Sessions == nil || r.Header.Get(forwardedHeader) != "" || g.holds(sid) {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), directoryTimeout)
	o, err := g.opts.Sessions.Lookup(ctx, sid)
	cancel()
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		return false
	case err != nil:
		g.logger.Warn("session directory", slog.String(attrError, err.Error()))
		writeJSONError(w, http.StatusServiceUnavailable, "session directory unavailable; try again")
		return true
	case o.Replica == g.opts.ReplicaURL:
		// Ours, from before a restart: the SDK answers that it is gone.
		return false
	case o.User != user:
		writeJSONError(w, http.StatusNotFound, "session not found")
		return true
	}
	target, err := url.Parse(o.Replica)
	if err != nil || target.Host == "" {
		g.logger.Warn("session directory names a replica that is not a URL", slog.String(attrReplica, o.Replica))
		writeJSONError(w, http.StatusBadGateway, "the replica holding this session cannot be reached")
		return true
	}
	// The body is read before the answer starts: an HTTP/1 server may close
	// a request's body once its response is flushed, which would cut a
	// streamed answer short while the proxy still checks the body's end.
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.MaxRequestBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
			} else {
				writeJSONError(w, http.StatusBadRequest, "failed to read body")
			}
			return true
		}
		r = r.Clone(r.Context())
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	signed := g.signForward(forwardClaims{
		User: user, Session: sid, Path: r.URL.Path, Handler: handlerHash(hkey),
		Expires: time.Now().Add(forwardTTL).Unix(),
	})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, "1")
			pr.Out.Header.Set(forwardedUserHeader, signed)
		},
		Transport: g.opts.ForwardTransport,
		// Streams (SSE) pass through as they are written.
		FlushInterval: -1,
		// A stream the client leaves (as the SDK does once a call's answer
		// arrived) is no news.
		ErrorLog: slog.NewLogLogger(g.logger.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				g.logger.Warn("forward to replica", slog.String(attrReplica, o.Replica), slog.String(attrError, err.Error()))
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				// Nothing listens there any more: the replica, and the
				// session with it, is gone. 404 makes the client start a
				// new session (on this replica).
				g.release(sid)
				writeJSONError(w, http.StatusNotFound, "session not found (its replica is gone)")
				return
			}
			writeJSONError(w, http.StatusBadGateway, "the replica holding this session did not answer")
		},
	}
	proxy.ServeHTTP(w, r)
	return true
}

// holds reports whether this replica opened the session.
func (g *Gateway) holds(sid string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.owners[sid]
	return ok
}

// AcceptForwarded serves requests that another replica passed on (see
// Options.Sessions) and passes every other request to protected, the
// gateway's Handler behind the bearer check. A passed-on request carries
// no token: the forwarding replica checked it and vouches for the user in a
// signed header, which is verified here. A request claiming to be passed
// on whose signature does not verify is refused.
func (g *Gateway) AcceptForwarded(protected http.Handler) http.Handler {
	if g.opts.Sessions == nil {
		return protected
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(forwardedHeader) == "" && r.Header.Get(forwardedUserHeader) == "" {
			protected.ServeHTTP(w, r)
			return
		}
		c, ok := g.verifyForward(r.Header.Get(forwardedUserHeader), time.Now())
		if !ok || c.Path != r.URL.Path {
			writeJSONError(w, http.StatusForbidden, "forwarded request not accepted")
			return
		}
		sse := strings.HasPrefix(r.URL.Path, "/sse")
		if sessionOf(r, sse) != c.Session {
			writeJSONError(w, http.StatusForbidden, "forwarded request not accepted")
			return
		}
		// The bearer token came along: this replica verifies it too, and
		// it must name the user the forwarding replica saw.
		g.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, _ := userOf(r)
			g.mu.Lock()
			o, held := g.owners[c.Session]
			e := g.handlers[o.hkey]
			g.mu.Unlock()
			// Another user, or the same user whose access differs from
			// when the session opened: as at the replica itself, no such
			// session.
			if !held || e == nil || user != c.User || o.user != c.User || handlerHash(o.hkey) != c.Handler {
				writeJSONError(w, http.StatusNotFound, "session not found")
				return
			}
			g.ownedBy(c.Session, c.User) // marks it seen
			g.serve(w, r, e.h, sse, c.Session, c.User, o.hkey)
		})).ServeHTTP(w, r)
	})
}

// claimTTL is how long a directory entry outlives its last refresh: a
// session idle for SessionTimeout is closed by the SDK, and entries are
// refreshed at most every refreshEvery, so an entry of a session in use
// never expires before the session does.
func (g *Gateway) claimTTL() time.Duration     { return g.opts.SessionTimeout + g.refreshEvery() }
func (g *Gateway) refreshEvery() time.Duration { return g.opts.SessionTimeout / 4 }

// claim records in the directory that this replica holds sid.
func (g *Gateway) claim(ctx context.Context, sid string) {
	if g.opts.Sessions == nil {
		return
	}
	g.mu.Lock()
	o, ok := g.owners[sid]
	g.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), directoryTimeout)
	defer cancel()
	err := g.opts.Sessions.Claim(ctx, sid, cluster.Owner{Replica: g.opts.ReplicaURL, User: o.user}, g.claimTTL())
	if err != nil {
		// The session still works through this replica.
		g.logger.Warn("claim session", slog.String(attrError, err.Error()))
		return
	}
	g.mu.Lock()
	if o, ok := g.owners[sid]; ok {
		o.claimed = time.Now()
		g.owners[sid] = o
	}
	g.mu.Unlock()
}

// refresh claims sid again when its entry is due, keeping Redis traffic to
// one write per session per refreshEvery.
func (g *Gateway) refresh(ctx context.Context, sid string) {
	if g.opts.Sessions == nil {
		return
	}
	g.mu.Lock()
	o, ok := g.owners[sid]
	g.mu.Unlock()
	if ok && time.Since(o.claimed) >= g.refreshEvery() {
		g.claim(ctx, sid)
	}
}

// release removes sid from the directory.
func (g *Gateway) release(sid string) {
	if g.opts.Sessions == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), directoryTimeout)
	defer cancel()
	if err := g.opts.Sessions.Release(ctx, sid); err != nil {
		g.logger.Warn("release session", slog.String(attrError, err.Error()))
	}
}

// keepClaimed refreshes the claim of the session id() names until stop is
// called: a legacy SSE session can stay open, and quiet, for longer than
// the claim's ttl.
func (g *Gateway) keepClaimed(id func() string) (stop func()) {
	if g.opts.Sessions == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(g.refreshEvery())
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if sid := id(); sid != "" {
					g.refresh(context.Background(), sid)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// sseRecorder notes the session id of a legacy SSE session, from the
// endpoint event the SDK writes first ("event: endpoint\ndata:
// /sse?sessionid=...").
type sseRecorder struct {
	http.ResponseWriter
	record func(sid string)
	sid    atomic.Pointer[string]
	seen   atomic.Bool // the first write was looked at
}

func (s *sseRecorder) id() string {
	if p := s.sid.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *sseRecorder) Write(b []byte) (int, error) {
	if !s.seen.Swap(true) {
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			d, ok := bytes.CutPrefix(line, []byte("data: "))
			if !ok {
				continue
			}
			if u, err := url.Parse(string(d)); err == nil {
				if sid := u.Query().Get("sessionid"); sid != "" {
					s.record(sid)
				}
			}
			break
		}
	}
	return s.ResponseWriter.Write(b)
}

func (s *sseRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *sseRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
