package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Defaults of the sign-in and storage sections.
const (
	DefaultDataDir         = "switchboard-data"
	DefaultAccessTokenTTL  = time.Hour
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
)

// Store is the store section: where state lives.
type Store struct {
	Driver string // "sqlite" (default) or "postgres"
	Path   string // sqlite file, relative to the data directory; default "switchboard.db"
	DSN    string // postgres connection string
}

// Secrets is the secrets section: the key ring that encrypts state at rest.
type Secrets struct {
	KeyFile string // relative to the data directory; default "secrets.json"
}

// Redis is the redis section: the Redis that replicas share, for rate
// limits and, with server.replicaURL, the directory of stateful MCP
// sessions. Without it each replica counts, and keeps sessions, on its own.
type Redis struct {
	// URL is redis://[[user]:password@]host[:port][/db], rediss:// for
	// TLS, or unix:///path/to.sock; "" for none.
	URL string
}

// Auth is the auth section: sign-in and the authorization server.
type Auth struct {
	LocalLogin      bool // local username/password accounts; default true
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	Providers       []*Provider // in file order
	// Admins are the users made admins when they sign in: e-mail
	// addresses (matched when the provider vouches for the address) or
	// provider:subject (the provider's config name and its user id).
	Admins []Admin
}

// Admin is one auth.admins entry: Email, or Provider and Subject.
type Admin struct {
	Email             string
	Provider, Subject string
	Pos               Position
}

// Provider is one identity provider users sign in with.
type Provider struct {
	Name         string
	Pos          Position
	Type         string // naver | google | github | oidc
	DisplayName  string
	ClientID     string
	ClientSecret string
	Scopes       []string
	Issuer       string
	Classic      bool     // naver: classic OAuth 2.0 endpoints; kakao: oidc: false
	Domains      []string // naverworks: domain ids or mail domains allowed
	AuthURL      string
	TokenURL     string
	UserInfoURL  string
	JWKSURL      string
	RevokeURL    string
	ProfileURL   string
}

// Access says who may use which server. A server without a rule follows
// Default; an empty rule (no roles, no users) lets everyone in.
type Access struct {
	Default AccessRule
	Servers map[string]AccessRule
}

// AccessRule allows users having one of Roles, or named in Users (usernames
// or emails).
type AccessRule struct {
	Roles []string
	Users []string
}

// Allows reports whether a user with that role and names may use server.
func (a Access) Allows(server, role string, names ...string) bool {
	r, ok := a.Servers[server]
	if !ok {
		r = a.Default
	}
	if len(r.Roles) == 0 && len(r.Users) == 0 {
		return true
	}
	if slices.Contains(r.Roles, role) {
		return true
	}
	for _, n := range names {
		if n != "" && slices.Contains(r.Users, n) {
			return true
		}
	}
	return false
}

var (
	storeKeys    = []string{"driver", "path", "dsn"}
	secretsKeys  = []string{"keyFile"}
	redisKeys    = []string{"url"}
	authKeys     = []string{"localLogin", "accessTokenTTL", "refreshTokenTTL", "providers", "admins"}
	providerKeys = []string{"type", "displayName", "clientId", "clientSecret", "scopes", "issuer", "classic", "oidc",
		"domains", "authURL", "tokenURL", "userInfoURL", "jwksURL", "revokeURL", "profileURL"}
	accessKeys     = []string{"default", "servers"}
	accessRuleKeys = []string{"roles", "users"}
	providerTypes  = []string{"naver", "kakao", "naverworks", "google", "github", "oidc"}
	roles          = []string{"admin", "user"}
)

func (d *decoder) storeSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "store")
	for _, f := range fields {
		switch f.key {
		case "driver":
			c.Store.Driver = d.provider(f.value, "store.driver", []string{"sqlite", "postgres"})
		case "path":
			c.Store.Path, _ = d.str(f.value, "store.path")
		case "dsn":
			c.Store.DSN, _ = d.str(f.value, "store.dsn")
		default:
			d.unknownKey(f, "store", storeKeys)
		}
	}
	if c.Store.Driver == "postgres" && c.Store.DSN == "" {
		d.errorf(n, "store.driver is postgres but store.dsn is empty (e.g. dsn: \"${DATABASE_URL}\")")
	}
}

func (d *decoder) secretsSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "secrets")
	for _, f := range fields {
		switch f.key {
		case "keyFile":
			c.Secrets.KeyFile, _ = d.str(f.value, "secrets.keyFile")
		default:
			d.unknownKey(f, "secrets", secretsKeys)
		}
	}
}

func (d *decoder) redisSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "redis")
	for _, f := range fields {
		switch f.key {
		case "url":
			s, ok := d.str(f.value, "redis.url")
			if !ok || s == "" {
				continue
			}
			if msg := checkRedisURL(s); msg != "" {
				d.errorf(d.resolve(f.value), "redis.url: %s", msg)
				continue
			}
			c.Redis.URL = s
		default:
			d.unknownKey(f, "redis", redisKeys)
		}
	}
}

// checkRedisURL returns why s is not a URL go-redis connects to, or "". The
// message never repeats s, which may hold a password.
func checkRedisURL(s string) string {
	if !strings.Contains(s, "://") {
		return `want a URL such as "redis://127.0.0.1:6379/0"`
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("invalid URL: %v", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return "URL has no host (want redis://host:6379/0)"
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			if _, err := strconv.Atoi(db); err != nil {
				return "the path must be a database number, as in redis://host:6379/0"
			}
		}
	case "unix":
		if u.Path == "" {
			return "unix URL has no socket path (want unix:///path/to/redis.sock)"
		}
	default:
		return fmt.Sprintf("URL scheme must be redis, rediss or unix, not %q", u.Scheme)
	}
	return ""
}

func (d *decoder) authSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "auth")
	var admins *field
	for _, f := range fields {
		switch f.key {
		case "localLogin":
			if v, present, ok := d.boolean(f.value, "auth.localLogin"); present && ok {
				c.Auth.LocalLogin = v
			}
		case "accessTokenTTL":
			if v := d.duration(f.value, "auth.accessTokenTTL"); v > 0 {
				c.Auth.AccessTokenTTL = v
			}
		case "refreshTokenTTL":
			if v := d.duration(f.value, "auth.refreshTokenTTL"); v > 0 {
				c.Auth.RefreshTokenTTL = v
			}
		case "providers":
			pf, _ := d.mapping(f.value, "auth.providers")
			for _, p := range pf {
				if prov := d.identityProvider(p); prov != nil {
					c.Auth.Providers = append(c.Auth.Providers, prov)
				}
			}
		case "admins":
			admins = &f
		default:
			d.unknownKey(f, "auth", authKeys)
		}
	}
	if admins != nil {
		// After the providers, whose names provider:subject must use.
		c.Auth.Admins = d.admins(admins.value, c.Auth.Providers)
	}
}

// admins reads auth.admins: a list of e-mail addresses and
// provider:subject entries.
func (d *decoder) admins(n ast.Node, providers []*Provider) []Admin {
	r := d.resolve(n)
	if isNull(r) {
		return nil
	}
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		d.errorf(r, "auth.admins must be a list of e-mail addresses or provider:subject entries, got %s", kind(r))
		return nil
	}
	var names []string
	for _, p := range providers {
		names = append(names, p.Name)
	}
	var out []Admin
	for i, v := range seq.Values {
		what := fmt.Sprintf("auth.admins[%d]", i)
		s, good := d.str(v, what)
		if !good {
			continue
		}
		s = strings.TrimSpace(s)
		a := Admin{Pos: d.pos(v)}
		switch prov, sub, isProv := strings.Cut(s, ":"); {
		case s == "":
			d.errorf(v, "%s is empty (want an e-mail address or provider:subject)", what)
			continue
		case strings.Contains(s, "@") && !strings.ContainsAny(s, " \t:"):
			local, domain, _ := strings.Cut(s, "@")
			if local == "" || domain == "" || strings.Contains(domain, "@") {
				d.errorf(v, "%s: %q is not an e-mail address", what, s)
				continue
			}
			a.Email = s
		case isProv && prov != "" && sub != "":
			if !slices.Contains(names, prov) {
				d.errorf(v, "%s: %q names provider %q, which auth.providers does not configure (configured: %s)",
					what, s, prov, orNone(names))
				continue
			}
			a.Provider, a.Subject = prov, sub
		default:
			d.errorf(v, "%s: %q is neither an e-mail address nor provider:subject (e.g. \"kakao:3141592653\")", what, s)
			continue
		}
		out = append(out, a)
	}
	return out
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (d *decoder) identityProvider(pf field) *Provider {
	where := "auth.providers." + pf.key
	p := &Provider{Name: pf.key, Pos: d.pos(pf.keyN)}
	fields, ok := d.mapping(pf.value, where)
	if !ok {
		return nil
	}
	for _, f := range fields {
		what := where + "." + f.key
		switch f.key {
		case "type":
			p.Type = d.provider(f.value, what, providerTypes)
		case "displayName":
			p.DisplayName, _ = d.str(f.value, what)
		case "clientId":
			p.ClientID, _ = d.str(f.value, what)
		case "clientSecret":
			p.ClientSecret, _ = d.str(f.value, what)
		case "scopes":
			p.Scopes, _ = d.strList(f.value, what, false)
		case "issuer":
			p.Issuer = d.urlField(f.value, what)
		case "classic":
			p.Classic, _, _ = d.boolean(f.value, what)
		case "oidc":
			// kakao: oidc: false selects the REST flow without OpenID Connect.
			if v, present, ok := d.boolean(f.value, what); present && ok {
				p.Classic = !v
			}
		case "domains":
			p.Domains, _ = d.strList(f.value, what, true)
		case "authURL":
			p.AuthURL = d.urlField(f.value, what)
		case "tokenURL":
			p.TokenURL = d.urlField(f.value, what)
		case "userInfoURL":
			p.UserInfoURL = d.urlField(f.value, what)
		case "jwksURL":
			p.JWKSURL = d.urlField(f.value, what)
		case "revokeURL":
			p.RevokeURL = d.urlField(f.value, what)
		case "profileURL":
			p.ProfileURL = d.urlField(f.value, what)
		default:
			d.unknownKey(f, where, providerKeys)
		}
	}
	if p.Type == "" {
		// The provider's name says its type when it is one of the
		// known ones ("naver:", "google:", "github:").
		if slices.Contains(providerTypes, pf.key) {
			p.Type = pf.key
		} else {
			d.errorf(pf.keyN, "%s: type is required (one of naver, kakao, naverworks, google, github, oidc)", where)
			return nil
		}
	}
	if p.ClientID == "" {
		d.errorf(pf.keyN, "%s: clientId is required", where)
	}
	if p.Type == "naverworks" && len(p.Domains) == 0 {
		d.errorf(pf.keyN, "%s: domains is required for type naverworks: the domain ids or mail domains whose users may sign in (e.g. domains: [\"example.co.kr\"])", where)
	}
	if p.Type != "naverworks" && len(p.Domains) > 0 {
		d.errorf(pf.keyN, "%s: domains is only for type naverworks", where)
	}
	if p.Type == "oidc" && p.Issuer == "" {
		d.errorf(pf.keyN, "%s: issuer is required for type oidc", where)
	}
	return p
}

func (d *decoder) accessSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "access")
	for _, f := range fields {
		switch f.key {
		case "default":
			c.Access.Default = d.accessRule(f.value, "access.default")
		case "servers":
			sf, _ := d.mapping(f.value, "access.servers")
			c.Access.Servers = make(map[string]AccessRule, len(sf))
			for _, s := range sf {
				c.Access.Servers[s.key] = d.accessRule(s.value, "access.servers."+s.key)
			}
		default:
			d.unknownKey(f, "access", accessKeys)
		}
	}
}

func (d *decoder) accessRule(n ast.Node, where string) AccessRule {
	var r AccessRule
	fields, _ := d.mapping(n, where)
	for _, f := range fields {
		switch f.key {
		case "roles":
			r.Roles, _ = d.strList(f.value, where+".roles", false)
			for _, role := range r.Roles {
				if !slices.Contains(roles, role) {
					d.errorf(d.resolve(f.value), "%s.roles: unknown role %q (roles are admin and user)", where, role)
				}
			}
		case "users":
			r.Users, _ = d.strList(f.value, where+".users", false)
		default:
			d.unknownKey(f, where, accessRuleKeys)
		}
	}
	return r
}
