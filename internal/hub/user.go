package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Errors of per-user connections a caller may branch on.
var (
	// ErrNeedsUser: the server connects once per user and the request
	// names none (a command-line call, an anonymous session).
	ErrNeedsUser = errors.New("this server connects per user; sign in to use it")
	// ErrTooManyConnections: a per-user or total connection cap is reached.
	ErrTooManyConnections = errors.New("too many open connections")
)

// Defaults of the per-user connection limits.
const (
	defaultIdleTimeout     = 15 * time.Minute
	defaultMaxConnsPerUser = 32
	defaultMaxUserConns    = 2000
)

// UserScoped reports whether the server keeps one connection per user: its
// config depends on who calls (placeholders, customUserVars, apiKey with
// source user, oauth, requiresOAuth), or it asked for OAuth.
func (c *Conn) UserScoped() bool {
	if c.parent != nil || c.user != "" {
		return true
	}
	return c.scoped.Load()
}

// User returns the user a per-user connection serves; "" for app-level ones.
func (c *Conn) User() string { return c.user }

// template reports whether c is the app-level entry of a per-user server,
// which never connects itself but hands out its users' connections.
func (c *Conn) template() bool {
	return c.user == "" && c.cfg != nil && c.scoped.Load()
}

// ForUser returns user's connection to the server, creating it (without
// connecting) on first use. For an app-level server it is c itself.
func (c *Conn) ForUser(user string) (*Conn, error) {
	if !c.template() {
		return c, nil
	}
	if user == "" {
		return nil, fmt.Errorf("%s: %w", c.name, ErrNeedsUser)
	}
	c.umu.Lock()
	defer c.umu.Unlock()
	if u := c.users[user]; u != nil {
		return u, nil
	}
	if c.users == nil {
		c.users = make(map[string]*Conn)
	}
	u := &Conn{name: c.name, cfg: c.cfg, hub: c.hub, user: user, parent: c, protocol: legacyProtocol,
		state: StateDisconnected, since: c.hub.now(), lastUsed: c.hub.now()}
	u.stderr = newRing(stderrBytes, func(line string) {
		c.hub.logger.Debug("stderr", slog.String(attrServer, c.name), slog.String(attrUser, user), slog.String("line", truncate(line, 512)))
	})
	c.users[user] = u
	c.hub.startReaper()
	return u, nil
}

// Binding returns the binding of the server that serves user: for a server
// that connects per user the user's own (created, not connected, on first
// use), else the shared one.
func (h *Hub) Binding(name, user string) (*Conn, error) {
	c, err := h.Conn(name)
	if err != nil {
		return nil, err
	}
	return c.ForUser(user)
}

// userConns returns the users' connections of a per-user server.
func (c *Conn) userConns() []*Conn {
	c.umu.Lock()
	defer c.umu.Unlock()
	out := make([]*Conn, 0, len(c.users))
	for _, u := range c.users {
		out = append(out, u)
	}
	return out
}

// existingUserConn returns user's connection if it was created.
func (c *Conn) existingUserConn(user string) *Conn {
	c.umu.Lock()
	defer c.umu.Unlock()
	return c.users[user]
}

// Warm starts connecting a user's binding in the background if it has
// never connected, so that its catalog is there when the user lists tools,
// and returns a channel closed when that attempt ends (nil when none
// runs). It does nothing for a binding that is connected, waiting for
// variables or for an authorization (unless that completed at another
// replica), or for a shared one.
func (c *Conn) Warm() <-chan struct{} {
	if c.user == "" || c.secondary {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.hub.ctx, 5*time.Second)
	c.authorizedElsewhere(ctx)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connecting != nil {
		return c.connecting
	}
	if c.cs != nil || c.catalog != nil || c.failures > 0 || c.state != StateDisconnected || c.authState == AuthNeedsAuthorization {
		return nil
	}
	if c.acquireSlotLocked() != nil {
		return nil
	}
	c.startConnectLocked()
	return c.connecting
}

// WarmUser connects, for a user's first session, every binding of a
// per-user server the user may use (allow; nil: every server) that can
// connect — none missing variables or waiting for an authorization — and
// waits until each has connected or failed, each bounded by its server's
// initTimeout (and by ctx), so that the first tools/list shows them.
func (h *Hub) WarmUser(ctx context.Context, user string, allow func(server string) bool) {
	if user == "" {
		return
	}
	type wait struct {
		ch      <-chan struct{}
		timeout time.Duration
	}
	var waits []wait
	for _, c := range h.conns {
		if !c.template() || (allow != nil && !allow(c.name)) {
			continue
		}
		if _, missing, err := h.VariablesFor(ctx, user, c.name); err != nil || len(missing) > 0 {
			continue
		}
		u, err := c.ForUser(user)
		if err != nil {
			continue
		}
		if ch := u.Warm(); ch != nil {
			waits = append(waits, wait{ch, c.initTimeout()})
		}
	}
	start := h.now()
	for _, w := range waits {
		left := w.timeout - h.now().Sub(start)
		if left <= 0 {
			continue
		}
		t := time.NewTimer(left)
		select {
		case <-w.ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// connectNow starts connecting a user's connection in the background
// unless it is connected or connecting: after the user changed what it
// depends on, so that their tool list follows without waiting for a call.
func (c *Conn) connectNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cs != nil || c.connecting != nil || c.hub.closing() || c.state == StateDisabled {
		return
	}
	if c.acquireSlotLocked() != nil {
		return
	}
	c.startConnectLocked()
}

// Idle reports whether a per-user connection was closed for being idle; it
// keeps its catalog and reconnects on its next use.
func (c *Conn) Idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idle
}

// acquireSlotLocked counts a connection attempt of a per-user connection
// against the caps. A connection holds its slot until its session ends.
func (c *Conn) acquireSlotLocked() error {
	if c.user == "" || c.slot {
		return nil
	}
	h := c.hub
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	if n := h.slotsByUser[c.user]; n >= h.maxConnsPerUser {
		return fmt.Errorf("%s: %w: this user has %d open connections (limit %d); idle ones close after %s", c.name, ErrTooManyConnections, n, h.maxConnsPerUser, h.idleTimeout)
	}
	if h.slotsTotal >= h.maxUserConns {
		return fmt.Errorf("%s: %w: %d per-user connections are open (limit %d)", c.name, ErrTooManyConnections, h.slotsTotal, h.maxUserConns)
	}
	h.slotsByUser[c.user]++
	h.slotsTotal++
	c.slot = true
	return nil
}

func (c *Conn) releaseSlotLocked() {
	if !c.slot {
		return
	}
	c.slot = false
	h := c.hub
	h.slotMu.Lock()
	defer h.slotMu.Unlock()
	h.slotsTotal--
	if h.slotsByUser[c.user]--; h.slotsByUser[c.user] <= 0 {
		delete(h.slotsByUser, c.user)
	}
}

func (c *Conn) touch() {
	if c.user == "" {
		return
	}
	c.mu.Lock()
	c.lastUsed = c.hub.now()
	c.mu.Unlock()
}

// startReaper starts, once, the goroutine that closes idle per-user
// connections. The hub owns it; Close stops it.
func (h *Hub) startReaper() {
	h.reaperOnce.Do(func() {
		if h.closing() {
			return
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			every := h.idleTimeout / 4
			if every < 10*time.Millisecond {
				every = 10 * time.Millisecond
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-h.ctx.Done():
					return
				case <-t.C:
					h.reapIdle()
				}
			}
		}()
	})
}

// reapIdle closes per-user connections unused for the idle timeout that
// have no request in flight. For a stdio server that stops the user's
// process. The connection keeps its catalog, so the user's tools stay
// listed, and connects again when next used.
func (h *Hub) reapIdle() {
	now := h.now()
	for _, t := range h.conns {
		if !t.template() {
			continue
		}
		reaped := false
		for _, u := range t.userConns() {
			for _, l := range []*Conn{u, u.modernLink()} {
				if l != nil && l.reapIfIdle(now) {
					reaped = true
				}
			}
		}
		if reaped {
			h.changed(t.name)
		}
	}
}

func (c *Conn) modernLink() *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.modern
}

// ModernCatalog returns the catalog of the binding's 2026-07-28 link if
// that link exists and is connected (it is not made here); nil otherwise.
func (c *Conn) ModernCatalog() *Catalog {
	m := c.modernLink()
	if m == nil || !m.Connected() {
		return nil
	}
	return m.Catalog()
}

func (c *Conn) reapIfIdle(now time.Time) bool {
	// The primary link's use counts for its secondary link too. Never hold
	// both links' locks at once.
	var last time.Time
	if c.primary != nil {
		c.primary.mu.Lock()
		last = c.primary.lastUsed
		c.primary.mu.Unlock()
	}
	c.mu.Lock()
	if c.lastUsed.After(last) {
		last = c.lastUsed
	}
	if c.cs == nil || now.Sub(last) < c.hub.idleTimeout || c.flight.busy() {
		c.mu.Unlock()
		return false
	}
	cs := c.cs
	c.cs = nil
	c.idle = true
	c.releaseSlotLocked()
	c.setStateLocked(StateDisconnected, nil)
	c.mu.Unlock()
	c.log().Debug("closing idle connection", slog.String(attrUser, c.user))
	cs.Close()
	return true
}

// ReleaseUser forgets user's bindings that hold nothing worth keeping —
// never connected, no session, no attempt or retry pending, no
// authorization waiting — so that a user who comes and goes leaves no
// memory behind; they are made again on next use. The gateway calls it
// when the user's last session closes.
func (h *Hub) ReleaseUser(user string) {
	for _, c := range h.conns {
		if !c.template() {
			continue
		}
		c.umu.Lock()
		if u := c.users[user]; u != nil && u.empty() {
			delete(c.users, user)
		}
		c.umu.Unlock()
	}
}

// empty reports whether the binding holds no state but its identity.
func (c *Conn) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs == nil && c.catalog == nil && c.connecting == nil && c.retryTimer == nil && c.modern == nil &&
		!c.slot && c.oauth == nil && c.authState != AuthNeedsAuthorization && c.authState != AuthAuthorizing && len(c.subs) == 0
}
