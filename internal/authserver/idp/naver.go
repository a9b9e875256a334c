package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

const (
	naverIssuer     = "https://nid.naver.com"
	naverProfileURL = "https://openapi.naver.com/v1/nid/me"
)

// newNaver is NAVER login: OIDC by default, classic OAuth 2.0 with
// cfg.Classic. The token endpoint takes client_secret_post only.
func newNaver(ctx context.Context, cfg Config, client *http.Client) (*provider, error) {
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, "NAVER"),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		refresh:      true,
		ownEmail:     true,
	}
	if cfg.ClientSecret == "" {
		return nil, fmt.Errorf("client secret is required for type naver")
	}
	if cfg.Classic {
		// Classic endpoints hang off the issuer's host, so a fake or a
		// government cloud host only needs Issuer.
		base := strings.TrimSuffix(orDefault(cfg.Issuer, naverIssuer), "/")
		p.issuer = base
		p.scopes = cfg.Scopes
		p.authURL = orDefault(cfg.AuthURL, base+"/oauth2.0/authorize")
		p.tokenURL = orDefault(cfg.TokenURL, base+"/oauth2.0/token")
		p.stateToToken = true
		p.profile = p.naverProfile(orDefault(cfg.ProfileURL, orDefault(cfg.UserInfoURL, naverProfileURL)))
		return p, nil
	}
	e, err := resolve(ctx, cfg, client, naverIssuer, endpoints{
		authURL:     naverIssuer + "/oauth2/authorize",
		tokenURL:    naverIssuer + "/oauth2/token",
		jwksURL:     naverIssuer + "/oauth2/jwks",
		userInfoURL: naverProfileURL,
		pkce:        true,
	})
	if err != nil {
		return nil, err
	}
	p.scopes = withOpenID(cfg.Scopes, []string{"openid"})
	p.authURL, p.tokenURL = e.authURL, e.tokenURL
	p.pkce = e.pkce
	p.issuer, p.issRequired = e.issuer, e.issRequired
	// The id_token may carry no more than sub; the profile API has the rest.
	p.profile = p.naverProfile(orDefault(cfg.ProfileURL, orDefault(e.userInfoURL, naverProfileURL)))
	p.needProfile = func(id *Identity) bool { return id.Email == "" || id.Name == "" }
	p.setVerifier(e)
	return p, nil
}

// naverResults explains the profile API's resultcodes.
var naverResults = map[string]string{
	"024": "authentication failed: access token invalid or expired",
	"028": "no access token in the Authorization header",
	"403": "forbidden: the app may not read this profile",
	"404": "no such API",
	"500": "NAVER internal error",
}

// naverProfile reads the user from GET /v1/nid/me (WIRE.md "Profile").
func (p *provider) naverProfile(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: %w", p.name, err)
		}
		var r struct {
			ResultCode string          `json:"resultcode"`
			Message    string          `json:"message"`
			Response   json.RawMessage `json:"response"`
		}
		jerr := json.Unmarshal(body, &r)
		if resp.StatusCode != http.StatusOK || r.ResultCode != "00" {
			e := &Error{Provider: p.name, Endpoint: "profile endpoint", StatusCode: resp.StatusCode, Code: sanitize(r.ResultCode)}
			msg := sanitize(r.Message, tok.AccessToken)
			switch known, ok := naverResults[r.ResultCode]; {
			case ok && msg != "":
				e.Description = known + " (" + msg + ")"
			case ok:
				e.Description = known
			case msg != "":
				e.Description = msg
			case jerr != nil && resp.StatusCode == http.StatusOK:
				e.Description = "response is not JSON"
			case resp.StatusCode == http.StatusOK:
				e.Description = "resultcode is not 00"
			}
			return nil, e
		}
		var u struct {
			ID           string `json:"id"`
			Nickname     string `json:"nickname"`
			Name         string `json:"name"`
			Email        string `json:"email"`
			ProfileImage string `json:"profile_image"`
		}
		if err := json.Unmarshal(r.Response, &u); err != nil || u.ID == "" {
			return nil, fmt.Errorf("%s: profile endpoint: response has no user id", p.name)
		}
		return &Identity{
			Subject:  u.ID,
			Email:    u.Email,
			Name:     u.Name,
			Username: u.Nickname,
			Picture:  u.ProfileImage,
			Profile:  r.Response,
		}, nil
	}
}
