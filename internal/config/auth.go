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
	Classic      bool // naver: classic OAuth 2.0 endpoints
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
	authKeys     = []string{"localLogin", "accessTokenTTL", "refreshTokenTTL", "providers"}
	providerKeys = []string{"type", "displayName", "clientId", "clientSecret", "scopes", "issuer", "classic",
		"authURL", "tokenURL", "userInfoURL", "jwksURL", "revokeURL", "profileURL"}
	accessKeys     = []string{"default", "servers"}
	accessRuleKeys = []string{"roles", "users"}
	providerTypes  = []string{"naver", "google", "github", "oidc"}
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
		default:
			d.unknownKey(f, "auth", authKeys)
		}
	}
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
			d.errorf(pf.keyN, "%s: type is required (one of naver, google, github, oidc)", where)
			return nil
		}
	}
	if p.ClientID == "" {
		d.errorf(pf.keyN, "%s: clientId is required", where)
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
