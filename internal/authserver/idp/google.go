package idp

import (
	"context"
	"net/http"
	"net/url"
)

const googleIssuer = "https://accounts.google.com"

// newGoogle is Google sign-in: OIDC with client_secret_basic, asking for
// offline access so the token response carries a refresh token.
func newGoogle(ctx context.Context, cfg Config, client *http.Client) (*provider, error) {
	e, err := resolve(ctx, cfg, client, googleIssuer, endpoints{
		authURL:     "https://accounts.google.com/o/oauth2/v2/auth",
		tokenURL:    "https://oauth2.googleapis.com/token",
		jwksURL:     "https://www.googleapis.com/oauth2/v3/certs",
		userInfoURL: "https://openidconnect.googleapis.com/v1/userinfo",
		pkce:        true,
		basicAuth:   true,
	})
	if err != nil {
		return nil, err
	}
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, "Google"),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scopes:       withOpenID(cfg.Scopes, []string{"openid", "email", "profile"}),
		authURL:      e.authURL,
		tokenURL:     e.tokenURL,
		basicAuth:    e.basicAuth,
		pkce:         e.pkce,
		// Google sends a refresh token only for offline access, and again
		// on a later login only when consent is asked anew.
		authParams:  url.Values{"access_type": {"offline"}, "prompt": {"consent"}},
		issuer:      e.issuer,
		issRequired: e.issRequired,
		needProfile: func(id *Identity) bool { return id.Email == "" },
		sameSubject: true,
		refresh:     true,
	}
	if e.userInfoURL != "" {
		p.profile = p.userInfo(e.userInfoURL)
	}
	p.setVerifier(e)
	return p, nil
}
