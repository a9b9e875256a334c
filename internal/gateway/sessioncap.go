package gateway

import (
	"errors"
	"fmt"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// attrUser is the log attribute naming a user.
const attrUser = "user"

// DefaultMaxSessionsPerUser is Options.MaxSessionsPerUser's default.
const DefaultMaxSessionsPerUser = 64

// sessionCapRetryAfter is what a refused client is told to wait.
const sessionCapRetryAfter = 10 * time.Second

// errAllBusy is returned by admit when a user is at the limit and every one
// of their sessions has a request in flight.
var errAllBusy = errors.New("every session of the user is busy")

// sessionCap bounds the stateful downstream sessions (streamable HTTP and
// legacy SSE) each user holds on this replica, so that one user — a leaking
// client, or a script opening sessions in a loop — cannot grow the
// replica's memory without bound. A user at the limit who opens another
// session gets the one of theirs idle the longest closed first; when every
// one has a request in flight the new session is refused. Anonymous
// requests (no-auth mode) share the limit of the user "".
//
// A nil *sessionCap has no limit.
type sessionCap struct {
	max  int
	idle time.Duration // sessions idle this long are gone already (SessionTimeout)
	now  func() time.Time

	mu       sync.Mutex             // guards the fields below
	sessions map[string]*capSession // by session id
	users    map[string]*capUser    // by user
	admitted int                    // admissions since the last sweep
}

type capUser struct {
	sessions map[string]*capSession // by session id
	pending  int                    // admitted, session not yet opened
}

type capSession struct {
	id, user string
	last     time.Time // a POST for it last started or ended
	inFlight int       // POSTs being served: tool calls and other requests
	close    func()    // ends the session; run without the lock
}

// newSessionCap returns a cap of max sessions per user, or nil (no cap)
// when max is negative. Zero: DefaultMaxSessionsPerUser.
func newSessionCap(max int, idle time.Duration, now func() time.Time) *sessionCap {
	if max < 0 {
		return nil
	}
	if max == 0 {
		max = DefaultMaxSessionsPerUser
	}
	return &sessionCap{max: max, idle: idle, now: now,
		sessions: map[string]*capSession{}, users: map[string]*capUser{}}
}

// admission is a place kept for one session a request may open.
type admission struct {
	c    *sessionCap
	user string
	done bool
}

// admit keeps a place for a session user is about to open, closing the
// user's longest-idle session first when they are at the limit. It fails
// with errAllBusy when all of them are busy.
func (c *sessionCap) admit(user string) (*admission, error) {
	if c == nil {
		return &admission{}, nil
	}
	c.mu.Lock()
	now := c.now()
	c.sweepLocked(now)
	u := c.users[user]
	if u == nil {
		u = &capUser{sessions: map[string]*capSession{}}
		c.users[user] = u
	}
	var victim *capSession
	if len(u.sessions)+u.pending >= c.max {
		for _, s := range u.sessions {
			if s.inFlight == 0 && (victim == nil || s.last.Before(victim.last)) {
				victim = s
			}
		}
		if victim == nil {
			c.mu.Unlock()
			return nil, errAllBusy
		}
		c.forgetLocked(victim)
	}
	u.pending++
	c.mu.Unlock()
	if victim != nil && victim.close != nil {
		// Synchronously, so that the place is free before the new session
		// exists.
		victim.close()
	}
	return &admission{c: c, user: user}, nil
}

// opened turns the place into session id, which close ends.
func (a *admission) opened(id string, close func()) {
	if a.c == nil || a.done {
		return
	}
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	a.done = true
	u := c.users[a.user]
	u.pending--
	s := &capSession{id: id, user: a.user, last: c.now(), close: close}
	c.sessions[id] = s
	u.sessions[id] = s
}

// release gives the place back if no session was opened in it.
func (a *admission) release() {
	if a.c == nil || a.done {
		return
	}
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	a.done = true
	u := c.users[a.user]
	u.pending--
	if len(u.sessions) == 0 && u.pending == 0 {
		delete(c.users, a.user)
	}
}

// begin notes a POST for session id — a tool call, another request being
// answered, or a notification — which keeps the session from being closed
// until end is called, and makes it the user's most recently active one.
// (A GET, the stream a client listens on, is not activity.)
func (c *sessionCap) begin(id string) (end func()) {
	if c == nil {
		return func() {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[id]
	if s == nil {
		return func() {}
	}
	s.last = c.now()
	s.inFlight++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		s.last = c.now()
		s.inFlight--
	}
}

// forget drops a session that ended.
func (c *sessionCap) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.forgetLocked(s)
	}
}

func (c *sessionCap) forgetLocked(s *capSession) {
	delete(c.sessions, s.id)
	if u := c.users[s.user]; u != nil {
		delete(u.sessions, s.id)
		if len(u.sessions) == 0 && u.pending == 0 {
			delete(c.users, s.user)
		}
	}
}

// sweepLocked drops, now and then, sessions idle past the SDK's session
// timeout: the SDK closed them without the gateway hearing of it.
func (c *sessionCap) sweepLocked(now time.Time) {
	if c.admitted++; c.admitted < 1024 || c.idle <= 0 {
		return
	}
	c.admitted = 0
	for _, s := range c.sessions {
		if s.inFlight == 0 && now.Sub(s.last) > c.idle {
			c.forgetLocked(s)
		}
	}
}

// writeTooManySessions answers an initialize refused by the cap: HTTP 429
// with Retry-After, and a JSON-RPC error a client can show.
func writeTooManySessions(w http.ResponseWriter, max int) {
	w.Header().Set("Retry-After", strconv.Itoa(int(sessionCapRetryAfter/time.Second)))
	writeJSONError(w, http.StatusTooManyRequests, fmt.Sprintf(
		"too many MCP sessions: you already have %d open on this server, each with a request in progress; "+
			"try again when one finishes, or end a session you no longer use (HTTP DELETE with its Mcp-Session-Id)", max))
}

// endSession closes stateful session sid held by h the way a client would,
// with a DELETE, so that the SDK forgets it and later requests for it get
// 404; h must be wrapped for the session's user.
func (g *Gateway) endSession(hkey handlerKey, sid, user string) {
	// Closing the SDK's session is what a DELETE would do; the SDK handler
	// then forgets it.
	g.mu.Lock()
	var servers []*mcp.Server
	if e := g.handlers[hkey]; e != nil {
		for _, vk := range e.views {
			if v := g.views[vk]; v != nil {
				servers = append(servers, v.server)
			}
		}
	}
	g.mu.Unlock()
	for _, srv := range servers {
		for ss := range srv.Sessions() {
			if ss.ID() == sid {
				ss.Close()
			}
		}
	}
	g.closed(sid)
	g.logger.Info("closed the longest-idle session of a user at the session limit", slog.String(attrUser, user))
}

// discardWriter is the response writer of a request the gateway makes to
// the SDK handler itself.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
