package hub

import (
	"context"
	"errors"
)

// StatusFor reports the server as user sees it: for a per-user server the
// state of user's own connection, its authorization and which variables
// are set. It does not connect.
func (h *Hub) StatusFor(ctx context.Context, user, name string) (Status, error) {
	c, err := h.Conn(name)
	if err != nil {
		return Status{}, err
	}
	if !c.template() || user == "" {
		st := c.Status()
		if len(Variables(c.varsConfig())) > 0 && user != "" {
			h.addVariables(ctx, &st, user)
		}
		return st, nil
	}
	u, err := c.ForUser(user)
	if err != nil {
		return Status{}, err
	}
	if u.authorizedElsewhere(ctx) {
		u.connectNow()
	}
	st := u.Status()
	if err := h.addVariables(ctx, &st, user); err != nil {
		return st, err
	}
	if len(st.MissingVariables) > 0 && st.State == StateDisconnected {
		var mv *MissingVariablesError
		if st.LastError == "" || errors.As(u.lastError(), &mv) {
			st.LastError = (&MissingVariablesError{Server: name, Names: st.MissingVariables}).Error()
		}
	}
	return st, nil
}

// StatusesFor reports every server as user sees it; see StatusFor.
func (h *Hub) StatusesFor(ctx context.Context, user string) []Status {
	out := make([]Status, 0, len(h.conns))
	for _, c := range h.conns {
		st, err := h.StatusFor(ctx, user, c.name)
		if err != nil {
			st = c.Status()
			st.LastError = err.Error()
		}
		out = append(out, st)
	}
	return out
}

func (h *Hub) addVariables(ctx context.Context, st *Status, user string) error {
	set, missing, err := h.VariablesFor(ctx, user, st.Name)
	if err != nil {
		return err
	}
	st.Variables, st.MissingVariables = set, missing
	return nil
}

func (c *Conn) lastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Instructions returns the server's serverInstructions as user's binding
// has them: the configured text, or for serverInstructions: true what the
// server sent at initialize ("" until it connected). The built-in
// server's own instructions are always returned; "" for a server
// configured without serverInstructions.
func (c *Conn) Instructions(user string) string {
	own := func() string {
		b := c
		if c.template() {
			if user == "" {
				return ""
			}
			if b = c.existingUserConn(user); b == nil {
				return ""
			}
		}
		if cat := b.Catalog(); cat != nil && cat.Init != nil {
			return cat.Init.Instructions
		}
		return ""
	}
	if c.cfg == nil {
		return own()
	}
	if !c.cfg.ServerInstructions.Enabled {
		return ""
	}
	if t := c.cfg.ServerInstructions.Text; t != "" {
		return t
	}
	return own()
}
