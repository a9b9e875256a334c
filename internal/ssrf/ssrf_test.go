package ssrf_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr   string
		policy *ssrf.Policy
		rule   string // empty: allowed
	}{
		{"8.8.8.8", nil, ""},
		{"2606:4700::1111", nil, ""},
		{"127.0.0.1", nil, "loopback address"},
		{"127.1.2.3", nil, "loopback address"},
		{"::1", nil, "loopback address"},
		{"::ffff:127.0.0.1", nil, "loopback address"},
		{"::ffff:10.0.0.1", nil, "private address"},
		{"0.0.0.0", nil, "unspecified address"},
		{"::", nil, "unspecified address"},
		{"169.254.169.254", nil, "cloud metadata address"},
		{"169.254.1.1", nil, "link-local address"},
		{"fe80::1", nil, "link-local address"},
		{"10.1.2.3", nil, "private address"},
		{"172.16.0.1", nil, "private address"},
		{"192.168.1.1", nil, "private address"},
		{"fd12::1", nil, "private address"},
		{"100.64.0.1", nil, "shared address space"},
		{"224.0.0.1", nil, "multicast address"},
		{"ff02::1", nil, "multicast address"},
		{"255.255.255.255", nil, "broadcast address"},
		{"240.1.2.3", nil, "reserved address"},
		{"64:ff9b::7f00:1", nil, "loopback address embedded in a NAT64 address"},
		{"64:ff9b::a00:1", &ssrf.Policy{AllowPrivate: true}, ""},
		{"64:ff9b::808:808", nil, ""},
		{"64:ff9b:1::808:808", nil, "local-use NAT64 address"},
		{"2002:7f00:1::", nil, "6to4 address"},
		{"2002:808:808::1", nil, "6to4 address"},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", nil, "Teredo address"},
		{"::7f00:1", nil, "IPv4-compatible IPv6 address (deprecated)"},
		{"::808:808", nil, "IPv4-compatible IPv6 address (deprecated)"},
		{"::7f00:1", &ssrf.Policy{AllowedAddresses: []string{"::/96"}}, ""},
		{"100.100.100.200", &ssrf.Policy{AllowPrivate: true}, "cloud metadata address"},
		{"fd00:ec2::254", &ssrf.Policy{AllowPrivate: true}, "cloud metadata address"},
		{"4000::1", nil, "reserved IPv6 address (outside 2000::/3)"},
		{"2001:4860:4860::8888", nil, ""},
		{"2001:200::1", nil, ""},
		{"10.1.2.3", &ssrf.Policy{AllowPrivate: true}, ""},
		{"127.0.0.1", &ssrf.Policy{AllowPrivate: true}, "loopback address"},
		{"127.0.0.1", &ssrf.Policy{AllowedAddresses: []string{"127.0.0.0/8"}}, ""},
		{"::ffff:127.0.0.1", &ssrf.Policy{AllowedAddresses: []string{"127.0.0.1/32"}}, ""},
		{"169.254.169.254", &ssrf.Policy{AllowedAddresses: []string{"10.0.0.0/8"}}, "cloud metadata address"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := ssrf.CheckAddr(netip.MustParseAddr(tt.addr), tt.policy)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			var re *ssrf.RefusedError
			if !errors.As(err, &re) || re.Rule != tt.rule {
				t.Fatalf("CheckAddr(%s) = %v, want rule %q", tt.addr, err, tt.rule)
			}
			if !strings.Contains(err.Error(), "not in mcpSettings.allowedAddresses") {
				t.Errorf("error %q does not name the setting", err)
			}
		})
	}
}

func TestClientRefusesLoopbackAtDialTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secret")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	for _, u := range []string{
		srv.URL,
		"http://localhost:" + port,
		"http://2130706433:" + port, // 127.0.0.1 as a decimal integer
		"http://0x7f000001:" + port,
		"http://[::ffff:127.0.0.1]:" + port,
	} {
		t.Run(u, func(t *testing.T) {
			resp, err := ssrf.NewClient(nil).Get(u)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded", u)
			}
			var re *ssrf.RefusedError
			// Names that do not resolve fail at DNS; those that do are refused.
			if !errors.As(err, &re) && !isDNSError(err) {
				t.Fatalf("GET %s: %v, want a RefusedError", u, err)
			}
		})
	}
}

func isDNSError(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}

func TestClientRedirectToPrivateRefused(t *testing.T) {
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "metadata")
	}))
	defer inner.Close()
	// The outer server is allowed by its exact address and port; the
	// redirect target, on another port, is not.
	outer := httptest.NewServer(http.RedirectHandler(inner.URL, http.StatusFound))
	defer outer.Close()
	c := ssrf.NewClient(&ssrf.Policy{AllowedAddresses: []string{outer.Listener.Addr().String()}})
	resp, err := c.Get(outer.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("redirect to a loopback address was followed")
	}
	var re *ssrf.RefusedError
	if !errors.As(err, &re) || re.Rule != "loopback address" {
		t.Fatalf("err = %v, want loopback refusal", err)
	}
}

func TestClientLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 100)))
		case "/chunked":
			for range 10 {
				w.Write([]byte(strings.Repeat("y", 20)))
				w.(http.Flusher).Flush()
			}
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	c := ssrf.NewClient(&ssrf.Policy{AllowedAddresses: []string{"127.0.0.1/32"}, MaxBytes: 50})

	resp, err := c.Get(srv.URL + "/small")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("small: %q, %v", b, err)
	}

	if resp, err := c.Get(srv.URL + "/big"); !errors.Is(err, ssrf.ErrTooLarge) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("big: err = %v, want ErrTooLarge", err)
	}
	resp, err = c.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ssrf.ErrTooLarge) || len(b) > 50 {
		t.Fatalf("chunked: %d bytes, err = %v, want ErrTooLarge after at most 50", len(b), err)
	}
	if resp, err := c.Get(srv.URL + "/loop"); err == nil || !strings.Contains(err.Error(), "redirects") {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("loop: err = %v", err)
	}
}

func TestClientAllowedHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := ssrf.NewClient(&ssrf.Policy{AllowedHosts: []string{"LOCALHOST"}})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://localhost:"+port, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// FuzzCheckAddr checks that every address CheckAddr allows under the
// default policy is a global unicast address by the standard library's own
// classification and in no block of the IANA special-purpose registries
// (NAT64 aside, which is judged by the IPv4 address it embeds), whichever
// way it is spelled.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:7f00:1", "169.254.169.254", "8.8.8.8", "64:ff9b::a00:1", "fe80::1%eth0", "2002:a00:1::", "::7f00:1", "5f00::1", "2001:1::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	rows := readRegistry(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := ssrf.CheckAddr(ip, nil)
		u := ip.Unmap()
		if err == nil {
			if !u.IsGlobalUnicast() || u.IsPrivate() || u.IsLoopback() || u.IsLinkLocalUnicast() || u.IsMulticast() || u.IsUnspecified() {
				t.Fatalf("CheckAddr allowed %s", ip)
			}
			for _, r := range rows {
				if r.prefix.Contains(u) && !decisions[r.prefix.String()].embedsIPv4 {
					t.Fatalf("CheckAddr allowed %s in %s (%s)", ip, r.prefix, r.name)
				}
			}
			if b := u.As16(); u.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(u) {
				if err := ssrf.CheckAddr(netip.AddrFrom4([4]byte(b[12:16])), nil); err != nil {
					t.Fatalf("CheckAddr allowed %s, which embeds a refused address: %v", ip, err)
				}
			}
		}
		// Mapped and unmapped spellings agree.
		if err2 := ssrf.CheckAddr(u, nil); (err == nil) != (err2 == nil) {
			t.Fatalf("CheckAddr(%s) = %v but CheckAddr(%s) = %v", ip, err, u, err2)
		}
		if u.Is4() {
			if err3 := ssrf.CheckAddr(netip.AddrFrom16(u.As16()), nil); (err == nil) != (err3 == nil) {
				t.Fatalf("mapped form of %s disagrees: %v vs %v", u, err, err3)
			}
		}
	})
}
