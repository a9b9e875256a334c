// Package tools holds Switchboard's built-in tools, served by the in-process
// MCP server named "switchboard": get_current_time, web_search, web_read,
// create_calendar_schedule / list_calendar_schedules and the HTTP-API tools
// declared in config. cmd/switchboard wires it into the hub (or serves it on
// its own with ServeStdio / NewHandler); it imports the MCP SDK, the JSON
// Schema package the SDK uses, and internal/ssrf for fetching URLs that
// callers name.
//
// The server is reached through in-memory transports, so the caller's
// context does not cross into the handlers: who is calling arrives in the
// request's _meta under UserMetaKey, and per-user secrets are fetched through
// the function hooks in Options.
package tools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// UserMetaKey is the _meta key of a tools/call request that holds the
// signed-in user's id. The hub sets it on calls to the built-in server; the
// gateway strips it from requests it forwards downstream, so a client cannot
// speak for another user.
const UserMetaKey = "io.switchboard/user"

// ErrNotAuthorized is wrapped by Options.ProviderToken and
// Options.UserCredential errors meaning that the user has not signed in with
// the provider, not granted it, or not entered the credential.
var ErrNotAuthorized = errors.New("not authorized")

// Provider names passed to Options.ProviderToken.
const (
	ProviderNaver      = "naver"
	ProviderKakao      = "kakao"
	ProviderNaverWorks = "naverworks"
)

// Names of the per-user credentials the CalDAV provider asks
// Options.UserCredential for.
const (
	CredCalDAVURL      = "CALDAV_URL"
	CredCalDAVUsername = "CALDAV_USERNAME"
	CredCalDAVPassword = "CALDAV_PASSWORD"
)

// Built-in tool names.
const (
	ToolCurrentTime    = "get_current_time"
	ToolWebSearch      = "web_search"
	ToolWebRead        = "web_read"
	ToolCreateSchedule = "create_calendar_schedule"
	ToolListSchedules  = "list_calendar_schedules"
)

// Options configure the built-in server. The zero value is valid: it serves
// get_current_time and web_read.
type Options struct {
	// Timezone is the default IANA zone of get_current_time and of calendar
	// times written without an offset. Empty: Asia/Seoul.
	Timezone string
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Version is the server's reported version. Empty: "dev".
	Version string
	// Logger receives causes of tool failures (never secrets). Nil: discarded.
	Logger *slog.Logger

	// AllowedDomains and AllowedAddresses are mcpSettings.allowedDomains and
	// mcpSettings.allowedAddresses: hosts ("example.com", "*.corp.example")
	// and addresses (IP, CIDR, ip:port) that web_read and CalDAV may reach
	// although they are private, loopback or link-local. Nil: none.
	AllowedDomains   []string
	AllowedAddresses []string

	// HTTPClient reaches the endpoints the administrator configured: NAVER's
	// APIs, SearXNG and HTTP-API tools. URLs that callers choose (web_read,
	// per-user CalDAV) always go through the SSRF-safe client instead. Nil:
	// a client with 30s timeout.
	HTTPClient *http.Client

	// ProviderToken returns the user's current access token for provider
	// (ProviderNaver), refreshed as needed. An error wrapping
	// ErrNotAuthorized means the user has not signed in with the provider or
	// not granted it. Nil: the NAVER calendar is not listed.
	ProviderToken func(ctx context.Context, userID, provider string) (string, error)
	// UserCredential returns a value the user entered (CredCalDAVURL, ...).
	// An error wrapping ErrNotAuthorized means it is not set. Nil: the
	// CalDAV calendar is not listed.
	UserCredential func(ctx context.Context, userID, name string) (string, error)
	// CallerToken returns the bearer token the user called Switchboard
	// with, for HTTP-API tools with auth mode "forward". When the call came
	// over HTTP (NewHandler), the request's own Authorization header is used
	// first. Nil: only that header.
	CallerToken func(ctx context.Context, userID string) (string, error)

	// WebSearch configures web_search. Zero: not listed.
	WebSearch WebSearchOptions
	// WebRead configures web_read. Zero: listed, with the default limits.
	WebRead WebReadOptions
	// Calendar configures the calendar tools. Zero: not listed.
	Calendar CalendarOptions
	// HTTPTools are tools declared in config that call an HTTP API.
	HTTPTools []HTTPTool
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Timezone == "" {
		c.Timezone = "Asia/Seoul"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	c.WebRead = c.WebRead.withDefaults()
	return c
}

// NewServer returns the built-in MCP server with every enabled tool. Tools
// whose provider or dependency is missing are left out; Unavailable says
// why.
func NewServer(opts *Options) *mcp.Server {
	o := opts.withDefaults()
	s := mcp.NewServer(&mcp.Implementation{Name: "switchboard", Title: "Switchboard built-in tools", Version: o.Version}, &mcp.ServerOptions{
		Instructions: "Built-in tools of Switchboard. Use get_current_time whenever an answer depends on today's date or the current time (e.g. 'in 3 days', 'tomorrow at 3pm').",
		Logger:       hub.SDKLogger(o.Logger),
	})
	b := build(o)
	for _, add := range b.add {
		add(s)
	}
	return s
}

// Unavailable returns, for each tool that opts configure or that is on by
// default but that NewServer leaves out, the reason why.
func Unavailable(opts *Options) map[string]string {
	return build(opts.withDefaults()).unavailable
}

// builder collects the tools to add and the reasons for those left out.
type builder struct {
	add         []func(*mcp.Server)
	unavailable map[string]string
}

func (b *builder) skip(name, reason string) {
	b.unavailable[name] = reason
}

func build(o Options) *builder {
	b := &builder{unavailable: map[string]string{}}
	b.add = append(b.add, func(s *mcp.Server) { addClock(s, o) })
	addSearch(b, o)
	addRead(b, o)
	addCalendar(b, o)
	addHTTPTools(b, o)
	return b
}

// userID returns the signed-in user the hub named in the request, or "".
func userID(req *mcp.CallToolRequest) string {
	if req == nil || req.Params == nil {
		return ""
	}
	id, _ := req.Params.GetMeta()[UserMetaKey].(string)
	return id
}

// toolError is a tool-level failure: msg is shown to the caller (and the
// model), err is the cause, which is logged.
type toolError struct {
	msg string
	err error
}

func (e *toolError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *toolError) Unwrap() error { return e.err }

// fail returns a tool-level failure shown as msg.
func fail(cause error, format string, args ...any) error {
	return &toolError{msg: fmt.Sprintf(format, args...), err: cause}
}

// errorResult turns a handler error into an isError result.
func errorResult(logger *slog.Logger, tool string, err error) *mcp.CallToolResult {
	msg := tool + " failed"
	var te *toolError
	if errors.As(err, &te) {
		msg = te.msg
	}
	logger.Info("tool call failed", slog.String(logKeyTool, tool), slog.Any(logKeyError, err))
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// Log attribute keys.
const (
	logKeyTool  = "tool"
	logKeyError = "error"
)

// handlerFunc is a tool body: it returns the structured output and its text
// rendering, or an error. A failure that still has output (web_read with
// every URL failed) returns out and err together.
type handlerFunc[In, Out any] func(ctx context.Context, req *mcp.CallToolRequest, in In) (out *Out, text string, err error)

// addTool registers a typed tool whose output schema is inferred from Out
// (patched by patchOut) and whose input schema is inferred from In and
// patched by patchIn, for limits that struct tags cannot express.
func addTool[In, Out any](s *mcp.Server, logger *slog.Logger, t *mcp.Tool, patchIn func(*jsonschema.Schema), patchOut func(*jsonschema.Schema), h handlerFunc[In, Out]) {
	t.InputSchema = mustSchema[In](patchIn)
	t.OutputSchema = mustSchema[Out](patchOut)
	// Out is "any" for the SDK so that a failure carries no structured
	// content: a zero Out would be sent (and validated) otherwise.
	mcp.AddTool(s, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		out, text, err := h(ctx, req, in)
		if err != nil {
			res := errorResult(logger, t.Name, err)
			if out != nil {
				res.Content = append(res.Content, &mcp.TextContent{Text: text})
				return res, out, nil
			}
			return res, nil, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, out, nil
	})
}

func mustSchema[T any](patch func(*jsonschema.Schema)) *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("tools: schema for %T: %v", *new(T), err))
	}
	if patch != nil {
		patch(s)
	}
	return s
}

// prop returns the property name of s, panicking when it does not exist:
// schema patches name fields of structs in this package.
func prop(s *jsonschema.Schema, name string) *jsonschema.Schema {
	p, ok := s.Properties[name]
	if !ok {
		panic("tools: schema has no property " + name)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
