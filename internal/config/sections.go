package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// decode reads a whole file. Errors are collected in d.errs.
func (d *decoder) decode(data []byte) *Config {
	c := &Config{
		File:            d.file,
		Listen:          DefaultListen,
		MaxRequestBytes: DefaultMaxRequestBytes,
		Timezone:        DefaultTimezone,
		DataDir:         DefaultDataDir,
		Store:           Store{Driver: "sqlite", Path: "switchboard.db"},
		Secrets:         Secrets{KeyFile: "secrets.json"},
		Auth:            Auth{LocalLogin: true, AccessTokenTTL: DefaultAccessTokenTTL, RefreshTokenTTL: DefaultRefreshTokenTTL},
	}
	c.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	body := d.parse(data)
	if body == nil {
		return c
	}
	fields, ok := d.mapping(body, "the top level of a config file")
	if !ok {
		return c
	}
	for _, f := range fields {
		switch f.key {
		case "mcpServers":
			c.Servers = d.servers(f.value)
		case "mcpSettings":
			c.Settings = d.settings(f.value)
		case "server":
			d.serverSection(c, f.value)
		case "tools":
			d.toolsSection(c, f.value)
		case "auth":
			d.authSection(c, f.value)
		case "store":
			d.storeSection(c, f.value)
		case "secrets":
			d.secretsSection(c, f.value)
		case "redis":
			d.redisSection(c, f.value)
		case "access":
			d.accessSection(c, f.value)
		case "llm":
			d.llmSection(c, f.value)
		case "agents":
			d.agentsSection(c, f.value)
		default:
			if !isKnownIgnored(f.key) {
				// A key that is neither ours nor LibreChat's is
				// most likely a typo of ours; otherwise it is a
				// LibreChat section newer than this list.
				if s := suggest(f.key, ownSections); s != "" {
					d.errorf(f.keyN, "unknown top-level section %q; did you mean %q?", f.key, s)
					continue
				}
			}
			c.IgnoredSections = append(c.IgnoredSections, f.key)
		}
	}
	return c
}

var settingsKeys = []string{"allowedDomains", "allowedAddresses", "breaker"}

var breakerKeys = []string{"threshold", "cooldown"}

// breaker reads mcpSettings.breaker: {threshold: failures, cooldown: ms or
// a duration such as "5s"}.
func (d *decoder) breaker(n ast.Node) Breaker {
	var b Breaker
	fields, _ := d.mapping(n, "mcpSettings.breaker")
	for _, f := range fields {
		switch f.key {
		case "threshold":
			v, present, ok := d.integer(f.value, "mcpSettings.breaker.threshold")
			if present && ok && (v < 1 || v > 1000) {
				d.errorf(d.resolve(f.value), "mcpSettings.breaker.threshold must be between 1 and 1000 failures, got %d", v)
				continue
			}
			b.Threshold = int(v)
		case "cooldown":
			v := d.duration(f.value, "mcpSettings.breaker.cooldown")
			if v != 0 && (v < 100*time.Millisecond || v > time.Hour) {
				d.errorf(d.resolve(f.value), "mcpSettings.breaker.cooldown must be between 100ms and 1h, got %s", v)
				continue
			}
			b.Cooldown = v
		default:
			d.unknownKey(f, "mcpSettings.breaker", breakerKeys)
		}
	}
	return b
}

func (d *decoder) settings(n ast.Node) Settings {
	var s Settings
	fields, _ := d.mapping(n, "mcpSettings")
	for _, f := range fields {
		switch f.key {
		case "allowedDomains":
			s.AllowedDomains, _ = d.strList(f.value, "mcpSettings.allowedDomains", false)
		case "allowedAddresses":
			s.AllowedAddresses, _ = d.strList(f.value, "mcpSettings.allowedAddresses", false)
		case "breaker":
			s.Breaker = d.breaker(f.value)
		default:
			d.unknownKey(f, "mcpSettings", settingsKeys)
		}
	}
	return s
}

var serverSectionKeys = []string{"listen", "publicURL", "replicaURL", "allowedOrigins", "trustedProxies", "maxRequestBytes", "maxSessionsPerUser", "dataDir",
	"readTimeout", "readHeaderTimeout", "writeTimeout", "idleTimeout", "maxHeaderBytes"}

func (d *decoder) serverSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "server")
	for _, f := range fields {
		v := f.value
		switch f.key {
		case "listen":
			s, ok := d.str(v, "server.listen")
			if !ok || s == "" {
				if ok {
					d.errorf(d.resolve(v), "server.listen must not be empty")
				}
				continue
			}
			if msg := checkListen(s); msg != "" {
				d.errorf(d.resolve(v), "server.listen: %s", msg)
				continue
			}
			c.Listen = s
		case "publicURL":
			s, ok := d.str(v, "server.publicURL")
			if ok && s != "" {
				if msg := checkURL(s); msg != "" {
					d.errorf(d.resolve(v), "server.publicURL: %s", msg)
				}
			}
			c.PublicURL = s
		case "replicaURL":
			s, ok := d.str(v, "server.replicaURL")
			if ok && s != "" {
				if msg := checkURL(s); msg != "" {
					d.errorf(d.resolve(v), "server.replicaURL: %s", msg)
				} else if u, _ := url.Parse(s); u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
					d.errorf(d.resolve(v), "server.replicaURL: want a base URL without a path, e.g. \"http://10.0.0.5:8080\"")
				}
			}
			c.ReplicaURL = s
		case "allowedOrigins":
			origins, _ := d.strList(v, "server.allowedOrigins", false)
			for _, o := range origins {
				if msg := checkOrigin(o); msg != "" {
					d.errorf(d.resolve(v), "server.allowedOrigins: %s", msg)
				}
			}
			c.AllowedOrigins = origins
		case "trustedProxies":
			c.TrustedProxies = d.prefixList(v, "server.trustedProxies")
		case "dataDir":
			if s, ok := d.str(v, "server.dataDir"); ok && s != "" {
				c.DataDir = s
			}
		case "maxRequestBytes":
			b, present, ok := d.integer(v, "server.maxRequestBytes")
			if !present || !ok {
				continue
			}
			if b <= 0 {
				d.errorf(d.resolve(v), "server.maxRequestBytes must be a positive number, got %d", b)
				continue
			}
			c.MaxRequestBytes = b
		case "maxSessionsPerUser":
			n, present, ok := d.integer(v, "server.maxSessionsPerUser")
			if !present || !ok {
				continue
			}
			if n <= 0 || n > 1<<20 {
				d.errorf(d.resolve(v), "server.maxSessionsPerUser must be a positive number (at most %d), got %d", 1<<20, n)
				continue
			}
			c.MaxSessionsPerUser = int(n)
		case "readTimeout":
			if v := d.duration(v, "server.readTimeout"); v > 0 {
				c.HTTP.ReadTimeout = v
			}
		case "readHeaderTimeout":
			if v := d.duration(v, "server.readHeaderTimeout"); v > 0 {
				c.HTTP.ReadHeaderTimeout = v
			}
		case "writeTimeout":
			if v := d.duration(v, "server.writeTimeout"); v > 0 {
				c.HTTP.WriteTimeout = v
			}
		case "idleTimeout":
			if v := d.duration(v, "server.idleTimeout"); v > 0 {
				c.HTTP.IdleTimeout = v
			}
		case "maxHeaderBytes":
			b, present, ok := d.integer(v, "server.maxHeaderBytes")
			if !present || !ok {
				continue
			}
			if b < 1024 || b > 1<<20 {
				d.errorf(d.resolve(v), "server.maxHeaderBytes must be between 1024 and 1048576, got %d", b)
				continue
			}
			c.HTTP.MaxHeaderBytes = int(b)
		default:
			d.unknownKey(f, "server", serverSectionKeys)
		}
	}
}

// prefixList reads a list of CIDR prefixes (or bare addresses), reporting
// each bad entry at its own position.
func (d *decoder) prefixList(n ast.Node, what string) []netip.Prefix {
	r := d.resolve(n)
	if isNull(r) {
		return nil
	}
	seq, isSeq := r.(*ast.SequenceNode)
	if !isSeq {
		d.errorf(r, "%s must be a list of CIDR prefixes such as \"10.0.0.0/8\", got %s", what, kind(r))
		return nil
	}
	var out []netip.Prefix
	for i, v := range seq.Values {
		s, ok := d.str(v, fmt.Sprintf("%s[%d]", what, i))
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, ipErr := netip.ParseAddr(s)
			if ipErr != nil || ip.Zone() != "" {
				d.errorf(d.resolve(v), "%s[%d]: %q is not a CIDR prefix or IP address (want e.g. \"10.0.0.0/8\" or \"192.0.2.7\")", what, i, s)
				continue
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		if p.Masked() != p {
			d.errorf(d.resolve(v), "%s[%d]: %q has bits set beyond its /%d; did you mean %q?", what, i, s, p.Bits(), p.Masked().String())
			continue
		}
		out = append(out, p)
	}
	return out
}

// checkListen returns why s is not a host:port to listen on, or "".
func checkListen(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			return ae.Err + ` (want host:port, e.g. "127.0.0.1:8080")`
		}
		return err.Error()
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return "port " + strconv.Quote(port) + " is not a number from 0 to 65535"
	}
	return ""
}

// checkOrigin returns why s is not an origin (RFC 6454: scheme://host[:port]),
// or "".
func checkOrigin(s string) string {
	if msg := checkURL(s); msg != "" {
		return strconv.Quote(s) + ": " + msg
	}
	u, _ := url.Parse(s)
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return strconv.Quote(s) + " is not an origin: want scheme://host[:port] with no path"
	}
	return ""
}

// sectionNames lists every top-level section this package knows, for tests.
func sectionNames() []string {
	return slices.Concat(ownSections, reservedSections, librechatSections)
}
