package config

import (
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Tools is the tools section: the built-in "switchboard" server's tools.
// The zero value serves get_current_time and web_read with their defaults.
type Tools struct {
	WebSearch WebSearch   // tools.webSearch
	WebRead   WebRead     // tools.webRead
	Calendar  Calendar    // tools.calendar
	HTTPTools []*HTTPTool // tools.httpTools, in file order
}

// Provider names of tools.webSearch and tools.calendar.
const (
	ProviderNaver   = "naver"
	ProviderSearXNG = "searxng"
	ProviderCalDAV  = "caldav"
	// ProviderKakao is Kakao Talk Calendar (tools.calendar only).
	ProviderKakao = "kakao"
	// ProviderNaverWorks is the NAVER WORKS calendar (tools.calendar only).
	ProviderNaverWorks = "naverworks"
)

// WebSearch is tools.webSearch.
type WebSearch struct {
	// Provider is "naver" or "searxng"; "" = web_search is not offered.
	// When left out it is inferred from the one provider block present.
	Provider string
	Naver    NaverAPI // naver: clientId, clientSecret, baseURL
	SearXNG  SearXNG  // searxng: url
}

// NaverAPI holds a NAVER Developers application's credentials and the Open
// API root ("" = https://openapi.naver.com).
type NaverAPI struct {
	ClientID     string // clientId
	ClientSecret string // clientSecret
	BaseURL      string // baseURL
}

// SearXNG is a SearXNG instance with its JSON API enabled.
type SearXNG struct {
	URL string // url
}

// WebRead is tools.webRead. Zero numbers mean the tool's defaults (2 MiB,
// 15s, 5 URLs, 3 at once, 50,000 characters per page).
type WebRead struct {
	Disabled      bool          // enabled: false
	MaxBytes      int64         // maxBytes
	Timeout       time.Duration // timeout, e.g. "15s" (a number is milliseconds)
	MaxURLs       int           // maxURLs, 1..20
	MaxConcurrent int           // maxConcurrent
	MaxChars      int           // maxChars, per page
}

// Calendar is tools.calendar.
type Calendar struct {
	// Provider is "naver", "caldav", "kakao" or "naverworks"; "" = no
	// calendar tools. When left out it is inferred from the one provider
	// block present.
	Provider   string
	Naver      NaverCalendar // naver: baseURL, calendarId
	CalDAV     CalDAV        // caldav: url
	Kakao      APICalendar   // kakao: baseURL, calendarId
	NaverWorks APICalendar   // naverworks: baseURL, calendarId
}

// APICalendar is tools.calendar.kakao or tools.calendar.naverworks.
type APICalendar struct {
	// BaseURL is the API root; "" = https://kapi.kakao.com (kakao) or
	// https://www.worksapis.com/v1.0 (naverworks).
	BaseURL string
	// CalendarID is the calendar events go to and are listed from; "" =
	// each user's default calendar ("primary" at Kakao, the default
	// calendar at NAVER WORKS).
	CalendarID string
}

// NaverCalendar is tools.calendar.naver.
type NaverCalendar struct {
	BaseURL    string // baseURL; "" = https://openapi.naver.com
	CalendarID string // calendarId; "" = defaultCalendarId
}

// CalDAV is tools.calendar.caldav.
type CalDAV struct {
	// URL is the server used for users who did not enter their own
	// CALDAV_URL; "" = every user enters one.
	URL string
}

// HTTPTool is one entry of tools.httpTools: a tool that calls an HTTP API.
type HTTPTool struct {
	Name        string
	Pos         Position
	Title       string
	Description string
	Method      string            // GET (default), POST, PUT, PATCH, DELETE
	URL         string            // {{arg}} placeholders allowed after the host
	Query       map[string]string // values may hold {{arg}}
	Headers     map[string]string // ${VAR} expanded at load
	// Body is the JSON body template: map[string]any, []any, string,
	// int64, float64, bool or nil. Strings may hold {{arg}}.
	Body          any
	InputSchema   map[string]any // JSON Schema of the arguments
	OutputSchema  map[string]any // JSON Schema of the result object; nil = any object
	ResultPointer string         // RFC 6901 pointer narrowing the JSON answer
	Auth          HTTPToolAuth
	Timeout       time.Duration // 0 = 30s
}

// HTTPToolAuth is an HTTP tool's auth block.
type HTTPToolAuth struct {
	// Mode is "none" (default), "env" (bearer token from Env) or "forward"
	// (the caller's own bearer token; Env, when set, is the fallback).
	Mode string
	// Env names the environment variable holding the token.
	Env string
	// Token is Env's value at load time; "" when unset. Never printed.
	Token string
}

// Built-in tool names, which httpTools may not reuse while the built-in
// tool is enabled.
var builtinToolNames = []string{"get_current_time", "web_search", "web_read", "create_calendar_schedule", "list_calendar_schedules"}

var (
	toolsSectionKeys  = []string{"timezone", "webSearch", "webRead", "calendar", "httpTools"}
	webSearchKeys     = []string{"provider", "naver", "searxng"}
	naverSearchKeys   = []string{"clientId", "clientSecret", "baseURL"}
	searxngKeys       = []string{"url"}
	webReadKeys       = []string{"enabled", "maxBytes", "timeout", "maxURLs", "maxConcurrent", "maxChars"}
	calendarKeys      = []string{"provider", "naver", "caldav", "kakao", "naverworks"}
	naverCalendarKeys = []string{"baseURL", "calendarId"}
	apiCalendarKeys   = []string{"baseURL", "calendarId"}
	caldavKeys        = []string{"url"}
	httpToolKeys      = []string{"name", "title", "description", "method", "url", "query", "headers", "body", "inputSchema", "outputSchema", "resultPointer", "auth", "timeout"}
	httpAuthKeys      = []string{"mode", "env"}
	httpMethods       = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}

	toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)
)

func (d *decoder) toolsSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "tools")
	for _, f := range fields {
		switch f.key {
		case "timezone":
			tz, ok := d.str(f.value, "tools.timezone")
			if !ok {
				continue
			}
			// "" and "Local" load, but are not zones: they would
			// make get_current_time depend on the host.
			if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
				d.errorf(d.resolve(f.value), "tools.timezone: %q is not an IANA time zone name (e.g. \"Asia/Seoul\", \"UTC\")", tz)
				continue
			}
			c.Timezone = tz
		case "webSearch":
			c.Tools.WebSearch = d.webSearch(f)
		case "webRead":
			c.Tools.WebRead = d.webRead(f.value)
		case "calendar":
			c.Tools.Calendar = d.calendar(f)
		case "httpTools":
			c.Tools.HTTPTools = d.httpTools(f.value)
		default:
			d.unknownKey(f, "tools", toolsSectionKeys)
		}
	}
	d.checkToolNames(&c.Tools)
}

// provider reads a provider key, which must be one of known.
func (d *decoder) provider(n ast.Node, what string, known []string) string {
	p, ok := d.str(n, what)
	if !ok || p == "" {
		return ""
	}
	if !slices.Contains(known, p) {
		if s := suggest(p, known); s != "" {
			d.errorf(d.resolve(n), "%s: unknown provider %q; did you mean %q?", what, p, s)
		} else {
			d.errorf(d.resolve(n), "%s: unknown provider %q (want %s)", what, p, strings.Join(known, " or "))
		}
		return ""
	}
	return p
}

// urlField reads an optional absolute http(s) URL.
func (d *decoder) urlField(n ast.Node, what string) string {
	s, ok := d.str(n, what)
	if !ok || s == "" {
		return ""
	}
	if msg := checkURL(s); msg != "" {
		d.errorf(d.resolve(n), "%s: %s", what, msg)
		return ""
	}
	return s
}

func (d *decoder) webSearch(sf field) WebSearch {
	var ws WebSearch
	fields, _ := d.mapping(sf.value, "tools.webSearch")
	hadURL := false
	var providerN ast.Node
	present := map[string]bool{}
	for _, f := range fields {
		switch f.key {
		case "provider":
			providerN = f.value
			ws.Provider = d.provider(f.value, "tools.webSearch.provider", []string{ProviderNaver, ProviderSearXNG})
		case "naver":
			present[ProviderNaver] = true
			sub, _ := d.mapping(f.value, "tools.webSearch.naver")
			for _, g := range sub {
				what := "tools.webSearch.naver." + g.key
				switch g.key {
				case "clientId":
					ws.Naver.ClientID, _ = d.str(g.value, what)
				case "clientSecret":
					ws.Naver.ClientSecret, _ = d.str(g.value, what)
				case "baseURL":
					ws.Naver.BaseURL = d.urlField(g.value, what)
				default:
					d.unknownKey(g, "tools.webSearch.naver", naverSearchKeys)
				}
			}
		case "searxng":
			present[ProviderSearXNG] = true
			sub, _ := d.mapping(f.value, "tools.webSearch.searxng")
			for _, g := range sub {
				switch g.key {
				case "url":
					hadURL = true
					ws.SearXNG.URL = d.urlField(g.value, "tools.webSearch.searxng.url")
				default:
					d.unknownKey(g, "tools.webSearch.searxng", searxngKeys)
				}
			}
		default:
			d.unknownKey(f, "tools.webSearch", webSearchKeys)
		}
	}
	if providerN == nil {
		ws.Provider = d.soleProvider(sf.keyN, "tools.webSearch", present, ProviderNaver, ProviderSearXNG)
	}
	switch ws.Provider {
	case ProviderNaver:
		if ws.Naver.ClientID == "" || ws.Naver.ClientSecret == "" {
			d.errorf(sf.keyN, "tools.webSearch: provider naver needs naver.clientId and naver.clientSecret (e.g. clientId: ${NAVER_CLIENT_ID})")
		}
	case ProviderSearXNG:
		if ws.SearXNG.URL == "" && !hadURL {
			d.errorf(sf.keyN, "tools.webSearch: provider searxng needs searxng.url (e.g. url: http://127.0.0.1:8888)")
		}
	}
	return ws
}

func (d *decoder) webRead(n ast.Node) WebRead {
	var w WebRead
	fields, _ := d.mapping(n, "tools.webRead")
	for _, f := range fields {
		what := "tools.webRead." + f.key
		switch f.key {
		case "enabled":
			if v, present, ok := d.boolean(f.value, what); present && ok {
				w.Disabled = !v
			}
		case "maxBytes":
			w.MaxBytes = d.positive(f.value, what, math.MaxInt64)
		case "timeout":
			w.Timeout = d.duration(f.value, what)
		case "maxURLs":
			w.MaxURLs = int(d.positive(f.value, what, 20))
		case "maxConcurrent":
			w.MaxConcurrent = int(d.positive(f.value, what, 20))
		case "maxChars":
			w.MaxChars = int(d.positive(f.value, what, math.MaxInt32))
		default:
			d.unknownKey(f, "tools.webRead", webReadKeys)
		}
	}
	return w
}

// positive reads a whole number from 1 to limit.
func (d *decoder) positive(n ast.Node, what string, limit int64) int64 {
	v, present, ok := d.integer(n, what)
	if !present || !ok {
		return 0
	}
	if v < 1 || v > limit {
		if limit == math.MaxInt64 {
			d.errorf(d.resolve(n), "%s must be a positive number, got %d", what, v)
		} else {
			d.errorf(d.resolve(n), "%s must be from 1 to %d, got %d", what, limit, v)
		}
		return 0
	}
	return v
}

// duration reads a duration: a Go duration string ("15s", "1m30s") or a
// whole number of milliseconds, as LibreChat's timeouts.
func (d *decoder) duration(n ast.Node, what string) time.Duration {
	r := d.resolve(n)
	if s, ok := r.(*ast.StringNode); ok && !isDigits(strings.TrimSpace(s.Value)) && !strings.Contains(s.Value, "${") {
		v, err := time.ParseDuration(strings.TrimSpace(s.Value))
		if err != nil || v <= 0 {
			d.errorf(r, "%s must be a positive duration such as \"15s\" or a number of milliseconds, got %q", what, s.Value)
			return 0
		}
		return v
	}
	if s, ok := r.(*ast.StringNode); ok && strings.Contains(s.Value, "${") {
		if out, err := expandEnv(s.Value, d.lookupEnv); err == nil && !isDigits(strings.TrimSpace(out)) {
			v, err := time.ParseDuration(strings.TrimSpace(out))
			if err != nil || v <= 0 {
				d.errorf(r, "%s must be a positive duration such as \"15s\" or a number of milliseconds, got %q", what, out)
				return 0
			}
			return v
		}
	}
	v := d.millis(n, what)
	if v == 0 && !isNull(r) {
		if ms, _, ok := d.integer(n, what); ok && ms == 0 {
			d.errorf(r, "%s must be positive", what)
		}
	}
	return v
}

func (d *decoder) calendar(sf field) Calendar {
	var c Calendar
	fields, _ := d.mapping(sf.value, "tools.calendar")
	var providerN ast.Node
	present := map[string]bool{}
	for _, f := range fields {
		switch f.key {
		case "provider":
			providerN = f.value
			c.Provider = d.provider(f.value, "tools.calendar.provider", []string{ProviderNaver, ProviderCalDAV, ProviderKakao, ProviderNaverWorks})
		case "naver":
			present[ProviderNaver] = true
			sub, _ := d.mapping(f.value, "tools.calendar.naver")
			for _, g := range sub {
				what := "tools.calendar.naver." + g.key
				switch g.key {
				case "baseURL":
					c.Naver.BaseURL = d.urlField(g.value, what)
				case "calendarId":
					c.Naver.CalendarID, _ = d.str(g.value, what)
				default:
					d.unknownKey(g, "tools.calendar.naver", naverCalendarKeys)
				}
			}
		case "caldav":
			present[ProviderCalDAV] = true
			sub, _ := d.mapping(f.value, "tools.calendar.caldav")
			for _, g := range sub {
				switch g.key {
				case "url":
					c.CalDAV.URL = d.urlField(g.value, "tools.calendar.caldav.url")
				default:
					d.unknownKey(g, "tools.calendar.caldav", caldavKeys)
				}
			}
		case ProviderKakao:
			present[ProviderKakao] = true
			c.Kakao = d.apiCalendar(f.value, "tools.calendar.kakao")
		case ProviderNaverWorks:
			present[ProviderNaverWorks] = true
			c.NaverWorks = d.apiCalendar(f.value, "tools.calendar.naverworks")
		default:
			d.unknownKey(f, "tools.calendar", calendarKeys)
		}
	}
	if providerN == nil {
		c.Provider = d.soleProvider(sf.keyN, "tools.calendar", present, ProviderNaver, ProviderCalDAV, ProviderKakao, ProviderNaverWorks)
	}
	return c
}

func (d *decoder) apiCalendar(n ast.Node, what string) APICalendar {
	var c APICalendar
	sub, _ := d.mapping(n, what)
	for _, g := range sub {
		switch g.key {
		case "baseURL":
			c.BaseURL = d.urlField(g.value, what+".baseURL")
		case "calendarId":
			c.CalendarID, _ = d.str(g.value, what+".calendarId")
		default:
			d.unknownKey(g, what, apiCalendarKeys)
		}
	}
	return c
}

func (d *decoder) httpTools(n ast.Node) []*HTTPTool {
	r := d.resolve(n)
	if isNull(r) {
		return nil
	}
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		d.errorf(r, "tools.httpTools must be a list of tools (- name: ...), got %s", kind(r))
		return nil
	}
	var out []*HTTPTool
	seen := map[string]Position{}
	for i, v := range seq.Values {
		t := d.httpTool(v, fmt.Sprintf("tools.httpTools[%d]", i))
		if t == nil {
			continue
		}
		if first, dup := seen[t.Name]; dup {
			d.errorAt(t.Pos, "tools.httpTools: duplicate tool name %q (first defined at %d:%d)", t.Name, first.Line, first.Col)
			continue
		}
		seen[t.Name] = t.Pos
		out = append(out, t)
	}
	return out
}

func (d *decoder) httpTool(n ast.Node, where string) *HTTPTool {
	fields, ok := d.mapping(n, where)
	if !ok {
		return nil
	}
	// Errors about the whole entry point at its first key.
	at := d.resolve(n)
	if len(fields) > 0 {
		at = fields[0].keyN
	}
	t := &HTTPTool{Pos: d.pos(at)}
	keys := map[string]ast.Node{}
	for _, f := range fields {
		keys[f.key] = f.value
		what := where + "." + f.key
		switch f.key {
		case "name":
			t.Name, _ = d.str(f.value, what)
			if t.Name != "" && !toolNameRE.MatchString(t.Name) {
				d.errorf(d.resolve(f.value), "%s: %q is not a valid tool name (letters, digits, _ . -, at most 128)", what, t.Name)
			}
			t.Pos = d.pos(d.resolve(f.value))
		case "title":
			t.Title, _ = d.str(f.value, what)
		case "description":
			t.Description, _ = d.str(f.value, what)
		case "method":
			m, ok := d.str(f.value, what)
			if ok && m != "" {
				t.Method = strings.ToUpper(m)
				if !slices.Contains(httpMethods, t.Method) {
					d.errorf(d.resolve(f.value), "%s: %q is not one of %s", what, m, strings.Join(httpMethods, ", "))
				}
			}
		case "url":
			t.URL, _ = d.str(f.value, what)
		case "query":
			t.Query, _ = d.strMap(f.value, what)
		case "headers":
			t.Headers, _ = d.strMap(f.value, what)
			d.checkHeaders(d.resolve(f.value), what, t.Headers)
		case "body":
			t.Body, _ = d.anyValue(f.value, what, true)
		case "inputSchema", "outputSchema":
			v, ok := d.anyValue(f.value, what, false)
			m, isMap := v.(map[string]any)
			if !ok || v == nil {
				continue
			}
			if !isMap {
				d.errorf(d.resolve(f.value), "%s must be a JSON Schema object (a mapping)", what)
				continue
			}
			if typ, has := m["type"]; has && typ != "object" {
				d.errorf(d.resolve(f.value), "%s must have type: object, got %v", what, typ)
				continue
			}
			if f.key == "inputSchema" {
				if _, has := m["type"]; !has {
					m["type"] = "object"
				}
				t.InputSchema = m
			} else {
				t.OutputSchema = m
			}
		case "resultPointer":
			p, ok := d.str(f.value, what)
			if ok && p != "" && !strings.HasPrefix(p, "/") {
				d.errorf(d.resolve(f.value), "%s: a JSON pointer (RFC 6901) starts with /, e.g. /items", what)
				continue
			}
			t.ResultPointer = p
		case "auth":
			t.Auth = d.httpAuth(f.value, what)
		case "timeout":
			t.Timeout = d.duration(f.value, what)
		default:
			d.unknownKey(f, where, httpToolKeys)
		}
	}
	for _, req := range []string{"name", "description", "url"} {
		if _, ok := keys[req]; !ok {
			d.errorf(at, "%s: %s is required", where, req)
		}
	}
	if t.Name == "" {
		return nil
	}
	if t.URL != "" {
		d.checkToolURL(keys["url"], where+".url", t.URL)
	}
	d.checkArgs(t, keys, where)
	return t
}

func (d *decoder) httpAuth(n ast.Node, what string) HTTPToolAuth {
	var a HTTPToolAuth
	fields, _ := d.mapping(n, what)
	var envN ast.Node
	for _, f := range fields {
		switch f.key {
		case "mode":
			m, ok := d.str(f.value, what+".mode")
			if !ok {
				continue
			}
			if !slices.Contains([]string{"none", "env", "forward"}, m) {
				d.errorf(d.resolve(f.value), "%s.mode: %q is not none, env or forward", what, m)
				continue
			}
			a.Mode = m
		case "env":
			envN = f.value
			a.Env, _ = d.str(f.value, what+".env")
			if a.Env != "" && !isVarName(a.Env) {
				d.errorf(d.resolve(f.value), "%s.env: %q is not an environment variable name", what, a.Env)
				a.Env = ""
			}
		default:
			d.unknownKey(f, what, httpAuthKeys)
		}
	}
	if a.Mode == "" && a.Env != "" {
		a.Mode = "env"
	}
	if a.Env != "" {
		a.Token, _ = d.lookupEnv(a.Env)
	}
	switch {
	case a.Mode == "env" && a.Env == "":
		d.errorf(d.resolve(n), "%s: mode env needs env: the variable holding the token (e.g. env: APERAG_API_KEY)", what)
	case a.Mode == "env" && a.Token == "":
		d.errorf(d.resolve(envN), "%s.env: environment variable %s is not set", what, a.Env)
	}
	return a
}

// checkToolURL reports a URL that is not absolute http(s), or that has
// argument placeholders before its path, where an argument could change
// which host is called.
func (d *decoder) checkToolURL(n ast.Node, what, raw string) {
	if msg := checkURL(raw); msg != "" {
		d.errorf(d.resolve(n), "%s: %s", what, msg)
		return
	}
	rest := raw[strings.Index(raw, "://")+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if strings.Contains(rest[:end], "{{") {
		d.errorf(d.resolve(n), "%s: {{argument}} placeholders may appear only in the path and query, not in the host", what)
	}
	if _, err := url.Parse(replacePlaceholders(raw, "x")); err != nil {
		d.errorf(d.resolve(n), "%s: %v", what, err)
	}
}

// checkArgs reports {{name}} placeholders that are not inputSchema
// properties.
func (d *decoder) checkArgs(t *HTTPTool, keys map[string]ast.Node, where string) {
	var props []string
	if p, ok := t.InputSchema["properties"].(map[string]any); ok {
		for k := range p {
			props = append(props, k)
		}
	}
	slices.Sort(props)
	check := func(key string, texts ...string) {
		for _, s := range texts {
			for _, name := range placeholders(s) {
				if slices.Contains(props, name) {
					continue
				}
				if s := suggest(name, props); s != "" {
					d.errorf(d.resolve(keys[key]), "%s.%s: {{%s}} is not a property of inputSchema; did you mean {{%s}}?", where, key, name, s)
				} else {
					d.errorf(d.resolve(keys[key]), "%s.%s: {{%s}} is not a property of inputSchema", where, key, name)
				}
			}
		}
	}
	check("url", t.URL)
	for _, k := range slices.Sorted(maps.Keys(t.Query)) {
		check("query", t.Query[k])
	}
	check("body", templateStrings(t.Body)...)
}

func templateStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, templateStrings(x[k])...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, templateStrings(e)...)
		}
		return out
	}
	return nil
}

// checkToolNames reports HTTP tools named like an enabled built-in tool.
func (d *decoder) checkToolNames(t *Tools) {
	enabled := map[string]string{"get_current_time": "it is always on"}
	if !t.WebRead.Disabled {
		enabled["web_read"] = "disable it with tools.webRead.enabled: false"
	}
	if t.WebSearch.Provider != "" {
		enabled["web_search"] = "remove tools.webSearch"
	}
	if t.Calendar.Provider != "" {
		enabled["create_calendar_schedule"] = "remove tools.calendar"
		enabled["list_calendar_schedules"] = "remove tools.calendar"
	}
	for _, h := range t.HTTPTools {
		if how, ok := enabled[h.Name]; ok {
			d.errorAt(h.Pos, "tools.httpTools: %q is the name of a built-in tool (%s, or choose another name)", h.Name, how)
		}
	}
}

// anyValue converts a YAML value to JSON-like Go values. Strings are
// ${VAR}-expanded when expand is set.
func (d *decoder) anyValue(n ast.Node, what string, expand bool) (any, bool) {
	r := d.resolve(n)
	switch v := r.(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		fields, ok := d.mapping(r, what)
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			e, good := d.anyValue(f.value, what+"."+f.key, expand)
			ok = ok && good
			out[f.key] = e
		}
		return out, ok
	case *ast.SequenceNode:
		out := make([]any, 0, len(v.Values))
		ok := true
		for i, e := range v.Values {
			x, good := d.anyValue(e, fmt.Sprintf("%s[%d]", what, i), expand)
			ok = ok && good
			out = append(out, x)
		}
		return out, ok
	case *ast.BoolNode:
		return v.Value, true
	case *ast.IntegerNode:
		i, _, ok := d.integer(r, what)
		return i, ok
	case *ast.FloatNode:
		return v.Value, true
	case *ast.StringNode, *ast.LiteralNode:
		if expand {
			return d.str(r, what)
		}
		s, _, ok := d.rawString(r, what, false)
		return s, ok
	}
	d.errorf(r, "%s: unsupported value %s", what, kind(r))
	return nil, false
}

// soleProvider infers the provider of a section without a provider key
// from the one provider block present in it (a, b); both present is an
// error at at.
func (d *decoder) soleProvider(at ast.Node, where string, present map[string]bool, names ...string) string {
	var set []string
	for _, n := range names {
		if present[n] {
			set = append(set, n)
		}
	}
	switch len(set) {
	case 0:
		return ""
	case 1:
		return set[0]
	}
	choices := make([]string, len(set))
	for i, n := range set {
		choices[i] = "provider: " + n
	}
	d.errorf(at, "%s: both %s and %s are set; choose one with %s or %s", where,
		strings.Join(set[:len(set)-1], ", "), set[len(set)-1],
		strings.Join(choices[:len(choices)-1], ", "), choices[len(choices)-1])
	return ""
}
