package hub

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

func TestResolveServer(t *testing.T) {
	u := &User{ID: "u-1", Name: "Kim Minji", Username: "minji", Email: "m@example.com", Role: "user", Provider: "naver",
		Fields: map[string]string{"NAVERID": "nv-9"}, IdPAccessToken: "idp-token"}
	srv := &config.Server{
		Name:    "s",
		Command: "run-{{LIBRECHAT_USER_ID}}",
		URL:     "https://mcp.example.com/{{LIBRECHAT_USER_ID}}?t={{TENANT}}",
		Headers: map[string]string{
			"X-User":   "{{LIBRECHAT_USER_ID}}",
			"X-Token":  "Bearer {{TOKEN}}",
			"X-Name":   "{{LIBRECHAT_USER_NAME}}",
			"X-IdP":    "{{LIBRECHAT_OPENID_ACCESS_TOKEN}}|{{SWITCHBOARD_IDP_ACCESS_TOKEN}}",
			"X-Other":  "{{UNKNOWN}} {{LIBRECHAT_USER_NAVERID}}",
			"X-Braces": "{{{{TOKEN}}}}",
		},
		Env:  map[string]string{"TOKEN": "{{TOKEN}}", "WHO": "{{LIBRECHAT_USER_EMAIL}}/{{LIBRECHAT_USER_ROLE}}/{{LIBRECHAT_USER_PROVIDER}}"},
		Args: []string{"--token", "{{TOKEN}}", "--user={{LIBRECHAT_USER_USERNAME}}"},
	}
	tests := []struct {
		name    string
		custom  map[string]string
		check   func(t *testing.T, got *config.Server)
		wantErr error
	}{
		{
			name:   "plain",
			custom: map[string]string{"TOKEN": "tok", "TENANT": "acme"},
			check: func(t *testing.T, got *config.Server) {
				want := map[string]string{
					"X-User": "u-1", "X-Token": "Bearer tok", "X-Name": "Kim Minji",
					"X-IdP": "idp-token|idp-token", "X-Other": "{{UNKNOWN}} nv-9", "X-Braces": "{{tok}}",
				}
				if diff := cmp.Diff(want, got.Headers); diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
				if got.URL != "https://mcp.example.com/u-1?t=acme" {
					t.Errorf("url %q", got.URL)
				}
				if got.Command != srv.Command {
					t.Errorf("command was filled in: %q", got.Command)
				}
				if diff := cmp.Diff([]string{"--token", "tok", "--user=minji"}, got.Args); diff != "" {
					t.Errorf("args (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(map[string]string{"TOKEN": "tok", "WHO": "m@example.com/user/naver"}, got.Env); diff != "" {
					t.Errorf("env (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "typed values are not expanded again",
			custom: map[string]string{"TOKEN": "{{LIBRECHAT_USER_ID}}${HOME}$(id)`id`", "TENANT": "x"},
			check: func(t *testing.T, got *config.Server) {
				if v := got.Env["TOKEN"]; v != "{{LIBRECHAT_USER_ID}}${HOME}$(id)`id`" {
					t.Errorf("env TOKEN = %q", v)
				}
				if v := got.Args[1]; v != "{{LIBRECHAT_USER_ID}}${HOME}$(id)`id`" {
					t.Errorf("arg = %q", v)
				}
			},
		},
		{
			name:   "spaces stay in one argument",
			custom: map[string]string{"TOKEN": "a b; rm -rf /", "TENANT": "x"},
			check: func(t *testing.T, got *config.Server) {
				if len(got.Args) != 3 || got.Args[1] != "a b; rm -rf /" {
					t.Errorf("args %q", got.Args)
				}
			},
		},
		{name: "line break in a header", custom: map[string]string{"TOKEN": "x\r\nX-Evil: 1", "TENANT": "x"}, wantErr: ErrHeaderValue},
		{name: "leading dash starts an argument", custom: map[string]string{"TOKEN": "--config=/etc/passwd", "TENANT": "x"}, wantErr: errArgOption},
		{
			name:   "non-Latin-1 header value",
			custom: map[string]string{"TOKEN": "토큰", "TENANT": "x"},
			check: func(t *testing.T, got *config.Server) {
				if v := got.Headers["X-Token"]; v != "b64:QmVhcmVyIO2GoO2BsA==" {
					t.Errorf("X-Token = %q", v)
				}
			},
		},
		{
			name:   "Latin-1 header value",
			custom: map[string]string{"TOKEN": "café", "TENANT": "x"},
			check: func(t *testing.T, got *config.Server) {
				if v := got.Headers["X-Token"]; v != "Bearer caf\xe9" {
					t.Errorf("X-Token = %q", v)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveServer(srv, tt.custom, u)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestUserChoseHost(t *testing.T) {
	tests := []struct {
		tmpl, filled string
		want         bool
	}{
		{"https://a.example/mcp", "https://a.example/mcp", false},
		{"https://a.example/{{X}}", "https://a.example/x", false},
		{"https://a.example/{{X}}", "https://a.example/@evil.example", false},
		{"https://{{X}}.example/mcp", "https://t.example/mcp", true},
		{"https://a.example{{X}}", "https://a.example.evil.example/", true},
	}
	for _, tt := range tests {
		if got := userChoseHost(tt.tmpl, tt.filled); got != tt.want {
			t.Errorf("userChoseHost(%q, %q) = %v, want %v", tt.tmpl, tt.filled, got, tt.want)
		}
	}
}

// FuzzFill checks that substitution happens once: whatever the values,
// every byte of the output comes from the template or from one value, a
// template without placeholders is unchanged, and a header value never
// carries a line break.
func FuzzFill(f *testing.F) {
	f.Add("Bearer {{TOKEN}}", "{{TOKEN}}", "u")
	f.Add("{{{{TOKEN}}}}", "x}}", "{{")
	f.Add("{{LIBRECHAT_USER_ID}}{{TOKEN", "a\r\nb", "${HOME}")
	f.Fuzz(func(t *testing.T, tmpl, token, id string) {
		vars, typed := placeholderVars(map[string]string{"TOKEN": token}, &User{ID: id})
		out, _ := fill(tmpl, vars, typed)
		if !strings.Contains(tmpl, "{{") && out != tmpl {
			t.Fatalf("fill(%q) = %q without placeholders", tmpl, out)
		}
		// Substituting each value with a marker-free copy must give the
		// same length as a single pass: no value was scanned again.
		n := strings.Count(tmpl, "{{TOKEN}}")
		m := strings.Count(tmpl, "{{LIBRECHAT_USER_ID}}")
		if id == "" {
			m = 0
		}
		// Runs of three or more braces overlap a placeholder in ways this
		// count does not model ("{{{TOKEN}}" is left as it is).
		if !strings.Contains(tmpl, "{{{") && !strings.Contains(tmpl, "}}}") {
			want := len(tmpl) - n*len("{{TOKEN}}") + n*len(token) - m*len("{{LIBRECHAT_USER_ID}}") + m*len(id)
			if len(out) != want && strings.Count(tmpl, "{{") == n+m {
				t.Fatalf("fill(%q) = %q: length %d, want %d", tmpl, out, len(out), want)
			}
		}
		hv, err := headerValue(out)
		if err == nil && strings.ContainsAny(hv, "\r\n\x00") {
			t.Fatalf("header value %q carries a line break", hv)
		}
		if err == nil && !strings.HasPrefix(hv, "b64:") {
			for _, r := range out {
				if r > 0xFF {
					t.Fatalf("header value %q not encoded", out)
				}
			}
		}
		_ = utf8.ValidString(hv)
	})
}
