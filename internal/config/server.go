package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/goccy/go-yaml/ast"
)

// Transport is how the hub talks to an upstream server.
type Transport string

const (
	Stdio          Transport = "stdio"
	SSE            Transport = "sse"
	StreamableHTTP Transport = "streamable-http"
)

// Server is one entry of mcpServers. Field comments give the LibreChat key.
type Server struct {
	Name string
	Pos  Position // position of the server's key
	// Type is the transport (type). "http" is read as StreamableHTTP. When
	// type is left out it is inferred as LibreChat does: stdio when command
	// is set, else sse.
	Type Transport

	// stdio
	Command string            // command
	Args    []string          // args
	Env     map[string]string // env, added to the hub's own environment
	Stderr  string            // stderr: "pipe", "ignore", "inherit" or a file descriptor number; "" = inherit
	Cwd     string            // cwd (a Switchboard addition); "" = the hub's working directory

	// sse and streamable-http
	URL     string            // url
	Headers map[string]string // headers

	Timeout        time.Duration // timeout (ms in the file) per request; DefaultTimeout when not set or 0
	InitTimeout    time.Duration // initTimeout (ms); DefaultInitTimeout when not set or 0
	SSEReadTimeout time.Duration // sseReadTimeout (ms); 0 = none

	ServerInstructions Instructions // serverInstructions
	ChatMenu           bool         // chatMenu; default true
	Startup            bool         // startup; default true: connect when the hub starts

	Title       string // title
	Description string // description
	IconPath    string // iconPath

	RequiresOAuth *bool             // requiresOAuth; nil = detect on 401
	OAuth         *OAuth            // oauth
	OAuthHeaders  map[string]string // oauth_headers, sent with OAuth discovery, registration and token requests
	// APIKey (apiKey): with source admin the hub sends Key in the
	// Authorization (or custom) header itself, which works today; with
	// source user each user must supply the key, which needs sign-in.
	APIKey *APIKey
	OBO    *OBO // obo: On-Behalf-Of token exchange

	// CustomUserVars (customUserVars) are values each user enters, used
	// as {{NAME}} placeholders. CustomUserVarNames lists the names sorted.
	CustomUserVars map[string]CustomUserVar

	Proxy string // proxy (a Switchboard addition): HTTP proxy URL for this server; "" = none
}

// Instructions is serverInstructions: false or absent (not Enabled); true
// (Enabled, use the server's own instructions); or a string (Enabled, with
// Text replacing the server's own).
type Instructions struct {
	Enabled bool
	Text    string
}

// OAuth is a server's oauth block. Every field is optional: what is left out
// is discovered (RFC 9728, RFC 8414) or registered dynamically (RFC 7591).
type OAuth struct {
	AuthorizationURL                       string   // authorization_url
	TokenURL                               string   // token_url
	ClientID                               string   // client_id
	ClientSecret                           string   // client_secret
	Scope                                  string   // scope
	RedirectURI                            string   // redirect_uri
	TokenExchangeMethod                    string   // token_exchange_method: "default_post" or "basic_auth_header"
	GrantTypesSupported                    []string // grant_types_supported
	TokenEndpointAuthMethodsSupported      []string // token_endpoint_auth_methods_supported
	ResponseTypesSupported                 []string // response_types_supported
	CodeChallengeMethodsSupported          []string // code_challenge_methods_supported
	SkipCodeChallengeCheck                 bool     // skip_code_challenge_check
	RevocationEndpoint                     string   // revocation_endpoint
	RevocationEndpointAuthMethodsSupported []string // revocation_endpoint_auth_methods_supported
	Audience                               string   // audience (a Switchboard addition)
}

// APIKey is a server's apiKey block.
type APIKey struct {
	Source            string // source: "admin" (Key is shared) or "user" (each user's own)
	AuthorizationType string // authorization_type: "bearer", "basic" or "custom"
	CustomHeader      string // custom_header, the header for "custom"
	Key               string // key, for source admin
}

// OBO is a server's obo block: exchange the signed-in user's token for one
// scoped to the server (OAuth 2.0 On-Behalf-Of, jwt-bearer grant).
type OBO struct {
	Scopes string // scopes
}

// CustomUserVar describes a value each user enters for a server.
type CustomUserVar struct {
	Title       string
	Description string
	Sensitive   bool // sensitive; default true: stored encrypted and never shown back
}

// CustomUserVarNames returns the names of s.CustomUserVars, sorted.
func (s *Server) CustomUserVarNames() []string {
	names := make([]string, 0, len(s.CustomUserVars))
	for name := range s.CustomUserVars {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Placeholders returns the names of the {{NAME}} placeholders in the
// server's settings, sorted without repeats.
func (s *Server) Placeholders() []string {
	var names []string
	add := func(vals ...string) {
		for _, v := range vals {
			names = append(names, placeholders(v)...)
		}
	}
	add(s.Command, s.Cwd, s.URL, s.Proxy)
	add(s.Args...)
	for _, m := range []map[string]string{s.Env, s.Headers, s.OAuthHeaders} {
		for k, v := range m {
			add(k, v)
		}
	}
	if o := s.OAuth; o != nil {
		add(o.AuthorizationURL, o.TokenURL, o.ClientID, o.ClientSecret, o.Scope, o.RedirectURI, o.RevocationEndpoint, o.Audience)
	}
	if k := s.APIKey; k != nil {
		add(k.Key)
	}
	return uniqueSorted(names)
}

// UserScoped reports whether the server's connection depends on who is
// calling, so the hub needs one connection per user.
func (s *Server) UserScoped() bool {
	return len(s.Placeholders()) > 0 ||
		len(s.CustomUserVars) > 0 ||
		(s.APIKey != nil && s.APIKey.Source == "user") ||
		s.OAuth != nil ||
		(s.RequiresOAuth != nil && *s.RequiresOAuth) ||
		s.OBO != nil
}

// PendingFeatures returns sentences naming what this server needs that
// Switchboard does not do yet; empty when the hub can run it now.
// Per-user placeholders, customUserVars, apiKey with source user and OAuth
// need sign-in; the hub reports that itself when it runs without it.
func (s *Server) PendingFeatures() []string {
	var out []string
	var inCommand []string
	for _, v := range []string{s.Command, s.Cwd} {
		for _, p := range placeholders(v) {
			inCommand = append(inCommand, "{{"+p+"}}")
		}
	}
	if len(inCommand) > 0 {
		// LibreChat never fills in command, so neither does Switchboard:
		// a user's value must not choose the program that runs.
		out = append(out, fmt.Sprintf("placeholders in command or cwd (%s) are not filled in; move them to args or env", strings.Join(uniqueSorted(inCommand), ", ")))
	}
	if k := s.APIKey; k != nil && k.Source == "admin" && k.Key == "" {
		// LibreChat lets an admin type the key into its UI;
		// Switchboard has no such UI, so it must be in the file.
		out = append(out, "apiKey source admin has no key; set apiKey.key (e.g. key: ${MY_API_KEY})")
	}
	if s.OBO != nil {
		out = append(out, "obo (On-Behalf-Of token exchange) is not implemented yet")
	}
	return out
}

var serverKeys = []string{
	"type", "command", "args", "env", "stderr", "cwd", "url", "headers",
	"timeout", "initTimeout", "sseReadTimeout", "serverInstructions",
	"chatMenu", "startup", "title", "description", "iconPath",
	"requiresOAuth", "oauth", "oauth_headers", "apiKey", "obo",
	"customUserVars", "proxy",
}

// Keys that belong to one kind of transport only.
var (
	stdioOnlyKeys  = []string{"command", "args", "env", "stderr", "cwd"}
	remoteOnlyKeys = []string{"url", "headers"}
)

func (d *decoder) servers(n ast.Node) []*Server {
	fields, _ := d.mapping(n, "mcpServers")
	var out []*Server
	for _, f := range fields {
		if msg := checkServerName(f.key); msg != "" {
			d.errorf(f.keyN, "%s", msg)
			continue
		}
		if s := d.server(f); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// checkServerName returns why name cannot be used, or "". Names are used in
// URLs (/mcp/{name}) and tool names, but LibreChat allows most names, so
// only what would break a URL path segment is refused.
func checkServerName(name string) string {
	switch {
	case name == "":
		return "server name must not be empty"
	case strings.EqualFold(name, BuiltinServer):
		return fmt.Sprintf("server name %q is reserved for Switchboard's built-in server", name)
	case name == "." || name == "..":
		return fmt.Sprintf("server name %q cannot be used in a URL path", name)
	}
	for _, r := range name {
		switch {
		case strings.ContainsRune("/?#%\\", r):
			return fmt.Sprintf("server name %q must not contain %q: names are used in URLs (/mcp/{name})", name, r)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return fmt.Sprintf("server name %q must not contain spaces or control characters: names are used in URLs (/mcp/{name})", name)
		}
	}
	return ""
}

func (d *decoder) server(sf field) *Server {
	s := &Server{Name: sf.key, Pos: d.pos(sf.keyN), ChatMenu: true, Startup: true}
	where := fmt.Sprintf("server %q", s.Name)
	fields, ok := d.mapping(sf.value, where)
	if !ok {
		return nil
	}
	var (
		rawType string
		keys    = map[string]ast.Node{} // key name -> key node, for positions
		bad     = map[string]bool{}     // keys whose value had an error
		errsAt  = len(d.errs)
	)
	for _, f := range fields {
		keys[f.key] = f.keyN
		before := len(d.errs)
		d.serverField(s, f, where, &rawType)
		bad[f.key] = len(d.errs) > before
	}

	d.transport(s, rawType, keys, bad, fields)
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.InitTimeout == 0 {
		s.InitTimeout = DefaultInitTimeout
	}
	if len(d.errs) > errsAt {
		return nil
	}
	return s
}

// serverField reads one key of a server entry into s; type is kept raw in
// *rawType until all keys are known.
func (d *decoder) serverField(s *Server, f field, where string, rawType *string) {
	v := f.value
	switch f.key {
	case "type":
		*rawType, _ = d.str(v, "type")
	case "command":
		s.Command, _ = d.str(v, "command")
	case "args":
		s.Args, _ = d.strList(v, "args", true)
	case "env":
		s.Env, _ = d.strMap(v, "env")
		for k := range s.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				d.errorf(f.keyN, "env name %q is not a valid environment variable name", k)
			}
		}
	case "stderr":
		s.Stderr = d.stderr(v)
	case "cwd":
		s.Cwd, _ = d.str(v, "cwd")
	case "url":
		s.URL, _ = d.str(v, "url")
	case "headers":
		s.Headers, _ = d.strMap(v, "headers")
		d.checkHeaders(f.keyN, "headers", s.Headers)
	case "timeout":
		s.Timeout = d.millis(v, "timeout")
	case "initTimeout":
		s.InitTimeout = d.millis(v, "initTimeout")
	case "sseReadTimeout":
		s.SSEReadTimeout = d.millis(v, "sseReadTimeout")
	case "serverInstructions":
		s.ServerInstructions = d.instructions(v)
	case "chatMenu":
		if b, present, _ := d.boolean(v, "chatMenu"); present {
			s.ChatMenu = b
		}
	case "startup":
		if b, present, _ := d.boolean(v, "startup"); present {
			s.Startup = b
		}
	case "title":
		s.Title, _ = d.str(v, "title")
	case "description":
		s.Description, _ = d.str(v, "description")
	case "iconPath":
		s.IconPath, _ = d.str(v, "iconPath")
	case "requiresOAuth":
		if b, present, _ := d.boolean(v, "requiresOAuth"); present {
			s.RequiresOAuth = &b
		}
	case "oauth":
		s.OAuth = d.oauth(v)
	case "oauth_headers":
		s.OAuthHeaders, _ = d.strMap(v, "oauth_headers")
		d.checkHeaders(f.keyN, "oauth_headers", s.OAuthHeaders)
	case "apiKey":
		s.APIKey = d.apiKey(f)
	case "obo":
		s.OBO = d.obo(f)
	case "customUserVars":
		s.CustomUserVars = d.customUserVars(v)
	case "proxy":
		s.Proxy, _ = d.str(v, "proxy")
		if s.Proxy != "" {
			if msg := checkURL(s.Proxy); msg != "" {
				d.errorf(d.resolve(v), "proxy: %s", msg)
			}
		}
	default:
		d.unknownKey(f, where, serverKeys)
	}
}

// transport sets s.Type from type, command and url, and checks that the keys
// set fit it.
func (d *decoder) transport(s *Server, rawType string, keys map[string]ast.Node, bad map[string]bool, fields []field) {
	if bad["type"] {
		return
	}
	valueOf := func(key string) ast.Node {
		for _, f := range fields {
			if f.key == key {
				return d.resolve(f.value)
			}
		}
		return nil
	}
	_, hasCommand := keys["command"]
	_, hasURL := keys["url"]
	if hasCommand && hasURL {
		d.errorf(keys["url"], "server %q sets both command and url; use command for a stdio server or url for sse and streamable-http", s.Name)
		return
	}
	scheme := ""
	if u, err := url.Parse(s.URL); err == nil {
		scheme = strings.ToLower(u.Scheme)
	}
	const wsMsg = "websocket transport is not supported; use streamable-http or sse"
	switch {
	case rawType != "":
		switch rawType {
		case "stdio":
			s.Type = Stdio
		case "sse":
			s.Type = SSE
		case "streamable-http", "http":
			s.Type = StreamableHTTP
		case "websocket":
			d.errorf(valueOf("type"), wsMsg)
			return
		default:
			msg := fmt.Sprintf("unknown type %q; want stdio, sse, streamable-http or http", rawType)
			if h := suggest(rawType, []string{"stdio", "sse", "streamable-http", "http", "websocket"}); h != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", h)
			}
			d.errorf(valueOf("type"), "%s", msg)
			return
		}
	case hasCommand:
		s.Type = Stdio
	case hasURL:
		// LibreChat's schema union picks websocket for ws:// and
		// wss:// URLs, sse for any other.
		if scheme == "ws" || scheme == "wss" {
			d.errorf(valueOf("url"), wsMsg)
			return
		}
		s.Type = SSE
	default:
		d.errorAt(s.Pos, "server %q needs command (for a stdio server) or url (for sse or streamable-http)", s.Name)
		return
	}

	if s.Type == Stdio {
		if (!hasCommand || s.Command == "") && !bad["command"] {
			d.errorAt(s.Pos, "stdio server %q needs command", s.Name)
		}
		for _, k := range remoteOnlyKeys {
			if n, ok := keys[k]; ok {
				d.errorf(n, "%s is not used by stdio servers", k)
			}
		}
		return
	}
	for _, k := range stdioOnlyKeys {
		if n, ok := keys[k]; ok {
			d.errorf(n, "%s is not used by %s servers", k, s.Type)
		}
	}
	if bad["url"] {
		return
	}
	if !hasURL || s.URL == "" {
		d.errorAt(s.Pos, "%s server %q needs url", s.Type, s.Name)
		return
	}
	if scheme == "ws" || scheme == "wss" {
		d.errorf(valueOf("url"), wsMsg)
		return
	}
	if msg := checkURL(s.URL); msg != "" {
		d.errorf(valueOf("url"), "url: %s", msg)
	}
}

// checkURL returns why raw is not an absolute http(s) URL with a host, or
// "". {{NAME}} placeholders are allowed anywhere; the hub fills them in.
// The URL is not quoted back: after ${VAR} expansion it may hold a secret.
func checkURL(raw string) string {
	u, err := url.Parse(replacePlaceholders(raw, "x"))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("invalid URL: %v", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return "URL must be absolute (start with http:// or https://)"
	default:
		return fmt.Sprintf("URL scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return "URL has no host"
	}
	return ""
}

// checkHeaders reports header names that are not RFC 9110 tokens and values
// holding line breaks.
func (d *decoder) checkHeaders(at ast.Node, what string, h map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if !isToken(name) {
			d.errorf(at, "%s: %q is not a valid header name", what, name)
		}
		if strings.ContainsAny(h[name], "\r\n\x00") {
			d.errorf(at, "%s: value of %s must not contain line breaks", what, name)
		}
	}
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// millis reads a LibreChat timeout: a whole number of milliseconds.
func (d *decoder) millis(n ast.Node, what string) time.Duration {
	ms, present, ok := d.integer(n, what)
	if !present || !ok {
		return 0
	}
	if ms < 0 {
		d.errorf(d.resolve(n), "%s must be a positive number of milliseconds, got %d", what, ms)
		return 0
	}
	if ms > math.MaxInt64/int64(time.Millisecond) {
		d.errorf(d.resolve(n), "%s is too large", what)
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

func (d *decoder) stderr(n ast.Node) string {
	r := d.resolve(n)
	if i, ok := r.(*ast.IntegerNode); ok {
		switch fd := i.Value.(type) {
		case uint64:
			return fmt.Sprint(fd)
		case int64:
			if fd >= 0 {
				return fmt.Sprint(fd)
			}
		}
		d.errorf(r, "stderr file descriptor must be a non-negative number")
		return ""
	}
	s, ok := d.str(n, "stderr")
	if !ok {
		return ""
	}
	switch s {
	case "", "pipe", "ignore", "inherit":
		return s
	}
	d.errorf(r, "stderr must be pipe, ignore, inherit or a file descriptor number, got %q", s)
	return ""
}

func (d *decoder) instructions(n ast.Node) Instructions {
	r := d.resolve(n)
	switch v := r.(type) {
	case nil, *ast.NullNode:
		return Instructions{}
	case *ast.BoolNode:
		return Instructions{Enabled: v.Value}
	case *ast.StringNode, *ast.LiteralNode:
		text, _ := d.str(n, "serverInstructions")
		// An empty string is falsy in LibreChat.
		return Instructions{Enabled: text != "", Text: text}
	}
	d.errorf(r, "serverInstructions must be true, false or a string, got %s", kind(r))
	return Instructions{}
}

var oauthKeys = []string{
	"authorization_url", "token_url", "client_id", "client_secret", "scope",
	"redirect_uri", "token_exchange_method", "grant_types_supported",
	"token_endpoint_auth_methods_supported", "response_types_supported",
	"code_challenge_methods_supported", "skip_code_challenge_check",
	"revocation_endpoint", "revocation_endpoint_auth_methods_supported",
	"audience",
}

func (d *decoder) oauth(n ast.Node) *OAuth {
	fields, ok := d.mapping(n, "oauth")
	if !ok {
		return nil
	}
	o := &OAuth{}
	urlField := func(v ast.Node, what string) string {
		s, ok := d.str(v, what)
		if ok && s != "" {
			if msg := checkURL(s); msg != "" {
				d.errorf(d.resolve(v), "%s: %s", what, msg)
			}
		}
		return s
	}
	for _, f := range fields {
		v := f.value
		what := "oauth." + f.key
		switch f.key {
		case "authorization_url":
			o.AuthorizationURL = urlField(v, what)
		case "token_url":
			o.TokenURL = urlField(v, what)
		case "redirect_uri":
			o.RedirectURI = urlField(v, what)
		case "revocation_endpoint":
			o.RevocationEndpoint = urlField(v, what)
		case "client_id":
			o.ClientID, _ = d.str(v, what)
		case "client_secret":
			o.ClientSecret, _ = d.str(v, what)
		case "scope":
			o.Scope, _ = d.str(v, what)
		case "audience":
			o.Audience, _ = d.str(v, what)
		case "token_exchange_method":
			o.TokenExchangeMethod, _ = d.str(v, what)
			switch o.TokenExchangeMethod {
			case "", "default_post", "basic_auth_header":
			default:
				d.errorf(d.resolve(v), "%s must be default_post or basic_auth_header, got %q", what, o.TokenExchangeMethod)
			}
		case "grant_types_supported":
			o.GrantTypesSupported, _ = d.strList(v, what, false)
		case "token_endpoint_auth_methods_supported":
			o.TokenEndpointAuthMethodsSupported, _ = d.strList(v, what, false)
		case "response_types_supported":
			o.ResponseTypesSupported, _ = d.strList(v, what, false)
		case "code_challenge_methods_supported":
			o.CodeChallengeMethodsSupported, _ = d.strList(v, what, false)
		case "revocation_endpoint_auth_methods_supported":
			o.RevocationEndpointAuthMethodsSupported, _ = d.strList(v, what, false)
		case "skip_code_challenge_check":
			o.SkipCodeChallengeCheck, _, _ = d.boolean(v, what)
		default:
			d.unknownKey(f, "oauth", oauthKeys)
		}
	}
	return o
}

var apiKeyKeys = []string{"source", "authorization_type", "custom_header", "key"}

func (d *decoder) apiKey(af field) *APIKey {
	fields, ok := d.mapping(af.value, "apiKey")
	if !ok {
		return nil
	}
	k := &APIKey{}
	var typeNode ast.Node
	for _, f := range fields {
		v := f.value
		what := "apiKey." + f.key
		switch f.key {
		case "source":
			k.Source, _ = d.str(v, what)
			if k.Source != "admin" && k.Source != "user" {
				d.errorf(d.resolve(v), "%s must be admin or user, got %q", what, k.Source)
			}
		case "authorization_type":
			typeNode = d.resolve(v)
			k.AuthorizationType, _ = d.str(v, what)
			switch k.AuthorizationType {
			case "bearer", "basic", "custom":
			default:
				d.errorf(typeNode, "%s must be bearer, basic or custom, got %q", what, k.AuthorizationType)
			}
		case "custom_header":
			k.CustomHeader, _ = d.str(v, what)
			if k.CustomHeader != "" && !isToken(k.CustomHeader) {
				d.errorf(d.resolve(v), "%s: %q is not a valid header name", what, k.CustomHeader)
			}
		case "key":
			k.Key, _ = d.str(v, what)
		default:
			d.unknownKey(f, "apiKey", apiKeyKeys)
		}
	}
	if k.Source == "" {
		d.errorf(af.keyN, "apiKey needs source (admin or user)")
	}
	if typeNode == nil {
		d.errorf(af.keyN, "apiKey needs authorization_type (bearer, basic or custom)")
	}
	if k.AuthorizationType == "custom" && k.CustomHeader == "" {
		d.errorf(typeNode, "apiKey.authorization_type custom needs custom_header")
	}
	return k
}

func (d *decoder) obo(of field) *OBO {
	fields, ok := d.mapping(of.value, "obo")
	if !ok {
		return nil
	}
	o := &OBO{}
	for _, f := range fields {
		switch f.key {
		case "scopes":
			o.Scopes, _ = d.str(f.value, "obo.scopes")
		default:
			d.unknownKey(f, "obo", []string{"scopes"})
		}
	}
	if o.Scopes == "" {
		d.errorf(of.keyN, "obo needs scopes")
	}
	return o
}

var customUserVarKeys = []string{"title", "description", "sensitive"}

func (d *decoder) customUserVars(n ast.Node) map[string]CustomUserVar {
	fields, ok := d.mapping(n, "customUserVars")
	if !ok || len(fields) == 0 {
		return nil
	}
	out := make(map[string]CustomUserVar, len(fields))
	for _, vf := range fields {
		if !isPlaceholderName(vf.key) {
			d.errorf(vf.keyN, "customUserVars name %q must be letters, digits and _ so it can be used as {{%s}}", vf.key, vf.key)
			continue
		}
		where := fmt.Sprintf("customUserVars.%s", vf.key)
		entries, ok := d.mapping(vf.value, where)
		if !ok {
			continue
		}
		cv := CustomUserVar{Sensitive: true}
		for _, f := range entries {
			switch f.key {
			case "title":
				cv.Title, _ = d.str(f.value, where+".title")
			case "description":
				cv.Description, _ = d.str(f.value, where+".description")
			case "sensitive":
				if b, present, _ := d.boolean(f.value, where+".sensitive"); present {
					cv.Sensitive = b
				}
			default:
				d.unknownKey(f, where, customUserVarKeys)
			}
		}
		out[vf.key] = cv
	}
	return out
}
