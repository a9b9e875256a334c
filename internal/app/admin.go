package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

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

// OpenAdmin opens the data directory of cfg. Close releases it.
func OpenAdmin(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Admin, error) {
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

// Store is the store of the data directory.
func (ad *Admin) Store() store.Store { return ad.st.store }

// Auth is the authorization server over the store.
func (ad *Admin) Auth() *authserver.Server { return ad.as }

// NewHub returns a hub (not started) over the store, for users' values and
// OAuth tokens; the caller closes it.
func (ad *Admin) NewHub() *hub.Hub {
	return hub.New(ad.cfg, hubOptions(ad.st, ad.as, issuer(ad.cfg, ad.cfg.Listen)))
}

// rotator is implemented by both stores.
type rotator interface {
	RotateSecrets(ctx context.Context, batch int) (int, error)
}

// RotateSecrets adds a new primary key to the key file, unless cont, then
// re-encrypts every value sealed with an older key, reporting to w.
func RotateSecrets(ctx context.Context, cfg *config.Config, logger *slog.Logger, cont bool, w io.Writer) error {
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
