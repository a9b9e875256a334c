package app

import (
	"context"
	"errors"

	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// userLister lists the users, for reinitializeAll.
type userLister interface {
	ListUsers(ctx context.Context) ([]*store.User, error)
}

// reinitializeAll reconnects server for everyone: its shared connection,
// or each user's connection that is in use (connected, connecting, failed
// or waiting for authorization; an idle one connects afresh anyway).
//
// It is written over the hub's API of today, which has no list of a
// server's users: the users come from the store, and looking one up
// creates their (unconnected) entry. The hub's own "reinitialize for
// everyone" replaces it when it exists.
func reinitializeAll(ctx context.Context, h *hub.Hub, users userLister, server string) (reconnected, failed int, err error) {
	c, err := h.Conn(server)
	if err != nil {
		return 0, 0, err
	}
	if !c.UserScoped() {
		if err := c.Reinitialize(ctx, hub.Caller{}); err != nil {
			return 0, 1, nil
		}
		return 1, 0, nil
	}
	list, err := users.ListUsers(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, u := range list {
		uc, err := c.ForUser(u.ID)
		if err != nil {
			continue
		}
		if st := uc.Status(); st.State == hub.StateDisconnected && st.LastError == "" {
			continue
		}
		err = uc.Reinitialize(ctx, hub.Caller{User: u.ID})
		var ae *hub.AuthorizationError
		switch {
		case err == nil, errors.As(err, &ae):
			// Waiting for the user to authorize again is reconnected as
			// far as an administrator can take it.
			reconnected++
		default:
			failed++
		}
	}
	return reconnected, failed, nil
}
