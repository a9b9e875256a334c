package authserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// ErrProviderLoginRequired means the user has no usable token at the
// provider (never signed in with it, or it expired and cannot be
// refreshed): they must sign in with the provider again.
var ErrProviderLoginRequired = errors.New("sign-in with the provider required")

const (
	refreshBefore = 2 * time.Minute  // refresh tokens this close to expiry
	refreshLock   = 30 * time.Second // how long one replica may hold the refresh
	refreshWait   = 10 * time.Second // how long others wait for its result
)

// ProviderToken returns the user's current token at provider, refreshing
// it shortly before it expires. One refresh runs at a time across all
// replicas (a store lock); the others wait for its result, so that
// providers that rotate refresh tokens never see a stale one.
//
// provider is a provider's config name or, when no provider has that name,
// its type ("kakao", "naverworks", "naver") if exactly one provider has
// that type: the calendar tools ask by type, whatever the entry is called.
func (s *Server) ProviderToken(ctx context.Context, userID, provider string) (*idp.Token, error) {
	prov, ok := s.providerNamed(provider)
	if !ok {
		return nil, fmt.Errorf("provider %q is not configured", provider)
	}
	provider = prov.Name()
	t, err := s.st.ProviderToken(ctx, userID, provider)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrProviderLoginRequired
	} else if err != nil {
		return nil, err
	}
	if fresh(t, s.now()) {
		return toIDPToken(t), nil
	}
	lock := "authserver.provider-refresh:" + provider + ":" + userID
	owner := randomToken()
	deadline := s.now().Add(refreshWait)
	for {
		got, err := s.st.TryLock(ctx, lock, owner, s.now().Add(refreshLock))
		if err != nil {
			return nil, err
		}
		if got {
			break
		}
		// Someone else is refreshing: wait for the result.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if t, err = s.st.ProviderToken(ctx, userID, provider); err != nil {
			return nil, err
		}
		if fresh(t, s.now()) {
			return toIDPToken(t), nil
		}
		if s.now().After(deadline) {
			return nil, fmt.Errorf("provider %s: waiting for another token refresh timed out", provider)
		}
	}
	defer s.st.Unlock(context.WithoutCancel(ctx), lock, owner)

	// Re-read under the lock: the previous holder may have refreshed.
	if t, err = s.st.ProviderToken(ctx, userID, provider); err != nil {
		return nil, err
	}
	if fresh(t, s.now()) {
		return toIDPToken(t), nil
	}
	nt, err := prov.Refresh(ctx, t.RefreshToken)
	if err != nil {
		if s.now().Before(t.Expiry) {
			// Still usable for a little while; the next call tries again.
			s.log.Warn("refreshing provider token", slogString(logKeyProvider, provider), slogString(logKeyUser, userID), errAttr(err))
			return toIDPToken(t), nil
		}
		if errors.Is(err, idp.ErrNoRefresh) {
			return nil, ErrProviderLoginRequired
		}
		var pe *idp.Error
		if errors.As(err, &pe) && pe.Code == "invalid_grant" {
			return nil, ErrProviderLoginRequired
		}
		return nil, fmt.Errorf("refresh %s token: %w", provider, err)
	}
	saved := &store.ProviderToken{
		UserID: userID, Provider: provider, AccessToken: nt.AccessToken, RefreshToken: nt.RefreshToken,
		TokenType: nt.TokenType, Scopes: nt.Scopes, Expiry: nt.Expiry, IDToken: nt.IDToken, UpdatedAt: s.now(),
	}
	if saved.RefreshToken == "" {
		saved.RefreshToken = t.RefreshToken
	}
	if saved.Scopes == nil {
		saved.Scopes = t.Scopes
	}
	if saved.IDToken == "" {
		saved.IDToken = t.IDToken
	}
	if err := s.st.SaveProviderToken(ctx, saved); err != nil {
		return nil, err
	}
	return toIDPToken(saved), nil
}

// providerNamed finds a provider by config name, else the only one of
// that type.
func (s *Server) providerNamed(name string) (idp.Provider, bool) {
	if p, ok := s.providers[name]; ok {
		return p, true
	}
	var found idp.Provider
	for _, p := range s.provOrder {
		if p.Type() == name {
			if found != nil {
				return nil, false // ambiguous: ask by name
			}
			found = p
		}
	}
	return found, found != nil
}

func fresh(t *store.ProviderToken, now time.Time) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(refreshBefore).Before(t.Expiry))
}

func toIDPToken(t *store.ProviderToken) *idp.Token {
	return &idp.Token{
		AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType,
		IDToken: t.IDToken, Expiry: t.Expiry, Scopes: t.Scopes,
	}
}
