package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const (
	naverWorksAuthBase   = "https://auth.worksmobile.com"
	naverWorksProfileURL = "https://www.worksapis.com/v1.0/users/me"
)

// ErrDomainNotAllowed means the user belongs to no NAVER WORKS domain the
// configuration lets in.
var ErrDomainNotAllowed = errors.New("the account's domain may not sign in here")

// DomainError is ErrDomainNotAllowed with the user's domains.
type DomainError struct {
	Provider string
	Domains  []string // the user's domain ids and mail domain
}

func (e *DomainError) Error() string {
	return fmt.Sprintf("%s: %v (user's domains: %s)", e.Provider, ErrDomainNotAllowed, strings.Join(e.Domains, ", "))
}

func (e *DomainError) Unwrap() error { return ErrDomainNotAllowed }

// newNaverWorks is NAVER WORKS (API 2.0) user account authentication:
// OAuth 2.0 with client_secret_post, no id_token; the user comes from GET
// /v1.0/users/me (scope user.profile.read). Only users of cfg.Domains
// may sign in.
//
// With a non-default Issuer (a fake, a proxy) the users API is looked for
// on the issuer's host too, unless ProfileURL is set.
func newNaverWorks(cfg Config, client *http.Client) (*provider, error) {
	if cfg.ClientSecret == "" {
		return nil, errors.New("client secret is required for type naverworks")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("domains is required for type naverworks: list the domain ids or mail domains whose users may sign in")
	}
	base := strings.TrimSuffix(orDefault(cfg.Issuer, naverWorksAuthBase), "/")
	profile := naverWorksProfileURL
	if base != naverWorksAuthBase {
		profile = base + "/v1.0/users/me"
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"user.profile.read"}
	}
	p := &provider{
		name:         cfg.Name,
		displayName:  orDefault(cfg.DisplayName, "NAVER WORKS"),
		client:       client,
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		scopes:       scopes,
		authURL:      orDefault(cfg.AuthURL, base+"/oauth2/v2.0/authorize"),
		tokenURL:     orDefault(cfg.TokenURL, base+"/oauth2/v2.0/token"),
		refresh:      true,
		// The e-mail is the WORKS account itself, issued by the domain.
		ownEmail: true,
	}
	p.profile = p.naverWorksUser(orDefault(cfg.ProfileURL, orDefault(cfg.UserInfoURL, profile)))
	allowed := make([]string, 0, len(cfg.Domains))
	for _, d := range cfg.Domains {
		allowed = append(allowed, strings.ToLower(strings.TrimSpace(d)))
	}
	p.allow = func(id *Identity) error {
		doms := naverWorksDomains(id)
		for _, d := range doms {
			if slices.Contains(allowed, d) {
				return nil
			}
		}
		return &DomainError{Provider: p.name, Domains: doms}
	}
	return p, nil
}

// naverWorksUser is the part of a users API answer read here.
type naverWorksUser struct {
	UserID   string `json:"userId"`
	Email    string `json:"email"`
	DomainID int64  `json:"domainId"`
	UserName struct {
		LastName  string `json:"lastName"`
		FirstName string `json:"firstName"`
	} `json:"userName"`
	Organizations []struct {
		DomainID int64  `json:"domainId"`
		Primary  bool   `json:"primary"`
		Email    string `json:"email"`
	} `json:"organizations"`
}

// naverWorksDomains are the user's domain ids and mail domains, lower
// case, read back from the profile the identity came from.
func naverWorksDomains(id *Identity) []string {
	var u naverWorksUser
	_ = json.Unmarshal(id.Profile, &u)
	var out []string
	add := func(s string) {
		s = strings.ToLower(s)
		if s != "" && s != "0" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(strconv.FormatInt(u.DomainID, 10))
	for _, o := range u.Organizations {
		add(strconv.FormatInt(o.DomainID, 10))
		if _, d, ok := strings.Cut(o.Email, "@"); ok {
			add(d)
		}
	}
	if _, d, ok := strings.Cut(id.Email, "@"); ok {
		add(d)
	}
	return out
}

// naverWorksUser reads GET /v1.0/users/me. Errors come as
// {"code":"UNAUTHORIZED","description":"..."}.
func (p *provider) naverWorksUser(endpoint string) func(ctx context.Context, tok *Token) (*Identity, error) {
	return func(ctx context.Context, tok *Token) (*Identity, error) {
		resp, body, err := p.getJSON(ctx, endpoint, tok.AccessToken, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: %w", p.name, err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Code        string `json:"code"`
				Description string `json:"description"`
			}
			_ = json.Unmarshal(body, &e)
			return nil, &Error{Provider: p.name, Endpoint: "profile endpoint", StatusCode: resp.StatusCode,
				Code: sanitize(e.Code), Description: sanitize(e.Description, tok.AccessToken)}
		}
		var u naverWorksUser
		if err := json.Unmarshal(body, &u); err != nil {
			return nil, fmt.Errorf("%s: profile endpoint: decode: %w", p.name, err)
		}
		if u.UserID == "" {
			return nil, fmt.Errorf("%s: profile endpoint: response has no userId", p.name)
		}
		local, _, _ := strings.Cut(u.Email, "@")
		return &Identity{
			Subject:  u.UserID,
			Email:    u.Email,
			Name:     personName(u.UserName.LastName, u.UserName.FirstName),
			Username: local,
			Profile:  body,
		}, nil
	}
}

// personName joins a family and a given name: "김민지" for Hangul and
// other CJK names, "Minji Kim" otherwise.
func personName(last, first string) string {
	last, first = strings.TrimSpace(last), strings.TrimSpace(first)
	cjk := func(s string) bool {
		return strings.IndexFunc(s, func(r rune) bool {
			return unicode.In(r, unicode.Hangul, unicode.Han, unicode.Hiragana, unicode.Katakana)
		}) >= 0
	}
	if cjk(last) || cjk(first) {
		return last + first
	}
	return strings.TrimSpace(first + " " + last)
}
