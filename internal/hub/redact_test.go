package hub

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Post "https://server.smithery.ai/x/mcp?api_key=sk-123&profile=p": dial tcp: refused`, `Post "https://server.smithery.ai/x/mcp?api_key=…&profile=…": dial tcp: refused`},
		{"GET https://user:hunter2@example.com/sse failed", "GET https://example.com/sse failed"},
		{"no url here", "no url here"},
		{"plain https://example.com/mcp stays", "plain https://example.com/mcp stays"},
	}
	for _, tt := range tests {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactErrKeepsChain(t *testing.T) {
	err := redactErr(fmt.Errorf("connect: %w: https://h/mcp?token=secret", ErrUnavailable))
	if !errors.Is(err, ErrUnavailable) {
		t.Error("errors.Is lost the cause")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("secret in %q", err)
	}
}

func FuzzRedactURLs(f *testing.F) {
	f.Add("https://a:b@h/p?k=v x")
	f.Fuzz(func(t *testing.T, s string) {
		out := redactURLs(s)
		if !strings.Contains(s, "://") && out != s {
			t.Fatalf("changed text without URLs: %q -> %q", s, out)
		}
	})
}
