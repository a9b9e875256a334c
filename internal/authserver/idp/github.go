package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// newGitHub is a GitHub OAuth app (or GitHub App user authorization). There
// is no id_token; the user comes from the user API.
func newGitHub(cfg Config, client *http.Client) (*provider, error) {
	if cfg.ClientSecret == "" {
		return nil, errors.New("client secret is required for type github")
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		// user:email lets the login read the primary, verified address.
		scopes = []string{"read:user", "user:email"}
	}
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, "GitHub"),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scopes:       scopes,
		authURL:      orDefault(cfg.AuthURL, "https://github.com/login/oauth/authorize"),
		tokenURL:     orDefault(cfg.TokenURL, "https://github.com/login/oauth/access_token"),
		// GitHub accepts S256 PKCE; a server without it ignores the parameters.
		pkce: true,
		// OAuth app tokens never expire and come without a refresh token, so
		// Refresh returns ErrNoRefresh for them; GitHub Apps with expiring
		// user tokens do hand out refresh tokens.
		refresh: true,
	}
	p.profile = p.githubUser(orDefault(cfg.ProfileURL, orDefault(cfg.UserInfoURL, "https://api.github.com/user")))
	return p, nil
}

// githubUser reads GET /user; the granted scopes come in X-OAuth-Scopes.
func (p *provider) githubUser(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		hdr := http.Header{
			"Accept":               {"application/vnd.github+json"},
			"X-Github-Api-Version": {"2022-11-28"},
			"User-Agent":           {"Switchboard"},
		}
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, hdr)
		if err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(body, &e)
			return nil, &Error{Provider: p.name, Endpoint: "profile endpoint", StatusCode: resp.StatusCode,
				Description: sanitize(e.Message, tok.AccessToken)}
		}
		var u struct {
			ID        json.Number `json:"id"`
			Login     string      `json:"login"`
			Name      *string     `json:"name"`
			Email     *string     `json:"email"`
			AvatarURL string      `json:"avatar_url"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&u); err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: decode: %w", p.name, err)
		}
		id, err := strconv.ParseInt(u.ID.String(), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%s: profile endpoint: bad user id %q", p.name, sanitize(u.ID.String()))
		}
		if s, ok := resp.Header["X-Oauth-Scopes"]; ok {
			tok.Scopes = splitScopes(strings.Join(s, ","))
		}
		ident := &Identity{
			Subject:  strconv.FormatInt(id, 10),
			Username: u.Login,
			Picture:  u.AvatarURL,
			Profile:  body,
		}
		if u.Name != nil {
			ident.Name = *u.Name
		}
		if u.Email != nil {
			ident.Email = *u.Email
		}
		if slices.Contains(tok.Scopes, "user:email") || slices.Contains(tok.Scopes, "user") {
			if e, ok := p.githubPrimaryEmail(ctx, strings.TrimSuffix(endpoint, "/")+"/emails", tok.AccessToken, hdr); ok {
				ident.Email, ident.EmailVerified = e, true
			}
		}
		return ident, nil
	}
}

// githubPrimaryEmail reads GET /user/emails for the primary address, if
// GitHub has verified it. The user API's email is the public one, which
// GitHub does not flag as verified; a failure here leaves that one.
func (p *provider) githubPrimaryEmail(ctx context.Context, endpoint, accessToken string, hdr http.Header) (string, bool) {
	resp, body, err := p.getJSON(ctx, endpoint, accessToken, hdr)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", false
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if json.Unmarshal(body, &emails) != nil {
		return "", false
	}
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			return e.Email, true
		}
	}
	return "", false
}
