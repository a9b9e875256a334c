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

// rules are the refused ranges, most specific first so that an error names
// the narrowest one. They cover every block of the IANA IPv4 and IPv6
// Special-Purpose Address Registries (testdata/ holds both, and the tests
// check every row), multicast, the deprecated IPv4-compatible and site-local
// IPv6 ranges, and cloud metadata addresses. Rows the registries call
// globally reachable are refused too, except 64:ff9b::/96 (see
// checkAddrPort): they are anycast service addresses (PCP, TURN, DNS-SD
// SRP, AMT, AS112), answered by the nearest instance — often a device of
// the caller's own network, such as the home router or a Thread border
// router — or identifiers (ORCHIDv2, DETs) that only a local overlay
// routes. No HTTP resource lives at any of them.
var rules = func() []rule {
	var rs []rule
	add := func(name string, private bool, cidrs ...string) {
		for _, c := range cidrs {
			rs = append(rs, rule{netip.MustParsePrefix(c), name, private})
		}
	}
	// Cloud metadata services first, so that the error names them: AWS,
	// Azure, GCP, Oracle (169.254.169.254), AWS over IPv6, Alibaba (inside
	// the shared address space, which AllowPrivate would otherwise lift).
	add("cloud metadata address", false, "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
	add("unspecified address", false, "0.0.0.0/32", "::/128")
	add("\"this network\" address", false, "0.0.0.0/8")
	add("loopback address", false, "127.0.0.0/8", "::1/128")
	add("link-local address", false, "169.254.0.0/16", "fe80::/10")
	add("private address", true, "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("shared address space", true, "100.64.0.0/10")
	add("multicast address", false, "224.0.0.0/4", "ff00::/8")
	add("broadcast address", false, "255.255.255.255/32")
	add("reserved address", false, "240.0.0.0/4")
	add("anycast service address", false, "192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128")
	add("IETF protocol assignment", false, "192.0.0.0/24")
	add("documentation address", false, "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
	add("benchmarking address", false, "198.18.0.0/15", "2001:2::/48")
	add("AS112 anycast address", false, "192.31.196.0/24", "192.175.48.0/24", "2001:4:112::/48", "2620:4f:8000::/48")
	add("AMT relay anycast address", false, "192.52.193.0/24", "2001:3::/32")
	add("6to4 relay anycast address", false, "192.88.99.0/24")
	// 6to4 and Teredo, whose reachability the registry leaves to the
	// mechanism ("N/A"): both are deprecated (RFC 7526; Teredo is off in
	// today's systems), and a local relay would carry them to whatever IPv4
	// address they embed, which is why they are refused outright rather than
	// judged by that address.
	add("6to4 address", false, "2002::/16")
	add("Teredo address", false, "2001::/32")
	add("overlay identifier (ORCHID, DET), not a routable address", false, "2001:10::/28", "2001:20::/28", "2001:30::/28")
	add("IETF protocol assignment", false, "2001::/23")
	add("local-use NAT64 address", false, "64:ff9b:1::/48")
	add("discard-only address", false, "100::/64")
	add("dummy IPv6 prefix", false, "100:0:0:1::/64")
	add("SRv6 segment identifier", false, "5f00::/16")
	// RFC 4291 §2.5.5.1: deprecated; some stacks still tunnel ::a.b.c.d to
	// a.b.c.d over IPv4.
	add("IPv4-compatible IPv6 address (deprecated)", false, "::/96")
	add("site-local address (deprecated)", false, "fec0::/10")
	return rs
}()

var (
	// 64:ff9b::/96 (RFC 6052) is how an IPv6-only network reaches the IPv4
	// Internet through NAT64, and the registry calls it globally reachable:
	// such an address is judged by the IPv4 address it embeds.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// globalUnicast is the only IPv6 range IANA allocates to networks
	// (the IPv6 Address Space registry); the rest is reserved by the IETF.
	globalUnicast = netip.MustParsePrefix("2000::/3")
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
	if nat64.Contains(ip) {
		b := ip.As16()
		if err := refusedBy(netip.AddrFrom4([4]byte(b[12:16])), p); err != nil {
			return &RefusedError{Addr: ip, Rule: err.(*RefusedError).Rule + " embedded in a NAT64 address"}
		}
		return nil
	}
	return refusedBy(ip, p)
}

// refusedBy applies the first rule that contains ip.
func refusedBy(ip netip.Addr, p *Policy) error {
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			if r.private && p.AllowPrivate {
				return nil
			}
			return &RefusedError{Addr: ip, Rule: r.name}
		}
	}
	if ip.Is6() && !globalUnicast.Contains(ip) {
		return &RefusedError{Addr: ip, Rule: "reserved IPv6 address (outside 2000::/3)"}
	}
	return nil
}

func allowedBy(entry string, ip netip.Addr, port uint16, withPort bool) bool {
	entry = strings.TrimSpace(entry)
	if pfx, err := netip.ParsePrefix(entry); err == nil {
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96) // ::ffff:10.0.0.0/104 is 10.0.0.0/8
		}
		return pfx.Masked().Contains(ip)
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
