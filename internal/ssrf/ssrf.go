// Package ssrf provides an HTTP client for fetching URLs that untrusted
// parties name (OAuth Client ID Metadata Documents, upstream OAuth
// discovery, tool fetches) without letting them reach private networks.
//
// Addresses are checked at dial time, after DNS resolution, on the exact
// address the socket connects to, so DNS rebinding, numeric host spellings
// (0x7f000001, 2130706433) and IPv4-mapped IPv6 cannot slip through, and
// every redirect is re-checked the same way. Proxies from the environment
// are ignored: a proxy would be the only address checked.
//
// authserver, hub and tools may import it; it imports the standard library
// only.
package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Policy says which destinations a client may reach. The zero value (or
// nil) allows public unicast addresses only, with the default limits.
type Policy struct {
	// AllowedHosts lists host names (as written in URLs, case-insensitive)
	// that may resolve to any address, e.g. an internal identity provider.
	// Nil: none.
	AllowedHosts []string
	// AllowedAddresses lists CIDR prefixes ("10.1.0.0/16", "127.0.0.1/32")
	// or exact "ip:port" pairs that may be reached although a rule refuses
	// them. Nil: none.
	AllowedAddresses []string
	// AllowPrivate permits RFC 1918, shared (100.64/10) and unique-local
	// IPv6 addresses. Loopback, link-local (cloud metadata) and the other
	// special ranges still need AllowedAddresses. False: refused.
	AllowPrivate bool
	// Timeout bounds a whole request, redirects and body included. Zero: 5s.
	Timeout time.Duration
	// MaxBytes bounds a response body; reading past it fails with
	// ErrTooLarge. Zero: 64 KiB. Negative: no limit.
	MaxBytes int64
	// MaxRedirects bounds the redirects followed. Zero: 3. Negative: none followed.
	MaxRedirects int
	// TLSClientConfig configures TLS, e.g. extra root CAs. Nil: the defaults.
	TLSClientConfig *tls.Config
}

// ErrTooLarge is returned when reading a response body past Policy.MaxBytes.
var ErrTooLarge = errors.New("response body too large")

// RefusedError reports a destination address that the policy refuses.
type RefusedError struct {
	Addr netip.Addr
	Rule string // e.g. "loopback address"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused %s: %s (not in mcpSettings.allowedAddresses)", e.Addr, e.Rule)
}

// rule is a refused address range.
type rule struct {
	prefix  netip.Prefix
	name    string
	private bool // AllowPrivate lifts it
}

var rules = func() []rule {
	var rs []rule
	add := func(name string, private bool, cidrs ...string) {
		for _, c := range cidrs {
			rs = append(rs, rule{netip.MustParsePrefix(c), name, private})
		}
	}
	// The cloud metadata address first, so that the error names it.
	add("cloud metadata address", false, "169.254.169.254/32", "fd00:ec2::254/128")
	add("unspecified address", false, "0.0.0.0/32", "::/128")
	add("\"this network\" address", false, "0.0.0.0/8")
	add("loopback address", false, "127.0.0.0/8", "::1/128")
	add("link-local address", false, "169.254.0.0/16", "fe80::/10")
	add("private address", true, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("shared address space", true, "100.64.0.0/10")
	add("multicast address", false, "224.0.0.0/4", "ff00::/8")
	add("reserved address", false, "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10", "100::/64", "2001:db8::/32")
	add("documentation address", false, "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
	return rs
}()

// Prefixes that embed an IPv4 address, which is checked in turn.
var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	nat64L  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	teredo  = netip.MustParsePrefix("2001::/32")
	orchid  = netip.MustParsePrefix("2001:10::/28")
	orchid2 = netip.MustParsePrefix("2001:20::/28")
)

// CheckAddr reports whether p permits connecting to ip on any port.
func CheckAddr(ip netip.Addr, p *Policy) error {
	return checkAddrPort(netip.AddrPortFrom(ip, 0), p, false)
}

func checkAddrPort(ap netip.AddrPort, p *Policy, withPort bool) error {
	if p == nil {
		p = &Policy{}
	}
	ip := ap.Addr().WithZone("")
	if !ip.IsValid() {
		return &RefusedError{Addr: ip, Rule: "invalid address"}
	}
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, a := range p.AllowedAddresses {
		if allowedBy(a, ip, ap.Port(), withPort) {
			return nil
		}
	}
	if err := refusedBy(ip, p); err != nil {
		return err
	}
	if ip.Is6() {
		var v4 netip.Addr
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		case teredo.Contains(ip):
			// The client's address is stored inverted.
			v4 = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		case nat64L.Contains(ip), orchid.Contains(ip), orchid2.Contains(ip):
			return &RefusedError{Addr: ip, Rule: "reserved address"}
		}
		if v4.IsValid() {
			if err := refusedBy(v4, p); err != nil {
				return &RefusedError{Addr: ip, Rule: err.(*RefusedError).Rule + " embedded in IPv6"}
			}
		}
	}
	return nil
}

func refusedBy(ip netip.Addr, p *Policy) error {
	for _, r := range rules {
		if r.private && p.AllowPrivate {
			continue
		}
		if r.prefix.Contains(ip) {
			return &RefusedError{Addr: ip, Rule: r.name}
		}
	}
	if ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return &RefusedError{Addr: ip, Rule: "broadcast address"}
	}
	return nil
}

func allowedBy(entry string, ip netip.Addr, port uint16, withPort bool) bool {
	entry = strings.TrimSpace(entry)
	if pfx, err := netip.ParsePrefix(entry); err == nil {
		return pfx.Masked().Contains(ip) || pfx.Contains(ip)
	}
	if ap, err := netip.ParseAddrPort(entry); err == nil {
		return withPort && ap.Addr().Unmap() == ip && ap.Port() == port
	}
	if a, err := netip.ParseAddr(entry); err == nil {
		return a.Unmap() == ip
	}
	return false
}

// NewClient returns an HTTP client that refuses destinations p does not
// permit. It does not use proxies, cookies or HTTP/2-upgrade tricks beyond
// the standard transport's.
func NewClient(p *Policy) *http.Client {
	var pol Policy
	if p != nil {
		pol = *p
	}
	if pol.Timeout == 0 {
		pol.Timeout = 5 * time.Second
	}
	if pol.MaxBytes == 0 {
		pol.MaxBytes = 64 << 10
	}
	if pol.MaxRedirects == 0 {
		pol.MaxRedirects = 3
	}
	hosts := map[string]bool{}
	for _, h := range pol.AllowedHosts {
		hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		trusted := hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
		d := &net.Dialer{
			Timeout: pol.Timeout,
			// Control sees the resolved address of each connection attempt,
			// so the check covers every address DNS returned.
			Control: func(_, address string, _ syscall.RawConn) error {
				if trusted {
					return nil
				}
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("ssrf: unexpected dial address %q: %w", address, err)
				}
				return checkAddrPort(ap, &pol, true)
			},
		}
		return d.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        pol.TLSClientConfig,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           10,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    pol.Timeout,
		ResponseHeaderTimeout:  pol.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: &limitTransport{base: tr, max: pol.MaxBytes},
		Timeout:   pol.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > pol.MaxRedirects {
				return fmt.Errorf("ssrf: stopped after %d redirects", pol.MaxRedirects)
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("ssrf: refused redirect from https to %s", req.URL.Scheme)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("ssrf: refused redirect to scheme %q", req.URL.Scheme)
			}
			return nil
		},
	}
}

// limitTransport bounds response bodies.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || t.max < 0 {
		return resp, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %w (%d bytes, limit %d)", req.URL.Redacted(), ErrTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - int(-b.left), ErrTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
