package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPTool is a tool declared in config (tools.httpTools) that calls an HTTP
// API: arguments fill {{name}} placeholders in the URL, query and JSON body,
// and the JSON answer becomes the result.
type HTTPTool struct {
	Name        string
	Title       string // "": none
	Description string
	// Method is the HTTP method. Empty: GET.
	Method string
	// URL may hold {{name}} placeholders after the host; their values are
	// path-escaped.
	URL string
	// Query parameters; values may hold placeholders. A value that is only
	// "{{name}}" is left out when the argument is absent, and repeated when
	// it is a list.
	Query map[string]string
	// Headers are sent as written (config already expanded ${VAR}).
	Headers map[string]string
	// Body is a JSON template (maps, lists, strings, numbers, booleans). A
	// string that is only "{{name}}" becomes the argument's JSON value, or
	// is left out when the argument is absent (a mapping emptied that way
	// is left out too); other strings interpolate. Nil: no body.
	Body any
	// InputSchema is the arguments' JSON Schema (type object). Nil: no
	// arguments.
	InputSchema map[string]any
	// OutputSchema describes the result object. Nil: {"type": "object"}.
	OutputSchema map[string]any
	// ResultPointer (RFC 6901) narrows the JSON answer, e.g. "/items". A
	// result that is not an object is wrapped as {"result": value}. Empty:
	// the whole answer.
	ResultPointer string
	// AuthMode is "none" (or empty), "env" (send AuthToken as a bearer
	// token) or "forward" (send the caller's own bearer token; AuthToken,
	// when set, is the fallback, as ApeRAG's header-or-env pattern).
	AuthMode string
	// AuthToken is the bearer token for "env" and the fallback for
	// "forward", read from the environment when config was loaded.
	AuthToken string
	// Timeout bounds a call. Zero: 30s.
	Timeout time.Duration
}

// Auth modes of HTTPTool.
const (
	AuthNone    = "none"
	AuthEnv     = "env"
	AuthForward = "forward"
)

// maxHTTPToolBody bounds an HTTP tool's response.
const maxHTTPToolBody = 4 << 20

var (
	toolNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)
	placeholderRE = regexp.MustCompile(`\{\{([A-Za-z0-9_]+)\}\}`)
)

func addHTTPTools(b *builder, o Options) {
	seen := map[string]bool{}
	for _, name := range []string{ToolCurrentTime, ToolWebSearch, ToolWebRead, ToolCreateSchedule, ToolListSchedules} {
		if _, skipped := b.unavailable[name]; !skipped {
			seen[name] = true
		}
	}
	for i := range o.HTTPTools {
		t := o.HTTPTools[i]
		h, err := newHTTPHandler(t, o)
		switch {
		case !toolNameRE.MatchString(t.Name):
			b.skip(orDefault(t.Name, fmt.Sprintf("httpTools[%d]", i)), "not a valid tool name (letters, digits, _ . -, at most 128)")
			continue
		case seen[t.Name]:
			b.skip(t.Name, "another tool already has this name")
			continue
		case err != nil:
			b.skip(t.Name, err.Error())
			continue
		}
		seen[t.Name] = true
		b.add = append(b.add, func(s *mcp.Server) {
			method := strings.ToUpper(orDefault(t.Method, http.MethodGet))
			readOnly := method == http.MethodGet || method == http.MethodHead
			s.AddTool(&mcp.Tool{
				Name:         t.Name,
				Title:        t.Title,
				Description:  t.Description,
				InputSchema:  h.inSchema,
				OutputSchema: h.outSchema,
				Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: readOnly, OpenWorldHint: ptr(true)},
			}, h.handle)
		})
	}
}

type httpHandler struct {
	t                   HTTPTool
	o                   Options
	method              string
	inSchema, outSchema *jsonschema.Schema
	in, out             *jsonschema.Resolved
}

func newHTTPHandler(t HTTPTool, o Options) (*httpHandler, error) {
	h := &httpHandler{t: t, o: o, method: strings.ToUpper(orDefault(t.Method, http.MethodGet))}
	var err error
	in := t.InputSchema
	if in == nil {
		in = map[string]any{"type": "object", "properties": map[string]any{}}
	}
	if h.inSchema, h.in, err = compileSchema(in); err != nil {
		return nil, fmt.Errorf("inputSchema: %v", err)
	}
	if h.inSchema.Type != "object" {
		return nil, errors.New(`inputSchema must have type "object"`)
	}
	out := t.OutputSchema
	if out == nil {
		out = map[string]any{"type": "object"}
	}
	if h.outSchema, h.out, err = compileSchema(out); err != nil {
		return nil, fmt.Errorf("outputSchema: %v", err)
	}
	if _, err := parsePointer(t.ResultPointer); err != nil {
		return nil, fmt.Errorf("resultPointer: %v", err)
	}
	switch t.AuthMode {
	case "", AuthNone, AuthForward:
	case AuthEnv:
		if t.AuthToken == "" {
			return nil, errors.New("auth mode env has no token (the environment variable is not set)")
		}
	default:
		return nil, fmt.Errorf("unknown auth mode %q (want none, env or forward)", t.AuthMode)
	}
	u, err := url.Parse(placeholderRE.ReplaceAllString(t.URL, "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q is not an absolute http or https URL", t.URL)
	}
	return h, nil
}

func compileSchema(m map[string]any) (*jsonschema.Schema, *jsonschema.Resolved, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, nil, err
	}
	r, err := s.Resolve(nil)
	if err != nil {
		return nil, nil, err
	}
	return &s, r, nil
}

func (h *httpHandler) fail(err error) (*mcp.CallToolResult, error) {
	return errorResult(h.o.Logger, h.t.Name, err), nil
}

func (h *httpHandler) handle(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	args := map[string]any{}
	if raw := req.Params.Arguments; len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &args); err != nil {
			return h.fail(fail(err, "arguments must be a JSON object"))
		}
	}
	if err := h.in.ApplyDefaults(&args); err != nil {
		return h.fail(fail(err, "invalid arguments: %v", err))
	}
	if err := h.in.Validate(args); err != nil {
		return h.fail(fail(err, "invalid arguments: %v", err))
	}
	hreq, err := h.request(ctx, req, args)
	if err != nil {
		return h.fail(err)
	}
	timeout := h.t.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := h.o.HTTPClient.Do(hreq.WithContext(ctx))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return h.fail(fail(err, "%s did not answer within %s", hreq.URL.Host, timeout))
		}
		return h.fail(fail(err, "%s could not be reached", hreq.URL.Host))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPToolBody+1))
	if err != nil {
		return h.fail(fail(err, "the answer of %s could not be read", hreq.URL.Host))
	}
	if len(body) > maxHTTPToolBody {
		return h.fail(fail(nil, "the answer of %s is larger than %d MiB", hreq.URL.Host, maxHTTPToolBody>>20))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("%s answered HTTP %d %s", hreq.URL.Host, resp.StatusCode, http.StatusText(resp.StatusCode))
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + excerpt(b, 500)
		}
		return h.fail(fail(nil, "%s", msg))
	}
	var value any
	if len(bytes.TrimSpace(body)) == 0 {
		value = map[string]any{}
	} else if err := json.Unmarshal(body, &value); err != nil {
		value = string(body) // not JSON: the text becomes the result
	} else if value, err = resolvePointer(value, h.t.ResultPointer); err != nil {
		return h.fail(fail(err, "the answer of %s has no %s: %v", hreq.URL.Host, h.t.ResultPointer, err))
	}
	structured, ok := value.(map[string]any)
	if !ok {
		structured = map[string]any{"result": value}
	}
	if err := h.out.Validate(structured); err != nil {
		return h.fail(fail(err, "the answer of %s does not match the tool's outputSchema: %v", hreq.URL.Host, err))
	}
	text, _ := json.MarshalIndent(value, "", "  ")
	if s, isString := value.(string); isString {
		text = []byte(s)
	}
	return &mcp.CallToolResult{
		Content:           []mcp.Content{&mcp.TextContent{Text: excerpt(string(text), 100000)}},
		StructuredContent: structured,
	}, nil
}

func (h *httpHandler) request(ctx context.Context, req *mcp.CallToolRequest, args map[string]any) (*http.Request, error) {
	var missing []string
	var b strings.Builder
	pathEnd := strings.IndexAny(h.t.URL, "?#")
	if pathEnd < 0 {
		pathEnd = len(h.t.URL)
	}
	last := 0
	for _, m := range placeholderRE.FindAllStringSubmatchIndex(h.t.URL, -1) {
		b.WriteString(h.t.URL[last:m[0]])
		last = m[1]
		name := h.t.URL[m[2]:m[3]]
		v, ok := args[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		s := scalarText(v)
		if m[0] < pathEnd {
			if err := checkPathArgument(name, s); err != nil {
				return nil, err
			}
		}
		b.WriteString(url.PathEscape(s))
	}
	b.WriteString(h.t.URL[last:])
	rawURL := b.String()
	if len(missing) > 0 {
		return nil, fail(nil, "missing argument %s (needed in the URL)", strings.Join(missing, ", "))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fail(err, "the URL built from the arguments is invalid")
	}
	q := u.Query()
	for _, k := range sortedKeys(h.t.Query) {
		v := h.t.Query[k]
		if name, only := onlyPlaceholder(v); only {
			switch a := args[name].(type) {
			case nil:
			case []any:
				for _, e := range a {
					q.Add(k, scalarText(e))
				}
			default:
				q.Add(k, scalarText(a))
			}
			continue
		}
		q.Add(k, interpolate(v, args))
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if h.t.Body != nil {
		v, _ := fillTemplate(h.t.Body, args)
		data, err := json.Marshal(v)
		if err != nil {
			return nil, fail(err, "the request body could not be built")
		}
		body = bytes.NewReader(data)
	}
	hreq, err := http.NewRequestWithContext(ctx, h.method, u.String(), body)
	if err != nil {
		return nil, fail(err, "the request could not be built")
	}
	for _, k := range sortedKeys(h.t.Headers) {
		hreq.Header.Set(k, h.t.Headers[k])
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if hreq.Header.Get("Accept") == "" {
		hreq.Header.Set("Accept", "application/json")
	}
	switch h.t.AuthMode {
	case AuthEnv:
		hreq.Header.Set("Authorization", "Bearer "+h.t.AuthToken)
	case AuthForward:
		token, err := h.callerToken(ctx, req)
		if err != nil {
			return nil, err
		}
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	return hreq, nil
}

// checkPathArgument refuses a value for a placeholder in the URL's path
// that could make the request reach another path of the API than the one
// the tool declares. url.PathEscape leaves "." and ".." as they are, and
// servers, proxies and frameworks that decode percent-escapes (once or more)
// or treat a backslash as a separator would see "%2e%2e", "%2F" or `\` as
// a dot-segment or a separator too (RFC 3986 §5.2.4 removes dot-segments).
// So the value is refused, not escaped, when it or any of its decodings is
// empty, "." or "..", or holds "/" or `\`; so is a value still encoded after
// four decodings.
func checkPathArgument(name, v string) error {
	orig := v
	for range 5 {
		switch {
		case v == "", v == ".", v == "..":
			return fail(nil, "argument %s may not be %q: it fills a segment of the URL's path, and an empty, \".\" or \"..\" segment (also percent-encoded) would address another resource", name, orig)
		case strings.ContainsAny(v, `/\`):
			return fail(nil, "argument %s may not contain / or \\ (also percent-encoded): it fills one segment of the URL's path", name)
		}
		d, err := url.PathUnescape(v)
		if err != nil || d == v {
			return nil
		}
		v = d
	}
	return fail(nil, "argument %s is percent-encoded too many times for a segment of the URL's path", name)
}

// callerToken returns the bearer token to forward: the one the call came
// with over HTTP, else the hub's for the signed-in user, else the
// configured fallback.
func (h *httpHandler) callerToken(ctx context.Context, req *mcp.CallToolRequest) (string, error) {
	if req.Extra != nil && req.Extra.Header != nil {
		if tok, ok := bearer(req.Extra.Header.Get("Authorization")); ok {
			return tok, nil
		}
	}
	if h.o.CallerToken != nil {
		if user := userID(req); user != "" {
			tok, err := h.o.CallerToken(ctx, user)
			if err == nil && tok != "" {
				return tok, nil
			}
			if err != nil && !notAuthorized(err) {
				return "", fail(err, "your access token could not be forwarded; sign in again")
			}
		}
	}
	if h.t.AuthToken != "" {
		return h.t.AuthToken, nil
	}
	return "", fail(nil, "%s forwards the caller's bearer token, and this call has none: call it signed in, or ask the administrator to set the auth env fallback", h.t.Name)
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// onlyPlaceholder reports whether s is exactly one {{name}} placeholder.
func onlyPlaceholder(s string) (string, bool) {
	m := placeholderRE.FindStringSubmatchIndex(s)
	if m == nil || m[0] != 0 || m[1] != len(s) {
		return "", false
	}
	return s[m[2]:m[3]], true
}

func interpolate(s string, args map[string]any) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		v, ok := args[placeholderRE.FindStringSubmatch(m)[1]]
		if !ok {
			return ""
		}
		return scalarText(v)
	})
}

// scalarText renders an argument for a URL or string: strings as they are,
// whole numbers without exponent, other values as JSON.
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// fillTemplate fills a body template; keep is false when the value is to be
// left out (an absent argument).
func fillTemplate(t any, args map[string]any) (v any, keep bool) {
	switch x := t.(type) {
	case string:
		if name, only := onlyPlaceholder(x); only {
			a, ok := args[name]
			return a, ok
		}
		return interpolate(x, args), true
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if v, ok := fillTemplate(e, args); ok {
				out[k] = v
			}
		}
		if len(out) == 0 && len(x) > 0 {
			return nil, false
		}
		return out, true
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if v, ok := fillTemplate(e, args); ok {
				out = append(out, v)
			}
		}
		return out, true
	default:
		return t, true
	}
}

// parsePointer splits an RFC 6901 JSON pointer into reference tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q must be empty or start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		// RFC 6901 §4: ~1 first, then ~0.
		if strings.Contains(strings.NewReplacer("~0", "", "~1", "").Replace(t), "~") {
			return nil, fmt.Errorf("%q: ~ must be followed by 0 or 1", p)
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

func resolvePointer(v any, p string) (any, error) {
	toks, err := parsePointer(p)
	if err != nil {
		return nil, err
	}
	for _, t := range toks {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[t]
			if !ok {
				return nil, fmt.Errorf("no member %q", t)
			}
			v = next
		case []any:
			// RFC 6901 §4: an index is 0 or digits without a leading zero
			// (Atoi alone would take "+1" and "-0").
			i, err := strconv.Atoi(t)
			if err != nil || !isArrayIndex(t) || i >= len(x) {
				return nil, fmt.Errorf("no element %q in a list of %d", t, len(x))
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("cannot index %q into a scalar", t)
		}
	}
	return v, nil
}

func isArrayIndex(t string) bool {
	if t == "" || (len(t) > 1 && t[0] == '0') {
		return false
	}
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
