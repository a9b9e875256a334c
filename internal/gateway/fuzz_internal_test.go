package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyForward feeds the signed header a replica vouches for a
// forwarded request with. Without the key nothing can be signed, so whatever
// verifies carries a payload this replica signed, and has not expired.
func FuzzVerifyForward(f *testing.F) {
	key := []byte("replica-shared-forwarding-key")
	g := &Gateway{opts: Options{SignForward: func(data []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(data)
		return m.Sum(nil)
	}}}
	now := time.Unix(1_800_000_000, 0)
	signed := map[string]bool{}
	sign := func(c forwardClaims) string {
		v := g.signForward(c)
		p, _, _ := strings.Cut(v, ".")
		signed[p] = true
		return v
	}
	valid := sign(forwardClaims{User: "alice", Session: "S1", Path: "/mcp", Handler: handlerHash("h"), Expires: now.Unix() + 60})
	expired := sign(forwardClaims{User: "alice", Session: "S1", Path: "/mcp", Handler: handlerHash("h"), Expires: now.Unix() - 1})
	f.Add(valid)
	f.Add(expired)
	p, sig, _ := strings.Cut(valid, ".")
	f.Add(p + "." + sig + "=")
	f.Add(p + ".." + sig)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"u":"bob","s":"S1","p":"/mcp","e":9999999999}`)) + "." + sig)
	f.Add(p + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")))
	f.Add(p)
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := g.verifyForward(v, now)
		if !ok {
			return
		}
		p, _, _ := strings.Cut(v, ".")
		if !signed[p] {
			t.Fatalf("%q verified with a payload never signed", v)
		}
		if c.Expires <= now.Unix() {
			t.Fatalf("expired claims %+v accepted", c)
		}
	})
}

// FuzzOriginAllowed feeds Origin header values to the /mcp origin check.
// What it allows is a configured origin or an http(s) origin whose host is
// loopback — as a browser serializes origins (scheme://host[:port]), only
// those; never a look-alike such as localhost.evil.example or
// 127.0.0.1.evil.example.
func FuzzOriginAllowed(f *testing.F) {
	g := &Gateway{origins: map[string]bool{"https://claude.ai": true, "https://mcp.example.com": true}}
	for _, o := range []string{"https://claude.ai", "https://claude.ai/", "http://localhost:6274", "http://127.0.0.1", "http://[::1]:8080",
		"http://LOCALHOST", "https://localhost.evil.example", "http://127.0.0.1.evil.example", "http://127.0.0.1@evil.example",
		"http://evil.example#@127.0.0.1", "null", "file://", "http://0x7f.1", "http://[::ffff:127.0.0.1]", "http://127.1",
		"https://claude.ai.evil.example", "chrome-extension://abc", "http://localhost:99999", "http://[::1"} {
		f.Add(o)
	}
	f.Fuzz(func(t *testing.T, o string) {
		if !g.originAllowed(o) {
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
