package idp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	kakaoIssuer      = "https://kauth.kakao.com"
	kakaoUserInfoURL = "https://kapi.kakao.com/v1/oidc/userinfo"
	kakaoUserMeURL   = "https://kapi.kakao.com/v2/user/me"
)

// newKakao is Kakao Login: OpenID Connect by default (id_token, nonce,
// PKCE, userinfo), the REST flow without OIDC with cfg.Classic. The REST
// API key is the client id; the client secret is optional (sent when set,
// as Kakao requires once it is enabled for the app). Kakao joins scopes
// (consent items) with commas and labels token requests with
// charset=utf-8.
//
// With a non-default Issuer (a proxy, a fake) the kapi.kakao.com APIs are
// looked for on the issuer's host too, unless ProfileURL or UserInfoURL is
// set.
func newKakao(ctx context.Context, cfg Config, client *http.Client) (*provider, error) {
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, "Kakao"),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scopeSep:     ",",
		formCharset:  true,
		refresh:      true,
	}
	base := strings.TrimSuffix(orDefault(cfg.Issuer, kakaoIssuer), "/")
	apiBase := "https://kapi.kakao.com"
	if base != kakaoIssuer {
		apiBase = base
	}
	if cfg.Classic {
		p.scopes = cfg.Scopes
		p.authURL = orDefault(cfg.AuthURL, base+"/oauth/authorize")
		p.tokenURL = orDefault(cfg.TokenURL, base+"/oauth/token")
		p.pkce = true
		p.profile = p.kakaoUserMe(orDefault(cfg.ProfileURL, orDefault(cfg.UserInfoURL, apiBase+"/v2/user/me")))
		return p, nil
	}
	e, err := resolve(ctx, cfg, client, kakaoIssuer, endpoints{
		authURL:     kakaoIssuer + "/oauth/authorize",
		tokenURL:    kakaoIssuer + "/oauth/token",
		jwksURL:     kakaoIssuer + "/.well-known/jwks.json",
		userInfoURL: kakaoUserInfoURL,
		pkce:        true,
	})
	if err != nil {
		return nil, err
	}
	// Kakao authenticates clients in the form body only.
	e.basicAuth = false
	// Without a scope parameter Kakao asks for the consent items set up for
	// the app and, OIDC being enabled, issues an id_token; with one, it
	// asks for just those and wants openid among them.
	if len(cfg.Scopes) > 0 {
		p.scopes = withOpenID(cfg.Scopes, nil)
	}
	p.authURL, p.tokenURL = e.authURL, e.tokenURL
	p.pkce = e.pkce
	p.issuer, p.issRequired = e.issuer, e.issRequired
	// The id_token has nickname, picture and email but no email_verified;
	// userinfo says whether the address is verified.
	p.needProfile = func(id *Identity) bool { return id.Email == "" || !id.EmailVerified || id.Username == "" }
	p.sameSubject = true
	p.profile = p.kakaoUserInfo(orDefault(cfg.ProfileURL, orDefault(e.userInfoURL, apiBase+"/v1/oidc/userinfo")))
	p.setVerifier(e)
	return p, nil
}

// kakaoAPIError reads an error of kapi.kakao.com: {"msg":...,"code":-401}.
func (p *provider) kakaoAPIError(endpoint string, resp *http.Response, body []byte, accessToken string) error {
	var e struct {
		Msg  string      `json:"msg"`
		Code json.Number `json:"code"`
		// The OIDC userinfo endpoint may answer in the OAuth format.
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	_ = dec.Decode(&e)
	code := orDefault(e.Code.String(), e.Error)
	desc := orDefault(e.Msg, e.Description)
	switch code {
	case "-401":
		desc = "access token invalid or expired (" + desc + ")"
	case "-402":
		desc = "the user has not agreed to the consent item this needs (" + desc + ")"
	}
	return &Error{Provider: p.name, Endpoint: endpoint, StatusCode: resp.StatusCode,
		Code: sanitize(code), Description: sanitize(desc, accessToken)}
}

// kakaoUserInfo calls GET /v1/oidc/userinfo (OIDC Core §5.3 claims: sub,
// nickname, picture, email, email_verified, ...).
func (p *provider) kakaoUserInfo(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: userinfo endpoint: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, p.kakaoAPIError("userinfo endpoint", resp, body, tok.AccessToken)
		}
		var u idClaims
		if err := json.Unmarshal(body, &u); err != nil {
			return nil, fmt.Errorf("%s: userinfo endpoint: decode: %w", p.name, err)
		}
		if u.Subject == "" {
			return nil, fmt.Errorf("%s: userinfo endpoint: response has no sub", p.name)
		}
		return &Identity{
			Subject:       u.Subject,
			Email:         u.Email,
			EmailVerified: bool(u.EmailVerified),
			Name:          orDefault(u.Name, u.Nickname),
			Username:      orDefault(u.PreferredUsername, u.Nickname),
			Picture:       u.Picture,
			Profile:       body,
		}, nil
	}
}

// kakaoUserMe calls GET /v2/user/me, the REST flow's profile: id (a
// number), kakao_account.profile.nickname, kakao_account.email with
// is_email_valid and is_email_verified.
func (p *provider) kakaoUserMe(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, p.kakaoAPIError("profile endpoint", resp, body, tok.AccessToken)
		}
		var u struct {
			ID      json.Number `json:"id"`
			Account struct {
				Profile struct {
					Nickname        string `json:"nickname"`
					ProfileImageURL string `json:"profile_image_url"`
				} `json:"profile"`
				Name            string `json:"name"`
				Email           string `json:"email"`
				IsEmailValid    bool   `json:"is_email_valid"`
				IsEmailVerified bool   `json:"is_email_verified"`
			} `json:"kakao_account"`
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
		a := u.Account
		return &Identity{
			Subject:       strconv.FormatInt(id, 10),
			Email:         a.Email,
			EmailVerified: a.Email != "" && a.IsEmailValid && a.IsEmailVerified,
			Name:          orDefault(a.Name, a.Profile.Nickname),
			Username:      a.Profile.Nickname,
			Picture:       a.Profile.ProfileImageURL,
			Profile:       body,
		}, nil
	}
}
