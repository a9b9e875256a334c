package hub

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
)

// ErrNoDownstream is returned to an upstream server when it sends a request
// (sampling, elicitation, roots) that no downstream party can answer.
var ErrNoDownstream = errors.New("no downstream client is able to answer this request")

// UserMetaKey is the _meta key under which the hub tells the built-in
// in-process server who is calling: the caller's context does not cross the
// in-memory transport. The hub removes the key from every request it
// forwards, so only the hub sets it.
const UserMetaKey = "io.switchboard/user"

// call is one request in flight on an upstream connection.
type call struct {
	seq        uint64
	downstream Downstream // nil when nobody downstream is waiting
	token      any        // the downstream's progress token, nil if it asked for none
	upstream   any        // the progress token the upstream server sees; nil: none sent
	reset      func()     // restarts the call's timeout; progress resets it
}

// inflight tracks the requests in flight on one upstream session so that
// server-to-client messages find the downstream party that caused them.
//
// A message is routed, in order of preference, by (1) its progress token,
// (2) the single request in flight on the connection. When several
// downstream parties have requests in flight on one shared connection and
// the message carries nothing that identifies its request (stdio and
// pre-2026 HTTP servers send sampling and log messages without a request
// id), the most recently started request wins.
type inflight struct {
	mu      sync.Mutex // guards the fields below
	next    uint64
	calls   map[uint64]*call
	byToken map[any]*call // by the upstream's progress token (see tokenKey)
}

// add registers c. With token, c gets the progress token the upstream sees:
// the downstream's own when no other call in flight uses it, else one of
// the hub's.
func (f *inflight) add(c *call, token bool) (done func()) {
	f.mu.Lock()
	f.next++
	c.seq = f.next
	if f.calls == nil {
		f.calls = make(map[uint64]*call)
		f.byToken = make(map[any]*call)
	}
	f.calls[c.seq] = c
	if token {
		c.upstream = tokenKey(c.token)
		if _, taken := f.byToken[c.upstream]; !sendable(c.upstream) || taken || isHubToken(c.token) {
			c.upstream = progressPrefix + strconv.FormatUint(c.seq, 10)
		}
		f.byToken[tokenKey(c.upstream)] = c
	}
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.calls, c.seq)
		if c.upstream != nil && f.byToken[tokenKey(c.upstream)] == c {
			delete(f.byToken, tokenKey(c.upstream))
		}
		f.mu.Unlock()
	}
}

// sendable reports whether the SDK can send tok as a progress token.
func sendable(tok any) bool {
	switch tok.(type) {
	case int64, string:
		return true
	}
	return false
}

// isHubToken reports whether a downstream token looks like one the hub
// makes up, which could later collide with one.
func isHubToken(tok any) bool {
	s, ok := tok.(string)
	return ok && strings.HasPrefix(s, progressPrefix)
}

// tokenKey makes progress tokens comparable however JSON decoded them: a
// number may arrive as float64 or int64 from the two sides.
func tokenKey(tok any) any {
	switch v := tok.(type) {
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		return v.String()
	}
	return tok
}

// busy reports whether any request is in flight.
func (f *inflight) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls) > 0
}

func (f *inflight) byProgressToken(tok any) *call {
	if tok == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byToken[tokenKey(tok)]
}

// latest returns the most recently started call with a downstream party.
func (f *inflight) latest() *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best *call
	for _, c := range f.calls {
		if c.downstream != nil && (best == nil || c.seq > best.seq) {
			best = c
		}
	}
	return best
}

func (f *inflight) route() Downstream {
	if c := f.latest(); c != nil {
		return c.downstream
	}
	return nil
}
