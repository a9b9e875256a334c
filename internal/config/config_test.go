package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // tools.timezone checks must not depend on the host's zoneinfo

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// env returns a lookupEnv over vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func ptr[T any](v T) *T { return &v }

// defaults returns the configuration of an empty file named file.
func defaults(file string) *Config {
	return &Config{
		File:            file,
		Listen:          "127.0.0.1:8080",
		MaxRequestBytes: 4 << 20,
		Timezone:        "Asia/Seoul",
		DataDir:         "switchboard-data",
		Store:           Store{Driver: "sqlite", Path: "switchboard.db"},
		Secrets:         Secrets{KeyFile: "secrets.json"},
		Auth:            Auth{LocalLogin: true, AccessTokenTTL: time.Hour, RefreshTokenTTL: 30 * 24 * time.Hour},

		MaxSessionsPerUser: 64,
	}
}

func TestLoadLibreChatServers(t *testing.T) {
	const file = "testdata/librechat_servers.yaml"
	got, err := Load(file, env(map[string]string{
		"EVERYTHING_KEY":          "k1",
		"SSE_KEY":                 "k2",
		"GITHUB_TOKEN":            "ghp_x",
		"EXAMPLE_KEY":             "ek",
		"ATLASSIAN_CLIENT_ID":     "cid",
		"ATLASSIAN_CLIENT_SECRET": "csecret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	pos := func(line int) Position { return Position{File: file, Line: line, Col: 3} }
	want := defaults(file)
	want.Settings = Settings{
		AllowedDomains:   []string{"api.githubcopilot.com", "*.example.com"},
		AllowedAddresses: []string{"10.0.0.5:3001"},
	}
	want.Servers = []*Server{
		{
			Name:    "everything",
			Pos:     pos(3),
			Type:    Stdio,
			Command: "npx",
			Args:    []string{"-y", "@modelcontextprotocol/server-everything"},
			Env: map[string]string{
				"API_KEY":  "k1",
				"PORT":     "8080",
				"DEBUG":    "true",
				"HOME_DIR": "/home/me",
			},
			Stderr:             "ignore",
			Timeout:            120 * time.Second,
			InitTimeout:        15 * time.Second,
			ServerInstructions: Instructions{Enabled: true},
			ChatMenu:           true,
			Startup:            true,
		},
		{
			Name: "legacy-sse",
			Pos:  pos(18),
			Type: SSE,
			URL:  "http://localhost:3001/sse",
			Headers: map[string]string{
				"X-User-ID": "{{LIBRECHAT_USER_ID}}",
				"X-API-Key": "k2",
			},
			Timeout:     60 * time.Second,
			InitTimeout: 30 * time.Second,
			ChatMenu:    false,
			Startup:     true,
		},
		{
			Name:               "github",
			Pos:                pos(24),
			Type:               StreamableHTTP,
			URL:                "https://api.githubcopilot.com/mcp/",
			Headers:            map[string]string{"Authorization": "Bearer ghp_x"},
			Timeout:            60 * time.Second,
			InitTimeout:        30 * time.Second,
			SSEReadTimeout:     300 * time.Second,
			ServerInstructions: Instructions{Enabled: true, Text: "Prefer search_code over list_files.\n"},
			ChatMenu:           true,
			Startup:            false,
			Title:              "GitHub",
			Description:        "GitHub tools",
			IconPath:           "/icons/github.svg",
		},
		{
			Name:        "alias-http",
			Pos:         pos(36),
			Type:        StreamableHTTP,
			URL:         "https://mcp.example.com/mcp",
			Timeout:     60 * time.Second,
			InitTimeout: 30 * time.Second,
			ChatMenu:    true,
			Startup:     true,
			APIKey:      &APIKey{Source: "admin", AuthorizationType: "bearer", Key: "ek"},
		},
		{
			Name:          "oauth-server",
			Pos:           pos(43),
			Type:          StreamableHTTP,
			URL:           "https://mcp.atlassian.com/v1/mcp",
			Timeout:       60 * time.Second,
			InitTimeout:   30 * time.Second,
			ChatMenu:      true,
			Startup:       true,
			RequiresOAuth: ptr(true),
			OAuth: &OAuth{
				AuthorizationURL:                       "https://auth.atlassian.com/authorize",
				TokenURL:                               "https://auth.atlassian.com/oauth/token",
				ClientID:                               "cid",
				ClientSecret:                           "csecret",
				Scope:                                  "read:jira-work offline_access",
				RedirectURI:                            "https://chat.example.com/api/mcp/oauth-server/oauth/callback",
				TokenExchangeMethod:                    "basic_auth_header",
				GrantTypesSupported:                    []string{"authorization_code", "refresh_token"},
				TokenEndpointAuthMethodsSupported:      []string{"client_secret_basic"},
				ResponseTypesSupported:                 []string{"code"},
				CodeChallengeMethodsSupported:          []string{"S256"},
				SkipCodeChallengeCheck:                 true,
				RevocationEndpoint:                     "https://auth.atlassian.com/oauth/revoke",
				RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic"},
			},
			OAuthHeaders: map[string]string{"User-Agent": "LibreChat"},
		},
		{
			Name:        "per-user-key",
			Pos:         pos(64),
			Type:        SSE,
			URL:         "https://mcp.example.org/sse",
			Timeout:     60 * time.Second,
			InitTimeout: 30 * time.Second,
			ChatMenu:    true,
			Startup:     true,
			APIKey:      &APIKey{Source: "user", AuthorizationType: "custom", CustomHeader: "X-Api-Key"},
			CustomUserVars: map[string]CustomUserVar{
				"EXAMPLE_TOKEN": {Title: "Example token", Description: "Create one at <a href='https://example.org'>example.org</a>", Sensitive: true},
				"REGION":        {Title: "Region", Description: "Your region", Sensitive: false},
			},
			Headers: map[string]string{
				"X-Token":  "{{EXAMPLE_TOKEN}}",
				"X-Region": "{{REGION}}",
			},
			ServerInstructions: Instructions{Enabled: true, Text: "Always answer in Korean."},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", file, diff)
	}
	if s := got.Server("github"); s == nil || s.Name != "github" {
		t.Errorf("Server(%q) = %v", "github", s)
	}
	if s := got.Server("nope"); s != nil {
		t.Errorf("Server(%q) = %v, want nil", "nope", s)
	}
	if diff := cmp.Diff([]string{"EXAMPLE_TOKEN", "REGION"}, got.Server("per-user-key").CustomUserVarNames()); diff != "" {
		t.Errorf("CustomUserVarNames mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadFullLibreChat(t *testing.T) {
	const file = "testdata/librechat_full.yaml"
	// No variables are set: ${...} in ignored sections must not be read.
	got, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := defaults(file)
	want.IgnoredSections = []string{
		"version", "cache", "interface", "registration", "fileConfig",
		"speech", "endpoints", "modelSpecs", "webSearch", "rateLimits",
		"someFutureLibreChatSection", "turnstile",
	}
	want.Settings.AllowedDomains = []string{"localhost"}
	want.Servers = []*Server{
		{
			Name: "filesystem", Pos: Position{file, 43, 3}, Type: Stdio,
			Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/home/user/Desktop"},
			Timeout: 60 * time.Second, InitTimeout: 30 * time.Second, ChatMenu: true, Startup: true,
		},
		{
			Name: "puppeteer", Pos: Position{file, 46, 3}, Type: Stdio,
			Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-puppeteer"},
			Timeout: 300 * time.Second, InitTimeout: 30 * time.Second, ChatMenu: true, Startup: true,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", file, diff)
	}
}

func TestLoadJSON(t *testing.T) {
	const file = "testdata/switchboard.json"
	got, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:            file,
		Listen:          "0.0.0.0:9090",
		PublicURL:       "https://switchboard.example.com",
		ReplicaURL:      "http://10.0.0.5:9090",
		AllowedOrigins:  []string{"https://claude.ai"},
		MaxRequestBytes: 1 << 20,
		Timezone:        "UTC",

		MaxSessionsPerUser: 64,
		Servers: []*Server{
			{
				Name: "time", Pos: Position{file, 10, 3}, Type: Stdio,
				Command: "uvx", Args: []string{"mcp-server-time"}, Env: map[string]string{"TZ": "UTC"},
				Timeout: 60 * time.Second, InitTimeout: 30 * time.Second, ChatMenu: true, Startup: true,
			},
			{
				Name: "remote", Pos: Position{file, 11, 3}, Type: StreamableHTTP,
				URL:     "https://mcp.example.com/mcp",
				Timeout: 5 * time.Second, InitTimeout: 30 * time.Second, ChatMenu: true, Startup: true,
			},
		},
	}
	d := defaults(file)
	want.DataDir, want.Store, want.Secrets, want.Auth = d.DataDir, d.Store, d.Secrets, d.Auth
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%s) mismatch (-want +got):\n%s", file, diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty file", ""},
		{"comments only", "# nothing here\n"},
		{"empty document", "---\n"},
		{"null sections", "server:\ntools:\nmcpServers:\nmcpSettings:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("x.yaml", []byte(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(defaults("x.yaml"), got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("Default", func(t *testing.T) {
		if diff := cmp.Diff(defaults(DefaultName), Default()); diff != "" {
			t.Errorf("Default() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestParseValues(t *testing.T) {
	vars := env(map[string]string{"HOST": "mcp.example.com", "EMPTY": "", "PORT": "9000", "ON": "false", "MS": "1500"})
	tests := []struct {
		name string
		in   string
		want func(c *Config)
	}{
		{
			name: "env default used when unset or empty",
			in:   "mcpServers:\n  a:\n    url: https://${HOST}/${MISSING:-mcp}${EMPTY:-/v1}\n",
			want: func(c *Config) { c.Servers[0].URL = "https://mcp.example.com/mcp/v1" },
		},
		{
			name: "escape",
			in:   "mcpServers:\n  a:\n    command: echo\n    args: [\"$${HOST}\", \"pa$$word\", \"$HOME\"]\n",
			want: func(c *Config) { c.Servers[0].Args = []string{"${HOST}", "pa$$word", "$HOME"} },
		},
		{
			name: "numbers and booleans from env",
			in:   "server:\n  listen: 127.0.0.1:${PORT}\n  maxRequestBytes: ${MS}\n  maxSessionsPerUser: ${MS}\nmcpServers:\n  a:\n    command: x\n    timeout: ${MS}\n    startup: ${ON}\n",
			want: func(c *Config) {
				c.Listen = "127.0.0.1:9000"
				c.MaxRequestBytes = 1500
				c.MaxSessionsPerUser = 1500
				c.Servers[0].Timeout = 1500 * time.Millisecond
				c.Servers[0].Startup = false
			},
		},
		{
			name: "server.trustedProxies: prefixes and bare addresses",
			in:   "server:\n  trustedProxies: [10.0.0.0/8, \"192.0.2.7\", \"2001:db8::/32\", \"::ffff:10.1.1.1\"]\n",
			want: func(c *Config) {
				c.TrustedProxies = []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
					netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.1.1.1/32"),
				}
			},
		},
		{
			name: "http server limits",
			in:   "server:\n  readTimeout: 2s\n  readHeaderTimeout: 1s\n  idleTimeout: 1500\n  writeTimeout: 1m\n  maxHeaderBytes: 8192\n",
			want: func(c *Config) {
				c.HTTP = HTTP{ReadTimeout: 2 * time.Second, ReadHeaderTimeout: time.Second, IdleTimeout: 1500 * time.Millisecond, WriteTimeout: time.Minute, MaxHeaderBytes: 8192}
			},
		},
		{
			name: "serverInstructions false and empty",
			in:   "mcpServers:\n  a:\n    command: x\n    serverInstructions: false\n  b:\n    command: x\n    serverInstructions: \"\"\n",
			want: func(c *Config) {},
		},
		{
			name: "breaker settings",
			in:   "mcpSettings:\n  breaker:\n    threshold: 3\n    cooldown: 2500\nmcpServers:\n  a:\n    command: x\n",
			want: func(c *Config) { c.Settings.Breaker = Breaker{Threshold: 3, Cooldown: 2500 * time.Millisecond} },
		},
		{
			name: "breaker cooldown as a duration",
			in:   "mcpSettings:\n  breaker:\n    cooldown: 10s\nmcpServers:\n  a:\n    command: x\n",
			want: func(c *Config) { c.Settings.Breaker = Breaker{Cooldown: 10 * time.Second} },
		},
		{
			name: "zero timeouts mean the defaults",
			in:   "mcpServers:\n  a:\n    command: x\n    timeout: 0\n    initTimeout: 0\n    sseReadTimeout: 0\n",
			want: func(c *Config) {},
		},
		{
			name: "anchors and merge keys",
			in: "x-common: &common\n  timeout: 90000\n  startup: false\n" +
				"mcpServers:\n  a:\n    <<: *common\n    command: x\n  b:\n    <<: *common\n    command: x\n    startup: true\n",
			want: func(c *Config) {
				c.IgnoredSections = []string{"x-common"}
				c.Servers[0].Timeout = 90 * time.Second
				c.Servers[0].Startup = false
				c.Servers[1].Timeout = 90 * time.Second
			},
		},
		{
			name: "stderr file descriptor",
			in:   "mcpServers:\n  a:\n    command: x\n    stderr: 2\n",
			want: func(c *Config) { c.Servers[0].Stderr = "2" },
		},
		{
			name: "lenient names",
			in:   "mcpServers:\n  My.Server_1-x@host:\n    command: x\n",
			want: func(c *Config) {},
		},
		{
			name: "url with placeholders",
			in:   "mcpServers:\n  a:\n    url: https://{{TENANT}}.example.com/u/{{LIBRECHAT_USER_ID}}\n",
			want: func(c *Config) {},
		},
		{
			name: "obo",
			in:   "mcpServers:\n  a:\n    type: http\n    url: https://x.example\n    obo:\n      scopes: api://abc/Mcp.Tools\n",
			want: func(c *Config) { c.Servers[0].OBO = &OBO{Scopes: "api://abc/Mcp.Tools"} },
		},
		{
			name: "empty own sections",
			in:   "llm: {}\nagents: []\nauth: {}\nsecrets: {}\nstore: {}\n",
			want: func(c *Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("t.yaml", []byte(tt.in), vars)
			if err != nil {
				t.Fatal(err)
			}
			// Build want from got's servers with defaults, then apply
			// the expected differences.
			want := defaults("t.yaml")
			for _, s := range got.Servers {
				w := &Server{Name: s.Name, Pos: s.Pos, Type: s.Type, Command: s.Command, Args: s.Args, URL: s.URL,
					Timeout: DefaultTimeout, InitTimeout: DefaultInitTimeout, ChatMenu: true, Startup: true}
				want.Servers = append(want.Servers, w)
			}
			tt.want(want)
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	vars := env(map[string]string{"SET": "x"})
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "typo in server key",
			in:   "mcpServers:\n  gh:\n    comand: npx\n",
			want: "t.yaml:2:3: server \"gh\" needs command (for a stdio server) or url (for sse or streamable-http)\n" +
				"t.yaml:3:5: unknown key \"comand\" in server \"gh\"; did you mean \"command\"?",
		},
		{
			name: "typos with hints",
			in:   "mcpServers:\n  gh:\n    url: https://x.example\n    header: {}\n    initTimout: 5\n    InitTimeout: 5\n",
			want: "t.yaml:4:5: unknown key \"header\" in server \"gh\"; did you mean \"headers\"?\n" +
				"t.yaml:5:5: unknown key \"initTimout\" in server \"gh\"; did you mean \"initTimeout\"?\n" +
				"t.yaml:6:5: unknown key \"InitTimeout\" in server \"gh\"; did you mean \"initTimeout\"?",
		},
		{
			name: "unknown key without hint",
			in:   "mcpServers:\n  gh:\n    command: x\n    frobnicate: 1\n",
			want: "t.yaml:4:5: unknown key \"frobnicate\" in server \"gh\"",
		},
		{
			name: "typo of top-level section",
			in:   "mcpServer:\n  a: {}\nsever:\n  listen: x\n",
			want: "t.yaml:1:1: unknown top-level section \"mcpServer\"; did you mean \"mcpServers\"?\n" +
				"t.yaml:3:1: unknown top-level section \"sever\"; did you mean \"server\"?",
		},
		{
			name: "typos in nested blocks",
			in: "server:\n  listn: x\ntools:\n  timezon: UTC\nmcpSettings:\n  allowedDomain: []\n" +
				"mcpServers:\n  a:\n    url: https://x.example\n    oauth:\n      client_idd: x\n    apiKey:\n      source: admin\n      authorization_type: bearer\n      keys: x\n" +
				"    customUserVars:\n      V:\n        titel: t\n",
			want: "t.yaml:2:3: unknown key \"listn\" in server; did you mean \"listen\"?\n" +
				"t.yaml:4:3: unknown key \"timezon\" in tools; did you mean \"timezone\"?\n" +
				"t.yaml:6:3: unknown key \"allowedDomain\" in mcpSettings; did you mean \"allowedDomains\"?\n" +
				"t.yaml:11:7: unknown key \"client_idd\" in oauth; did you mean \"client_id\"?\n" +
				"t.yaml:15:7: unknown key \"keys\" in apiKey; did you mean \"key\"?\n" +
				"t.yaml:18:9: unknown key \"titel\" in customUserVars.V; did you mean \"title\"?",
		},
		{
			name: "missing env var",
			in:   "mcpServers:\n  a:\n    url: https://x.example\n    headers:\n      Authorization: Bearer ${GITHUB_TOKEN}\n",
			want: "t.yaml:5:22: headers.Authorization: environment variable GITHUB_TOKEN is not set",
		},
		{
			name: "bad variable reference",
			in:   "mcpServers:\n  a:\n    command: \"${SET\"\n  b:\n    command: \"${not valid}\"\n",
			want: "t.yaml:3:14: command: unterminated \"${\" (write $${ for a literal ${)\n" +
				"t.yaml:5:14: command: bad variable reference \"${not valid}\": want ${NAME} or ${NAME:-default} (write $${ for a literal ${)",
		},
		{
			name: "bad URLs",
			in: "mcpServers:\n  a:\n    url: /relative\n  b:\n    type: http\n    url: ftp://x.example\n  c:\n    url: \"http://[::1\"\n" +
				"  d:\n    url: https://\n  e:\n    type: sse\n",
			want: "t.yaml:3:10: url: URL must be absolute (start with http:// or https://)\n" +
				"t.yaml:6:10: url: URL scheme must be http or https, not \"ftp\"\n" +
				"t.yaml:8:10: url: invalid URL: missing ']' in host\n" +
				"t.yaml:10:10: url: URL has no host\n" +
				"t.yaml:11:3: sse server \"e\" needs url",
		},
		{
			name: "websocket",
			in:   "mcpServers:\n  a:\n    url: wss://x.example/ws\n  b:\n    type: websocket\n    url: ws://x.example\n  c:\n    type: sse\n    url: ws://x.example\n",
			want: "t.yaml:3:10: websocket transport is not supported; use streamable-http or sse\n" +
				"t.yaml:5:11: websocket transport is not supported; use streamable-http or sse\n" +
				"t.yaml:9:10: websocket transport is not supported; use streamable-http or sse",
		},
		{
			name: "unknown type",
			in:   "mcpServers:\n  a:\n    type: streamable_http\n    url: https://x.example\n",
			want: "t.yaml:3:11: unknown type \"streamable_http\"; want stdio, sse, streamable-http or http (did you mean \"streamable-http\"?)",
		},
		{
			name: "transport conflicts",
			in: "mcpServers:\n  a:\n    command: x\n    url: https://x.example\n  b:\n    type: stdio\n    headers: {A: b}\n" +
				"  c:\n    type: sse\n    url: https://x.example\n    env: {A: b}\n",
			want: "t.yaml:4:5: server \"a\" sets both command and url; use command for a stdio server or url for sse and streamable-http\n" +
				"t.yaml:5:3: stdio server \"b\" needs command\n" +
				"t.yaml:7:5: headers is not used by stdio servers\n" +
				"t.yaml:11:5: env is not used by sse servers",
		},
		{
			name: "wrong types",
			in: "mcpServers:\n  a:\n    command: [x]\n    args: \"x\"\n    env: [a]\n    timeout: fast\n    startup: \"yes\"\n" +
				"    serverInstructions: 3\n    title: 5\n",
			want: "t.yaml:3:14: command must be a string, got a list\n" +
				"t.yaml:4:11: args must be a list of strings, got a string\n" +
				"t.yaml:5:10: env must be a mapping, got a list\n" +
				"t.yaml:6:14: timeout must be a whole number, got a string\n" +
				"t.yaml:7:14: startup must be true or false, got a string\n" +
				"t.yaml:8:25: serverInstructions must be true, false or a string, got a number\n" +
				"t.yaml:9:12: title must be a string, got a number",
		},
		{
			name: "wrong section types",
			in:   "mcpServers: [a]\nserver: 1\n",
			want: "t.yaml:1:13: mcpServers must be a mapping, got a list\n" +
				"t.yaml:2:9: server must be a mapping, got a number",
		},
		{
			name: "top level not a mapping",
			in:   "- a\n- b\n",
			want: "t.yaml:1:1: the top level of a config file must be a mapping, got a list",
		},
		{
			name: "bad numbers",
			in:   "server:\n  maxRequestBytes: 0\nmcpServers:\n  a:\n    command: x\n    timeout: -1\n    initTimeout: 1.5\n",
			want: "t.yaml:2:20: server.maxRequestBytes must be a positive number, got 0\n" +
				"t.yaml:6:14: timeout must be a positive number of milliseconds, got -1\n" +
				"t.yaml:7:18: initTimeout must be a whole number, got 1.5",
		},
		{
			name: "session cap",
			in:   "server:\n  maxSessionsPerUser: 0\n",
			want: "t.yaml:2:23: server.maxSessionsPerUser must be a positive number (at most 1048576), got 0",
		},
		{
			name: "yaml syntax error",
			in:   "mcpServers:\n  a:\n    args: [x, y\n",
			want: "t.yaml:3:11: yaml: sequence end token ']' not found",
		},
		{
			name: "duplicate keys",
			in:   "mcpServers:\n  a:\n    command: x\n    command: y\n  a:\n    command: z\n",
			want: "t.yaml:4:5: duplicate key \"command\" (first defined at 3:5)\n" +
				"t.yaml:5:3: duplicate key \"a\" (first defined at 2:3)",
		},
		{
			name: "reserved and bad names",
			in: "mcpServers:\n  switchboard:\n    command: x\n  \"a/b\":\n    command: x\n  \"a b\":\n    command: x\n" +
				"  \"a?\":\n    command: x\n  \"..\":\n    command: x\n",
			want: "t.yaml:2:3: server name \"switchboard\" is reserved for Switchboard's built-in server\n" +
				"t.yaml:4:3: server name \"a/b\" must not contain '/': names are used in URLs (/mcp/{name})\n" +
				"t.yaml:6:3: server name \"a b\" must not contain spaces or control characters: names are used in URLs (/mcp/{name})\n" +
				"t.yaml:8:3: server name \"a?\" must not contain '?': names are used in URLs (/mcp/{name})\n" +
				"t.yaml:10:3: server name \"..\" cannot be used in a URL path",
		},
		{
			name: "apiKey and oauth values",
			in: "mcpServers:\n  a:\n    url: https://x.example\n    apiKey:\n      source: admins\n      authorization_type: custom\n" +
				"    oauth:\n      token_exchange_method: post\n      token_url: not a url\n  b:\n    url: https://x.example\n    apiKey: {key: k}\n",
			want: "t.yaml:5:15: apiKey.source must be admin or user, got \"admins\"\n" +
				"t.yaml:6:27: apiKey.authorization_type custom needs custom_header\n" +
				"t.yaml:8:30: oauth.token_exchange_method must be default_post or basic_auth_header, got \"post\"\n" +
				"t.yaml:9:18: oauth.token_url: URL must be absolute (start with http:// or https://)\n" +
				"t.yaml:12:5: apiKey needs source (admin or user)\n" +
				"t.yaml:12:5: apiKey needs authorization_type (bearer, basic or custom)",
		},
		{
			name: "server section values",
			in:   "server:\n  listen: localhost\n  publicURL: example.com\n  allowedOrigins: [\"https://claude.ai/chat\"]\n  replicaURL: http://10.0.0.5:8080/mcp\ntools:\n  timezone: Mars/Olympus\n",
			want: "t.yaml:2:11: server.listen: missing port in address (want host:port, e.g. \"127.0.0.1:8080\")\n" +
				"t.yaml:3:14: server.publicURL: URL must be absolute (start with http:// or https://)\n" +
				"t.yaml:4:19: server.allowedOrigins: \"https://claude.ai/chat\" is not an origin: want scheme://host[:port] with no path\n" +
				"t.yaml:5:15: server.replicaURL: want a base URL without a path, e.g. \"http://10.0.0.5:8080\"\n" +
				"t.yaml:7:13: tools.timezone: \"Mars/Olympus\" is not an IANA time zone name (e.g. \"Asia/Seoul\", \"UTC\")",
		},
		{
			name: "server.trustedProxies entries",
			in:   "server:\n  trustedProxies:\n    - 10.0.0.0/8\n    - proxy.internal\n    - 192.168.1.7/24\n    - 10.0.0.0/33\n",
			want: "t.yaml:4:7: server.trustedProxies[1]: \"proxy.internal\" is not a CIDR prefix or IP address (want e.g. \"10.0.0.0/8\" or \"192.0.2.7\")\n" +
				"t.yaml:5:7: server.trustedProxies[2]: \"192.168.1.7/24\" has bits set beyond its /24; did you mean \"192.168.1.0/24\"?\n" +
				"t.yaml:6:7: server.trustedProxies[3]: \"10.0.0.0/33\" is not a CIDR prefix or IP address (want e.g. \"10.0.0.0/8\" or \"192.0.2.7\")",
		},
		{
			name: "server.trustedProxies not a list",
			in:   "server:\n  trustedProxies: 10.0.0.0/8\n",
			want: "t.yaml:2:19: server.trustedProxies must be a list of CIDR prefixes such as \"10.0.0.0/8\", got a string",
		},
		{
			name: "bad header name and stderr",
			in:   "mcpServers:\n  a:\n    url: https://x.example\n    headers:\n      \"Bad Header\": x\n  b:\n    command: x\n    stderr: loud\n",
			want: "t.yaml:4:5: headers: \"Bad Header\" is not a valid header name\n" +
				"t.yaml:8:13: stderr must be pipe, ignore, inherit or a file descriptor number, got \"loud\"",
		},
		{
			name: "unknown alias",
			in:   "mcpServers:\n  a:\n    command: *nope\n",
			want: "t.yaml:3:14: unknown alias *nope",
		},
		{
			name: "byte order mark and CRLF",
			in:   "\ufeffmcpServers:\r\n  a:\r\n    command: x\r\n    comand: y\r\n",
			want: "t.yaml:4:5: unknown key \"comand\" in server \"a\"; did you mean \"command\"?",
		},
		{
			name: "number too large",
			in:   "mcpServers:\n  a:\n    command: x\n    timeout: 99999999999999999999\n    initTimeout: 9999999999999999\n",
			want: "t.yaml:4:14: timeout is too large\n" +
				"t.yaml:5:18: initTimeout is too large",
		},
		{
			name: "breaker out of range and misspelt",
			in:   "mcpSettings:\n  breaker:\n    threshold: 0\n    cooldown: 50\n    cooldwn: 5\n",
			want: "t.yaml:3:16: mcpSettings.breaker.threshold must be between 1 and 1000 failures, got 0\n" +
				"t.yaml:4:15: mcpSettings.breaker.cooldown must be between 100ms and 1h, got 50ms\n" +
				"t.yaml:5:5: unknown key \"cooldwn\" in mcpSettings.breaker; did you mean \"cooldown\"?",
		},
		{
			name: "multiple documents",
			in:   "server: {}\n---\ntools: {}\n",
			want: "t.yaml:3:6: a config file holds one YAML document; found another",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.in), vars)
			if err == nil {
				t.Fatalf("Parse succeeded, want error:\n%s\ngot config: %+v", tt.want, c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("errors.As(%T, *Error) = false", err)
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	vars := env(map[string]string{"A": "1", "EMPTY": "", "NESTED": "${A}"})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1"},
		{in: "x${A}y${A}", want: "x1y1"},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${A:-def}", want: "1"},
		{in: "${EMPTY}", want: ""},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-{{LIBRECHAT_USER_ID}}}", want: "{{LIBRECHAT_USER_ID}}"},
		{in: "${NESTED}", want: "${A}"}, // values are not expanded again
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"},
		{in: "$A $$ $", want: "$A $$ $"},
		{in: "{{LIBRECHAT_USER_EMAIL}}", want: "{{LIBRECHAT_USER_EMAIL}}"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${", err: `unterminated "${" (write $${ for a literal ${)`},
		{in: "${}", err: `bad variable reference "${}": want ${NAME} or ${NAME:-default} (write $${ for a literal ${)`},
		{in: "${1A}", err: `bad variable reference "${1A}": want ${NAME} or ${NAME:-default} (write $${ for a literal ${)`},
		{in: "${A-x}", err: `bad variable reference "${A-x}": want ${NAME} or ${NAME:-default} (write $${ for a literal ${)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv(tt.in, vars)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.err || got != tt.want {
				t.Errorf("expandEnv(%q) = %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.err)
			}
		})
	}
}

func TestUserScopedAndPending(t *testing.T) {
	tests := []struct {
		name       string
		server     string
		userScoped bool
		pending    []string
	}{
		{name: "plain stdio", server: "command: x\nenv: {A: b}"},
		{name: "admin api key", server: "url: https://x.example\napiKey: {source: admin, authorization_type: bearer, key: k}"},
		{
			name:       "user placeholder in url",
			server:     "url: https://x.example/{{LIBRECHAT_USER_ID}}",
			userScoped: true,
		},
		{
			name:       "placeholders in env and args",
			server:     "command: x\nargs: [\"--user={{LIBRECHAT_USER_EMAIL}}\"]\nenv: {U: \"{{LIBRECHAT_USER_ID}}\"}",
			userScoped: true,
		},
		{
			name:       "customUserVars",
			server:     "url: https://x.example\nheaders: {T: \"{{TOKEN}}\"}\ncustomUserVars: {TOKEN: {title: T, description: D}}",
			userScoped: true,
		},
		{
			name:       "user api key",
			server:     "url: https://x.example\napiKey: {source: user, authorization_type: basic}",
			userScoped: true,
		},
		{
			name:       "admin api key without key",
			server:     "url: https://x.example\napiKey: {source: admin, authorization_type: bearer}",
			userScoped: false,
			pending:    []string{"apiKey source admin has no key; set apiKey.key (e.g. key: ${MY_API_KEY})"},
		},
		{
			name:       "oauth",
			server:     "url: https://x.example\noauth: {}",
			userScoped: true,
		},
		{
			name:       "requiresOAuth",
			server:     "url: https://x.example\nrequiresOAuth: true",
			userScoped: true,
		},
		{name: "requiresOAuth false", server: "url: https://x.example\nrequiresOAuth: false"},
		{
			name:       "obo",
			server:     "url: https://x.example\nobo: {scopes: s}",
			userScoped: true,
			pending:    []string{"obo (On-Behalf-Of token exchange) is not implemented yet"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "mcpServers:\n  s:\n    " + strings.ReplaceAll(tt.server, "\n", "\n    ") + "\n"
			c, err := Parse("t.yaml", []byte(in), nil)
			if err != nil {
				t.Fatal(err)
			}
			s := c.Server("s")
			if got := s.UserScoped(); got != tt.userScoped {
				t.Errorf("UserScoped() = %v, want %v", got, tt.userScoped)
			}
			if diff := cmp.Diff(tt.pending, s.PendingFeatures()); diff != "" {
				t.Errorf("PendingFeatures() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFind(t *testing.T) {
	errPerm := fmt.Errorf("stat: %w", fs.ErrPermission)
	tests := []struct {
		name     string
		explicit string
		files    map[string]error // stat result per path; absent = not found
		want     string
		wantErr  error
	}{
		{name: "explicit", explicit: "my.yaml", files: map[string]error{"my.yaml": nil, DefaultFile: nil}, want: "my.yaml"},
		{name: "explicit missing", explicit: "my.yaml", files: map[string]error{DefaultFile: nil}, wantErr: fs.ErrNotExist},
		{name: "working directory", files: map[string]error{DefaultFile: nil}, want: DefaultFile},
		{name: "none", want: ""},
		{name: "unreadable", files: map[string]error{DefaultFile: errPerm}, wantErr: fs.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stat := func(p string) error {
				err, ok := tt.files[p]
				if !ok {
					return &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
				}
				return err
			}
			got, err := Find(tt.explicit, stat)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil) != (err != nil) {
				t.Fatalf("Find error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Find = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	c, err := Load("testdata/librechat_servers.yaml", env(map[string]string{
		"EVERYTHING_KEY": "SECRET1", "SSE_KEY": "SECRET2", "GITHUB_TOKEN": "SECRET3", "EXAMPLE_KEY": "SECRET4",
		"ATLASSIAN_CLIENT_ID": "cid", "ATLASSIAN_CLIENT_SECRET": "SECRET5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.Servers = append(c.Servers, &Server{
		Name: "redacted", Pos: Position{File: "extra.yaml", Line: 1, Col: 1}, Type: StreamableHTTP, URL: "https://user:SECRET6@x.example/mcp?key=SECRET7",
		Timeout: 500 * time.Millisecond, InitTimeout: DefaultInitTimeout,
	})
	got := Explain(c) + "\n" + Explain(Default())
	if strings.Contains(got, "SECRET") {
		t.Errorf("Explain shows a secret:\n%s", got)
	}
	golden := filepath.Join("testdata", "explain.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("Explain mismatch (-want +got), run with -update if intended:\n%s", diff)
	}
}

func TestSectionListsDisjoint(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range sectionNames() {
		if seen[s] {
			t.Errorf("section %q is listed twice", s)
		}
		seen[s] = true
	}
}

func ExampleParse() {
	const file = `
version: 1.2.8          # LibreChat sections are ignored
mcpServers:
  github:
    type: http
    url: https://api.githubcopilot.com/mcp/
    headers:
      Authorization: Bearer ${GITHUB_TOKEN}
`
	lookupEnv := func(name string) (string, bool) {
		if name == "GITHUB_TOKEN" {
			return "ghp_example", true
		}
		return "", false
	}
	c, err := Parse("switchboard.yaml", []byte(file), lookupEnv)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := c.Server("github")
	fmt.Println(s.Type, s.URL, s.Timeout, c.IgnoredSections)

	_, err = Parse("switchboard.yaml", []byte(file), nil)
	fmt.Println(err)
	// Output:
	// streamable-http https://api.githubcopilot.com/mcp/ 1m0s [version]
	// switchboard.yaml:8:22: headers.Authorization: environment variable GITHUB_TOKEN is not set
}
