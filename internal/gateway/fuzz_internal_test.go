package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
	valid := sign(forwardClaims{User: "alice", Session: "S1", Path: "/mcp", Handler: handlerHash(handlerKey{user: "h"}), Expires: now.Unix() + 60})
	expired := sign(forwardClaims{User: "alice", Session: "S1", Path: "/mcp", Handler: handlerHash(handlerKey{user: "h"}), Expires: now.Unix() - 1})
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
