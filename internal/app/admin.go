package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Admin is the data directory and an authorization server over it, for the
// administrative commands.
type Admin struct {
	cfg *config.Config
	st  *state
	as  *authserver.Server
}

// OpenAdmin opens the data directory of cfg. Close releases it. A nil
// logger discards.
func OpenAdmin(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Admin, error) {
	logger = orDiscard(logger)
	st, err := openState(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	as, err := newAuthServer(ctx, cfg, st, issuer(cfg, cfg.Listen), logger)
	if err != nil {
		st.close()
		return nil, err
	}
	return &Admin{cfg: cfg, st: st, as: as}, nil
}

// Close closes the store.
func (ad *Admin) Close() { ad.st.close() }

// newHub returns a hub (not started) over the store, for users' values and
// OAuth tokens; the caller closes it.
func (ad *Admin) newHub() *hub.Hub {
	return hub.New(ad.cfg, hubOptions(ad.st, ad.as, issuer(ad.cfg, ad.cfg.Listen)))
}

// rotator is implemented by both stores.
type rotator interface {
	RotateSecrets(ctx context.Context, batch int) (int, error)
}

// RotateSecrets adds a new primary key to the key file, unless cont, then
// re-encrypts every value sealed with an older key, reporting to w.
func RotateSecrets(ctx context.Context, cfg *config.Config, logger *slog.Logger, cont bool, w io.Writer) error {
	logger = orDiscard(logger)
	if !cont {
		// Open once first, so that a wrong key file is refused before a
		// key is added to it.
		st, err := openState(ctx, cfg, logger)
		if err != nil {
			return err
		}
		st.close()
		keys, err := secrets.AddKey(dataPath(cfg, cfg.Secrets.KeyFile))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "added key %s; re-encrypting\n", keys.PrimaryID())
	}
	st, err := openState(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.close()
	r, ok := st.store.(rotator)
	if !ok {
		return errors.New("this store cannot re-encrypt")
	}
	total := 0
	for {
		n, err := r.RotateSecrets(ctx, 500)
		total += n
		if err != nil {
			return fmt.Errorf("re-encrypted %d values, then: %w (run again with --continue)", total, err)
		}
		if n == 0 {
			break
		}
	}
	fmt.Fprintf(w, "re-encrypted %d values with key %s; older keys may be removed from the key file once every replica has the new one\n", total, st.keys.PrimaryID())
	return nil
}

// User finds a user by username or, failing that, by email.
func (ad *Admin) User(ctx context.Context, nameOrEmail string) (*store.User, error) {
	u, err := ad.st.store.UserByUsername(ctx, nameOrEmail)
	if errors.Is(err, store.ErrNotFound) {
		u, err = ad.st.store.UserByEmail(ctx, nameOrEmail)
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", nameOrEmail, err)
	}
	return u, nil
}

// AddUser creates a local account with role "admin" or "user".
func (ad *Admin) AddUser(ctx context.Context, username, password, role string) (*store.User, error) {
	return ad.as.CreateUser(ctx, username, password, store.Role(role))
}

// WriteUsers prints every user as a table.
func (ad *Admin) WriteUsers(ctx context.Context, w io.Writer) error {
	users, err := ad.st.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tEMAIL\tROLE\tID\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Email, u.Role, u.ID, u.CreatedAt.Format(time.DateOnly))
	}
	return tw.Flush()
}

// CreateAPIKey creates a personal API key for the user named (username or
// email) and returns it, shown once, with the user's username.
func (ad *Admin) CreateAPIKey(ctx context.Context, user, name string) (key, username string, err error) {
	u, err := ad.User(ctx, user)
	if err != nil {
		return "", "", err
	}
	key, _, err = ad.as.CreateAPIKey(ctx, u.ID, name)
	return key, u.Username, err
}

// SetCredential saves value as variable of server for user.
func (ad *Admin) SetCredential(ctx context.Context, w io.Writer, user, server, variable, value string) error {
	u, err := ad.User(ctx, user)
	if err != nil {
		return err
	}
	h := ad.newHub()
	defer h.Close()
	if err := h.SetCredentials(ctx, u.ID, server, map[string]string{variable: value}); err != nil {
		return err
	}
	fmt.Fprintf(w, "saved %s for %s on %s\n", variable, u.Username, server)
	return nil
}

// ClearCredentials deletes user's values and OAuth token (revoked) for
// server.
func (ad *Admin) ClearCredentials(ctx context.Context, w io.Writer, user, server string) error {
	u, err := ad.User(ctx, user)
	if err != nil {
		return err
	}
	h := ad.newHub()
	defer h.Close()
	if err := h.DeleteCredentials(ctx, u.ID, server); err != nil {
		return err
	}
	fmt.Fprintf(w, "cleared %s's values for %s\n", u.Username, server)
	return nil
}

// WriteCredentialStatus prints the state of each per-user server as user
// sees it.
func (ad *Admin) WriteCredentialStatus(ctx context.Context, w io.Writer, user string) error {
	u, err := ad.User(ctx, user)
	if err != nil {
		return err
	}
	h := ad.newHub()
	defer h.Close()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATE\tAUTHORIZATION\tMISSING\tDETAIL")
	for _, s := range h.StatusesFor(ctx, u.ID) {
		if !s.UserScoped {
			continue
		}
		detail := s.LastError
		if s.OAuthURL != "" {
			detail = "authorize at " + s.OAuthURL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Authorization, strings.Join(s.MissingVariables, ","), detail)
	}
	return tw.Flush()
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
