// Package config loads Switchboard's configuration file (switchboard.yaml).
//
// The mcpServers and mcpSettings sections follow LibreChat's librechat.yaml
// schema, so an existing LibreChat file loads unchanged: its MCP part is used
// and every other LibreChat section is ignored and reported in
// Config.IgnoredSections. Switchboard's own sections are server and tools.
//
// The file is parsed to a YAML syntax tree and walked by hand, so every error
// names the file, line and column it is about, and all errors are reported at
// once. ${VAR} and ${VAR:-default} are expanded from the environment in every
// string value; {{...}} placeholders are left for the hub, which fills them in
// per user.
//
// The package has no dependencies on other Switchboard packages; cmd and the
// hub import it.
package config

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sort"
	"time"
)

// Defaults applied when the file leaves a setting out.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultMaxRequestBytes = 4 << 20
	DefaultTimezone        = "Asia/Seoul"
	DefaultTimeout         = 60 * time.Second
	DefaultInitTimeout     = 30 * time.Second

	// DefaultMaxSessionsPerUser is server.maxSessionsPerUser's default.
	DefaultMaxSessionsPerUser = 64

	// HTTP server limits (server.readTimeout and its siblings). Request
	// bodies are small (JSON-RPC messages, forms), so a read of one that
	// takes longer is a slow-body attack; streams are responses and are not
	// bounded by these.
	DefaultReadTimeout       = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10

	// DefaultFile is the file Find looks for in the working directory.
	DefaultFile = "switchboard.yaml"

	// BuiltinServer is the name of the in-process server the hub adds; a
	// configured server may not use it.
	BuiltinServer = "switchboard"
)

// Config is a loaded configuration file.
type Config struct {
	File            string    // path loaded ("<default>" for the embedded default)
	Servers         []*Server // mcpServers in file order
	Settings        Settings  // mcpSettings
	Listen          string    // server.listen
	PublicURL       string    // server.publicURL; "" when not set
	ReplicaURL      string    // server.replicaURL: where other replicas reach this one; "" when not set
	AllowedOrigins  []string  // server.allowedOrigins, added to the gateway's own origin
	MaxRequestBytes int64     // server.maxRequestBytes
	// TrustedProxies (server.trustedProxies) are the reverse proxies whose
	// X-Forwarded-For is believed, as CIDR prefixes (a bare address is its
	// /32 or /128); empty: none, the client is the connection's peer.
	TrustedProxies  []netip.Prefix
	HTTP            HTTP     // server.readTimeout, readHeaderTimeout, writeTimeout, idleTimeout, maxHeaderBytes
	Timezone        string   // tools.timezone, an IANA zone name
	Tools           Tools    // the rest of the tools section
	DataDir         string   // server.dataDir: state, keys; default "switchboard-data"
	Store           Store    // store section
	Secrets         Secrets  // secrets section
	Redis           Redis    // redis section
	Auth            Auth     // auth section
	Access          Access   // access section
	LLM             LLM      // llm section
	Agents          []*Agent // agents section
	IgnoredSections []string // top-level sections that were not used, in file order

	// MaxSessionsPerUser is server.maxSessionsPerUser: the stateful MCP
	// sessions one user may hold on one replica.
	MaxSessionsPerUser int
}

// HTTP holds the limits of Switchboard's HTTP server, as the file gives
// them; zero fields mean the defaults (see WithDefaults).
type HTTP struct {
	// ReadTimeout bounds reading a whole request, body included
	// (server.readTimeout). Zero: DefaultReadTimeout.
	ReadTimeout time.Duration
	// ReadHeaderTimeout bounds reading the request headers. Zero:
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds each write of a response (a client that stops
	// reading); the deadline moves forward with every write, so streams
	// (SSE) and slow tool calls are not cut. Zero: none.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long. Zero:
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request headers. Zero:
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
}

// WithDefaults returns h with its zero fields set to the defaults.
func (h HTTP) WithDefaults() HTTP {
	h.ReadTimeout = cmp.Or(h.ReadTimeout, DefaultReadTimeout)
	h.ReadHeaderTimeout = cmp.Or(h.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	h.IdleTimeout = cmp.Or(h.IdleTimeout, DefaultIdleTimeout)
	h.MaxHeaderBytes = cmp.Or(h.MaxHeaderBytes, DefaultMaxHeaderBytes)
	return h
}

// Server returns the server called name, or nil.
func (c *Config) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Settings is LibreChat's mcpSettings section.
type Settings struct {
	// AllowedDomains lists the domains remote servers may be reached at; empty
	// means no restriction beyond the hub's SSRF rules.
	AllowedDomains []string
	// AllowedAddresses lists private addresses (IP, CIDR or host:port) that
	// remote servers may use although they would otherwise be refused.
	AllowedAddresses []string
	// Breaker is mcpSettings.breaker, Switchboard's own: the circuit
	// breaker of every binding (shared and per user).
	Breaker Breaker
}

// Breaker configures the circuit breaker that stops a binding from
// reconnecting to a failing server without pause.
type Breaker struct {
	// Threshold is the number of failed connects in a row that opens the
	// circuit; 0: the hub's default (5).
	Threshold int
	// Cooldown is how long an open circuit refuses requests before one
	// half-open attempt is let through; 0: the hub's default (5 s).
	Cooldown time.Duration
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is Config.File for the embedded default configuration.
const DefaultName = "<default>"

// Default returns the embedded default configuration: no external servers,
// so it works offline.
func Default() *Config {
	c, err := Parse(DefaultName, defaultYAML, nil)
	if err != nil {
		panic("config: embedded default.yaml: " + err.Error())
	}
	return c
}

// Load reads and parses the file at path. lookupEnv resolves ${VAR}
// references; nil means no variable is set.
//
// Errors in the file are returned as an *Error, or an ErrorList when there
// are several.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, lookupEnv)
}

// Parse parses data as if read from file (used in positions only).
// lookupEnv resolves ${VAR} references; nil means no variable is set.
//
// Errors are returned as an *Error, or an ErrorList when there are several.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: file, lookupEnv: lookupEnv}
	c := d.decode(data)
	if len(d.errs) == 0 {
		return c, nil
	}
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].Pos, d.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(d.errs) == 1 {
		return nil, d.errs[0]
	}
	return nil, d.errs
}

// Find returns the configuration file to load: explicit when it is set (and
// stat finds it), else DefaultFile when it exists in the working directory,
// else "" which means Default(). stat is os.Stat-like; tests pass a fake.
func Find(explicit string, stat func(string) error) (string, error) {
	if explicit != "" {
		if err := stat(explicit); err != nil {
			return "", fmt.Errorf("config file: %w", err)
		}
		return explicit, nil
	}
	err := stat(DefaultFile)
	switch {
	case err == nil:
		return DefaultFile, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	default:
		return "", fmt.Errorf("config file: %w", err)
	}
}

// Top-level sections.
var (
	// ownSections are read by this package.
	ownSections = []string{"mcpServers", "mcpSettings", "server", "tools", "auth", "store", "secrets", "access", "llm", "agents", "redis"}

	// reservedSections are Switchboard sections that later versions will
	// read; they are accepted and ignored for now.
	reservedSections = []string{}

	// librechatSections are librechat.yaml's other top-level keys
	// (packages/data-provider/src/config.ts configSchema). They are ignored
	// without looking for typos of our own sections in them.
	librechatSections = []string{
		"version", "cache", "ocr", "webSearch", "langfuse", "memory",
		"summarization", "skillSync", "secureImageLinks", "imageOutputType",
		"includedTools", "filteredTools", "interface", "turnstile",
		"fileStrategy", "fileStrategies", "cloudfront", "actions",
		"registration", "balance", "transactions", "speech", "rateLimits",
		"fileConfig", "modelSpecs", "filters", "messageFilter", "endpoints",
	}
)

func isKnownIgnored(key string) bool {
	return slices.Contains(reservedSections, key) || slices.Contains(librechatSections, key)
}
