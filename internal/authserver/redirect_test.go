package authserver

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", true},
		{"http://127.0.0.1:33418/callback", true},
		{"http://[::1]:33418/callback", true},
		{"http://localhost:6274/oauth/callback", true},
		{"cursor://anysphere.cursor-retrieval/oauth/user-switchboard/callback", true},
		{"com.example.app:/oauth2redirect", true},
		{"http://example.com/callback", false},
		{"http://127.0.0.1.example.com/cb", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"https://example.com/cb#frag", false},
		{"https://example.com/cb#", false},
		{"/relative/callback", false},
		{"https://user:pw@example.com/cb", false},
		{"https://exa mple.com/cb", false},
		{"", false},
		{"https://" + strings.Repeat("a", 2100) + ".com/", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			if err := checkRedirectURI(tt.uri); (err == nil) != tt.ok {
				t.Fatalf("checkRedirectURI(%q) = %v, want ok=%v", tt.uri, err, tt.ok)
			}
		})
	}
}

func TestMatchRedirectURI(t *testing.T) {
	registered := []string{
		"https://app.example.com/callback",
		"http://127.0.0.1:8000/cb",
		"http://[::1]/cb",
		"http://localhost:3000/oauth/callback?x=1",
		"cursor://anysphere.cursor-retrieval/oauth/callback",
	}
	tests := []struct {
		name, uri string
		ok        bool
	}{
		{"exact", "https://app.example.com/callback", true},
		{"trailing slash", "https://app.example.com/callback/", false},
		{"path case", "https://app.example.com/Callback", false},
		{"host case", "https://APP.example.com/callback", false},
		{"other port on non-loopback host", "https://app.example.com:8443/callback", false},
		{"http instead of https", "http://app.example.com/callback", false},
		{"extra query", "https://app.example.com/callback?a=b", false},
		{"loopback v4 any port", "http://127.0.0.1:51234/cb", true},
		{"loopback v4 no port", "http://127.0.0.1/cb", true},
		{"loopback v6 any port", "http://[::1]:51234/cb", true},
		{"localhost any port, same query", "http://localhost:9999/oauth/callback?x=1", true},
		{"localhost without the query", "http://localhost:9999/oauth/callback", false},
		{"loopback other path", "http://127.0.0.1:51234/cb2", false},
		{"loopback trailing slash", "http://127.0.0.1:51234/cb/", false},
		{"loopback other host spelling", "http://localhost:8000/cb", false},
		{"loopback https is exact only", "https://127.0.0.1:51234/cb", false},
		{"custom scheme exact", "cursor://anysphere.cursor-retrieval/oauth/callback", true},
		{"custom scheme different", "cursor://anysphere.cursor-retrieval/oauth/callback2", false},
		{"javascript", "javascript:alert(1)", false},
		{"data", "data:text/html,hi", false},
		{"fragment", "https://app.example.com/callback#x", false},
		{"loopback with fragment", "http://127.0.0.1:5000/cb#x", false},
		{"loopback userinfo", "http://evil@127.0.0.1:5000/cb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchRedirectURI(tt.uri, registered); got != tt.ok {
				t.Fatalf("matchRedirectURI(%q) = %v, want %v", tt.uri, got, tt.ok)
			}
		})
	}
}

// FuzzMatchRedirectURI checks that whatever matches a registered URI is
// either that URI or a loopback http URI differing only in port, and never
// a URI registration would refuse.
func FuzzMatchRedirectURI(f *testing.F) {
	for _, s := range []string{"https://app.example.com/callback", "http://127.0.0.1:1/cb", "http://127.0.0.1:80/cb#", "javascript://127.0.0.1/cb", "http://127.0.0.1:99999/cb", "http://127.0.0.1:5/cb?"} {
		f.Add(s)
	}
	registered := []string{"https://app.example.com/callback", "http://127.0.0.1:8000/cb"}
	f.Fuzz(func(t *testing.T, uri string) {
		if !matchRedirectURI(uri, registered) {
			return
		}
		if uri == registered[0] || uri == registered[1] {
			return
		}
		if err := checkRedirectURI(uri); err != nil {
			t.Fatalf("%q matched but is invalid: %v", uri, err)
		}
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.EscapedPath() != "/cb" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("%q matched %v", uri, registered)
		}
	})
}

func TestPKCE(t *testing.T) {
	// RFC 7636 Appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if !validChallenge(challenge) || !verifyPKCE(verifier, challenge) {
		t.Fatal("RFC 7636 example does not verify")
	}
	for _, v := range []string{"", "short", verifier + "x", strings.Repeat("a", 129), verifier[:42], challenge} {
		if verifyPKCE(v, challenge) {
			t.Errorf("verifier %q accepted", v)
		}
	}
	// "plain": the verifier equal to the challenge does not verify.
	if verifyPKCE(challenge, challenge) {
		t.Error("plain PKCE accepted")
	}
	for _, c := range []string{"", "abc", challenge + "A", strings.Repeat("!", 43)} {
		if validChallenge(c) {
			t.Errorf("challenge %q accepted", c)
		}
	}
}
