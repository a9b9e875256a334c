package authserver

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

const (
	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
)

// checkRedirectURI validates a redirect URI a client registers (RFC 7591
// §2, OAuth 2.1 §2.3.1, RFC 8252 §7, RFC 9700 §4.1.1). It returns why the
// URI is refused, or nil.
func checkRedirectURI(raw string) error {
	if raw == "" || len(raw) > maxRedirectURILen {
		return errors.New("redirect URI is empty or too long")
	}
	for _, c := range raw {
		if c <= ' ' || c == 0x7f {
			return errors.New("redirect URI contains whitespace or control characters")
		}
	}
	// A fragment, even an empty one, is refused (RFC 6749 §3.1.2).
	if strings.Contains(raw, "#") {
		return errors.New("redirect URI must not contain a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("redirect URI is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "":
		return errors.New("redirect URI must be absolute")
	case "javascript", "data", "vbscript", "file", "blob", "about", "filesystem", "view-source":
		return errors.New("redirect URI scheme " + scheme + " is not allowed")
	case "https":
		if u.Host == "" || u.Opaque != "" {
			return errors.New("https redirect URI needs a host")
		}
	case "http":
		if u.Host == "" || u.Opaque != "" {
			return errors.New("http redirect URI needs a host")
		}
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("plain http redirect URIs are allowed for loopback hosts only")
		}
	default:
		// Private-use schemes for native apps (RFC 8252 §7.1), e.g.
		// cursor://anysphere.cursor-retrieval/oauth/callback.
	}
	if u.User != nil {
		return errors.New("redirect URI must not contain user information")
	}
	return nil
}

// isLoopbackHost reports whether host names the local machine as RFC 8252
// §7.3 and §8.3 use it: 127.0.0.1, ::1 or localhost.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// matchRedirectURI reports whether the redirect URI of an authorization
// request equals one the client registered: byte for byte, except that a
// loopback redirect URI may use any port (RFC 8252 §7.3), since native apps
// listen on an ephemeral port.
func matchRedirectURI(requested string, registered []string) bool {
	for _, r := range registered {
		if requested == r {
			return true
		}
	}
	if checkRedirectURI(requested) != nil {
		return false
	}
	ru, err := url.Parse(requested)
	if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
		return false
	}
	for _, r := range registered {
		gu, err := url.Parse(r)
		if err != nil || gu.Scheme != "http" {
			continue
		}
		if gu.Hostname() == ru.Hostname() && gu.EscapedPath() == ru.EscapedPath() &&
			gu.RawQuery == ru.RawQuery && gu.ForceQuery == ru.ForceQuery && gu.User == nil && ru.User == nil &&
			// The host is compared as written, so "localhost" does not match
			// "127.0.0.1", and only the port may differ.
			hostWithoutPort(gu.Host) == hostWithoutPort(ru.Host) {
			return true
		}
	}
	return false
}

func hostWithoutPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}
