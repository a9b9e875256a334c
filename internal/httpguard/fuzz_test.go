package httpguard

import (
	"net"
	"net/url"
	"strings"
	"testing"
)

// FuzzOriginAllowed feeds Origin header values to the origin check of every endpoint.
// What it allows is a configured origin or an http(s) origin whose host is
// loopback — as a browser serializes origins (scheme://host[:port]), only
// those; never a look-alike such as localhost.evil.example or
// 127.0.0.1.evil.example.
func FuzzOriginAllowed(f *testing.F) {
	g := New(&Options{AllowedOrigins: []string{"https://claude.ai", "https://mcp.example.com"}})
	for _, o := range []string{"https://claude.ai", "https://claude.ai/", "http://localhost:6274", "http://127.0.0.1", "http://[::1]:8080",
		"http://LOCALHOST", "https://localhost.evil.example", "http://127.0.0.1.evil.example", "http://127.0.0.1@evil.example",
		"http://evil.example#@127.0.0.1", "null", "file://", "http://0x7f.1", "http://[::ffff:127.0.0.1]", "http://127.1",
		"https://claude.ai.evil.example", "chrome-extension://abc", "http://localhost:99999", "http://[::1"} {
		f.Add(o)
	}
	f.Fuzz(func(t *testing.T, o string) {
		if !g.OriginAllowed(o) {
			return
		}
		if g.origins[strings.TrimRight(o, "/")] {
			return
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("%q allowed", o)
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("%q allowed with host %q", o, h)
		}
		// The authority of a browser-serialized origin is everything
		// after "scheme://": it must then name the loopback host itself.
		if rest, ok := strings.CutPrefix(o, u.Scheme+"://"); ok && !strings.ContainsAny(rest, "@/#?\\") {
			host := rest
			if hp, _, err := net.SplitHostPort(rest); err == nil {
				host = hp
			}
			host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
			if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("%q allowed: authority %q is not loopback", o, rest)
			}
		}
	})
}
