package tools

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHTTPTool(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/items":
			if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("X-Team") != "blue" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"data":{"a/b":[{"id":1},{"id":2}],"m~n":"tilde"},"tags":["x","y"]}`))
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(strings.Repeat("overloaded ", 200)))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/text":
			w.Write([]byte("plain answer"))
		}
	}))
	defer srv.Close()
	base := HTTPTool{Description: "test tool", URL: srv.URL + "/items", AuthMode: AuthEnv, AuthToken: "k", Headers: map[string]string{"X-Team": "blue"}}
	tool := func(name string, f func(*HTTPTool)) HTTPTool {
		h := base
		h.Name = name
		f(&h)
		return h
	}
	c := connect(t, &Options{HTTPTools: []HTTPTool{
		tool("whole", func(h *HTTPTool) {}),
		tool("list", func(h *HTTPTool) { h.ResultPointer = "/data/a~1b" }),
		tool("scalar", func(h *HTTPTool) { h.ResultPointer = "/data/m~0n" }),
		tool("element", func(h *HTTPTool) { h.ResultPointer = "/data/a~1b/1" }),
		tool("missing", func(h *HTTPTool) { h.ResultPointer = "/nope" }),
		tool("fail", func(h *HTTPTool) { h.URL = srv.URL + "/fail" }),
		tool("slow", func(h *HTTPTool) { h.URL = srv.URL + "/slow"; h.Timeout = 50 * time.Millisecond }),
		tool("text", func(h *HTTPTool) { h.URL = srv.URL + "/text" }),
		tool("strict", func(h *HTTPTool) {
			h.OutputSchema = map[string]any{"type": "object", "required": []any{"count"}}
		}),
		tool("noauth", func(h *HTTPTool) { h.AuthMode = AuthNone }),
		tool("web_read", func(h *HTTPTool) {}),
		tool("bad schema", func(h *HTTPTool) {}),
		tool("badschema", func(h *HTTPTool) { h.InputSchema = map[string]any{"type": "array"} }),
	}})
	tests := []struct {
		name    string
		want    map[string]any
		wantErr []string
	}{
		{name: "whole", want: map[string]any{"data": map[string]any{"a/b": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}}, "m~n": "tilde"}, "tags": []any{"x", "y"}}},
		{name: "list", want: map[string]any{"result": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}}}},
		{name: "scalar", want: map[string]any{"result": "tilde"}},
		{name: "element", want: map[string]any{"id": 2.0}},
		{name: "text", want: map[string]any{"result": "plain answer"}},
		{name: "missing", wantErr: []string{"/nope"}},
		{name: "fail", wantErr: []string{"503", "overloaded"}},
		{name: "slow", wantErr: []string{"did not answer within 50ms"}},
		{name: "strict", wantErr: []string{"outputSchema"}},
		{name: "noauth", wantErr: []string{"401"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]any
			res := c.call("", tt.name, nil, &got)
			if tt.wantErr != nil {
				wantError(t, res, tt.wantErr...)
				if len(text(res)) > 700 {
					t.Errorf("error excerpt not bounded: %d bytes", len(text(res)))
				}
				return
			}
			wantOK(t, res)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("structured (-want +got):\n%s", diff)
			}
		})
	}
	un := Unavailable(&Options{HTTPTools: []HTTPTool{tool("web_read", func(*HTTPTool) {}), tool("bad schema", func(*HTTPTool) {}), tool("badschema", func(h *HTTPTool) { h.InputSchema = map[string]any{"type": "array"} })}})
	for _, name := range []string{"web_read", "bad schema", "badschema"} {
		if un[name] == "" {
			t.Errorf("no reason for %q in %v", name, un)
		}
	}
}

func TestPointer(t *testing.T) {
	doc := map[string]any{"foo": []any{"bar", "baz"}, "": 0.0, "a/b": 1.0, "m~n": 8.0, " ": 7.0}
	// RFC 6901 §5 examples.
	for p, want := range map[string]any{"/foo/0": "bar", "/": 0.0, "/a~1b": 1.0, "/m~0n": 8.0, "/ ": 7.0} {
		got, err := resolvePointer(doc, p)
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("%q = %v, %v; want %v", p, got, err, want)
		}
	}
	for _, p := range []string{"foo", "/foo/2", "/foo/01", "/foo/-", "/x", "/~2"} {
		if _, err := resolvePointer(doc, p); err == nil {
			t.Errorf("%q: no error", p)
		}
	}
}

func FuzzFillTemplate(f *testing.F) {
	f.Add("{{a}}", "x")
	f.Add("pre {{a}} {{b}} post", "y")
	f.Fuzz(func(t *testing.T, tmpl, arg string) {
		v, _ := fillTemplate(map[string]any{"k": tmpl, "l": []any{tmpl}}, map[string]any{"a": arg})
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["k"].(string); ok && !strings.Contains(tmpl, "{{") && s != tmpl {
				t.Errorf("template without placeholders changed: %q -> %q", tmpl, s)
			}
		}
	})
}

// TestHTTPToolPathArguments checks that an argument filling a segment of
// the URL's path cannot reach another path of the API: the upstream records
// the path each request arrived with.
func TestHTTPToolPathArguments(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.EscapedPath())
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		p := paths
		paths = nil
		return p
	}
	c := connect(t, &Options{HTTPTools: []HTTPTool{{
		Name:        "get_item",
		Description: "test tool",
		URL:         srv.URL + "/api/items/{{item}}?q={{q}}",
		InputSchema: map[string]any{"type": "object", "properties": map[string]any{"item": map[string]any{}, "q": map[string]any{"type": "string"}}},
	}}})
	tests := []struct {
		item     any
		wantPath string // "": refused
	}{
		{"42", "/api/items/42"},
		{"a b", "/api/items/a%20b"},
		{"report.pdf", "/api/items/report.pdf"},
		{"...", "/api/items/..."},
		{"%41", "/api/items/%2541"},
		{7.0, "/api/items/7"},
		{"..", ""},
		{".", ""},
		{"", ""},
		{"%2e%2e", ""},
		{"%2E.", ""},
		{"%252e%252e", ""},
		{"a/b", ""},
		{"../admin", ""},
		{"a%2Fb", ""},
		{"a%252fb", ""},
		{`..\admin`, ""},
		{"a%5Cb", ""},
		{"%2525252525252e", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.item), func(t *testing.T) {
			res := c.call("", "get_item", map[string]any{"item": tt.item, "q": "../x/y"}, nil)
			got := took()
			if tt.wantPath == "" {
				wantError(t, res, "argument item")
				if len(got) > 0 {
					t.Errorf("refused argument %q still reached the upstream at %v", tt.item, got)
				}
				return
			}
			wantOK(t, res)
			if diff := cmp.Diff([]string{tt.wantPath}, got); diff != "" {
				t.Errorf("paths the upstream received (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzCheckPathArgument checks that a value accepted for a path segment
// stays one segment below its parent however many times a server decodes
// the path.
func FuzzCheckPathArgument(f *testing.F) {
	for _, s := range []string{"42", "..", "%2e%2e", "a%252Fb", `a\b`, "..;", "%", "%%32%65"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if checkPathArgument("item", v) != nil {
			return
		}
		p := "/api/items/" + url.PathEscape(v) + "/details"
		for range 6 {
			if d, err := url.PathUnescape(p); err == nil {
				p = d
			}
			clean := path.Clean(strings.ReplaceAll(p, `\`, "/"))
			if !strings.HasPrefix(clean, "/api/items/") || strings.Count(clean, "/") != 4 {
				t.Fatalf("accepted %q, and a server decoding the path may see %q", v, clean)
			}
		}
	})
}
