package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Locker takes a lock that holds across every process sharing the
// TokenStore, so that one refresh token is redeemed once even when several
// replicas find the token expiring at the same moment: an authorization
// server that rotates refresh tokens revokes the whole family when one is
// presented twice. It returns the function that releases the lock.
type Locker func(ctx context.Context) (unlock func(), err error)

// lockShared takes Options.Lock, if set, and reloads the token from the
// store: another process may have renewed it while this one waited. It must
// be called with authMu held.
func (c *Client) lockShared(ctx context.Context) (unlock func(), err error) {
	if c.opts.Lock == nil {
		return func() {}, nil
	}
	unlock, err = c.opts.Lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("token lock: %w", err)
	}
	t, err := c.tokens.LoadToken(ctx)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("load token: %w", err)
	}
	c.mu.Lock()
	if t == nil || c.tok == nil || t.AccessToken != c.tok.AccessToken {
		c.tok, c.loaded = t, true
		if t != nil {
			c.granted[t.Issuer] = unionScopes(c.granted[t.Issuer], t.Scopes)
		}
	}
	c.mu.Unlock()
	return unlock, nil
}

// Revoke revokes the client's refresh and access tokens at the
// authorization server (RFC 7009) and forgets them. endpoint overrides
// Options.RevocationURL, which overrides the revocation_endpoint of the
// server's metadata; with none, the tokens are only forgotten. The token is forgotten even when revocation fails.
func (c *Client) Revoke(ctx context.Context, endpoint string) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	t, err := c.Token(ctx)
	if err != nil || t == nil {
		if ferr := c.Forget(ctx); ferr != nil && err == nil {
			err = ferr
		}
		return err
	}
	var errs []error
	d, derr := c.discoverCached(ctx)
	if endpoint == "" {
		endpoint = c.opts.RevocationURL
	}
	if endpoint == "" && derr == nil {
		endpoint = d.as.RevocationEndpoint
	}
	if endpoint != "" {
		var id *identity
		if derr == nil {
			id, derr = c.identityFor(ctx, d)
		}
		if derr != nil {
			errs = append(errs, derr)
		} else {
			// RFC 7009 §2.1: revoking the refresh token also invalidates
			// the access tokens of its grant where the server supports it;
			// the access token is revoked as well for servers that do not.
			if t.RefreshToken != "" {
				errs = append(errs, c.revokeOne(ctx, endpoint, d.audience(), id, t.RefreshToken, "refresh_token"))
			}
			errs = append(errs, c.revokeOne(ctx, endpoint, d.audience(), id, t.AccessToken, "access_token"))
		}
	}
	errs = append(errs, c.Forget(ctx))
	return errors.Join(errs...)
}

func (c *Client) revokeOne(ctx context.Context, endpoint, issuer string, id *identity, token, hint string) error {
	if err := checkURL(endpoint); err != nil {
		return err
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	var basic [2]string
	switch id.authMethod {
	case AuthClientSecretBasic:
		basic = [2]string{id.clientID, id.secret}
	case AuthClientSecretPost:
		form.Set("client_id", id.clientID)
		form.Set("client_secret", id.secret)
	case AuthPrivateKeyJWT:
		a, err := clientAssertion(id.key, issuer, c.now())
		if err != nil {
			return err
		}
		form.Set("client_id", id.clientID)
		form.Set("client_assertion_type", assertionTypeJWTBearer)
		form.Set("client_assertion", a)
	default:
		if id.clientID != "" {
			form.Set("client_id", id.clientID)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic[0] != "" {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("revoke at %s: %w", redactString(endpoint), err)
	}
	drain(resp)
	// RFC 7009 §2.2: 200 whether or not the token was valid.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revoke at %s: status %d", redactString(endpoint), resp.StatusCode)
	}
	return nil
}
