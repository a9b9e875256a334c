package ssrf_test

import (
	"encoding/csv"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// registryRow is one block of an IANA Special-Purpose Address Registry.
type registryRow struct {
	prefix netip.Prefix
	name   string
	global string // "Globally Reachable": True, False, N/A or "" (terminated)
}

var footnote = regexp.MustCompile(`\s*\[\d+\]$`)

// readRegistry reads testdata/iana-ipv{4,6}-special-registry-1.csv.
func readRegistry(t testing.TB) []registryRow {
	t.Helper()
	var rows []registryRow
	for _, name := range []string{"iana-ipv4-special-registry-1.csv", "iana-ipv6-special-registry-1.csv"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(f)
		r.Comment = '#'
		recs, err := r.ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) < 2 || recs[0][0] != "Address Block" || recs[0][8] != "Globally Reachable" {
			t.Fatalf("%s: unexpected header %q", name, recs[0])
		}
		for _, rec := range recs[1:] {
			global, _, _ := strings.Cut(rec[8], " ")
			// One cell may hold several blocks ("192.0.0.170/32, 192.0.0.171/32").
			for _, cell := range strings.Split(rec[0], ",") {
				p, err := netip.ParsePrefix(footnote.ReplaceAllString(strings.TrimSpace(cell), ""))
				if err != nil {
					t.Fatalf("%s: row %q: %v", name, rec[0], err)
				}
				rows = append(rows, registryRow{p, rec[1], global})
			}
		}
	}
	if len(rows) < 50 {
		t.Fatalf("only %d registry rows read", len(rows))
	}
	return rows
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// midAddr is the first address of p's upper half (p itself for a single
// address).
func midAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	if i := p.Bits(); i < len(b)*8 {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// probes are the addresses of p a test checks: first, second, middle, last.
func probes(p netip.Prefix) []netip.Addr {
	first := p.Masked().Addr()
	ps := []netip.Addr{first, midAddr(p), lastAddr(p)}
	if p.Bits() < first.BitLen() {
		ps = append(ps, first.Next())
	}
	return ps
}

// spellings are the ways an IPv4 address can be written as an IPv6
// destination: mapped, IPv4-compatible, NAT64 (RFC 6052 /96).
func spellings(a netip.Addr) []netip.Addr {
	if !a.Is4() {
		return []netip.Addr{a}
	}
	v4 := a.As4()
	compat := [16]byte{12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}
	nat64 := [16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}
	return []netip.Addr{a, netip.AddrFrom16(a.As16()), netip.AddrFrom16(compat), netip.AddrFrom16(nat64)}
}

// decision records what Switchboard does with a registry row whose
// registry entry alone does not settle it: every row the registry calls
// globally reachable needs one.
type decision struct {
	// embedsIPv4: the address is judged by the IPv4 address it embeds in its
	// last 32 bits (refused for 0.0.0.0 and 255.255.255.255, allowed for the
	// public 128.0.0.0 of the block's middle). Otherwise the whole block is
	// refused.
	embedsIPv4 bool
	why        string
}

var decisions = map[string]decision{
	"::ffff:0.0.0.0/96": {true, "an IPv4-mapped address is how a dual-stack socket reaches that IPv4 address"},
	"64:ff9b::/96":      {true, "NAT64 (RFC 6052) is how an IPv6-only network reaches the IPv4 Internet"},

	"192.0.0.9/32":      {why: "PCP anycast: answered by the nearest PCP server, usually the caller's own router"},
	"192.0.0.10/32":     {why: "TURN anycast: the operator's TURN server"},
	"2001:1::1/128":     {why: "PCP anycast: answered by the nearest PCP server, usually the caller's own router"},
	"2001:1::2/128":     {why: "TURN anycast: the operator's TURN server"},
	"2001:1::3/128":     {why: "DNS-SD SRP anycast: the local Thread border router"},
	"192.31.196.0/24":   {why: "AS112 DNS sink, anycast, often inside the caller's ISP"},
	"192.175.48.0/24":   {why: "AS112 DNS sink, anycast, often inside the caller's ISP"},
	"2001:4:112::/48":   {why: "AS112 DNS sink, anycast, often inside the caller's ISP"},
	"2620:4f:8000::/48": {why: "AS112 DNS sink, anycast, often inside the caller's ISP"},
	"192.52.193.0/24":   {why: "AMT relay anycast: the nearest relay, no HTTP resource"},
	"2001:3::/32":       {why: "AMT relay anycast: the nearest relay, no HTTP resource"},
	"2001:20::/28":      {why: "ORCHIDv2: a host identifier routed only by a local HIP overlay"},
	"2001:30::/28":      {why: "DRIP entity tags: identifiers, not locators"},
}

// liftable rows are reachable when Policy.AllowPrivate is set.
var liftable = map[string]bool{"10.0.0.0/8": true, "172.16.0.0/12": true, "192.168.0.0/16": true, "100.64.0.0/10": true, "fc00::/7": true}

// TestRegistry checks every row of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries: refused under the default policy, in every spelling,
// unless a decision above says otherwise; reachable when
// mcpSettings.allowedAddresses names it; and its neighbours outside every
// special range still reachable, so that no rule is wider than its block.
func TestRegistry(t *testing.T) {
	rows := readRegistry(t)
	seen := map[string]bool{}
	for _, row := range rows {
		key := row.prefix.String()
		seen[key] = true
		d, decided := decisions[key]
		if row.global == "True" && !decided {
			t.Errorf("%s (%s) is globally reachable by the registry: add a decision", key, row.name)
		}
		t.Run(key, func(t *testing.T) {
			for _, a := range probes(row.prefix) {
				wantAllowed := d.embedsIPv4 && a == midAddr(row.prefix)
				for _, s := range spellings(a) {
					err := ssrf.CheckAddr(s, nil)
					var re *ssrf.RefusedError
					switch {
					case wantAllowed && err != nil:
						t.Errorf("%s (%s): %v, want allowed: %s", s, row.name, err, d.why)
					case !wantAllowed && !errors.As(err, &re):
						t.Errorf("%s (%s): %v, want refused", s, row.name, err)
					case !wantAllowed && re.Rule == "":
						t.Errorf("%s: refusal names no rule", s)
					}
				}
				allow := &ssrf.Policy{AllowedAddresses: []string{key}}
				if err := ssrf.CheckAddr(a, allow); err != nil {
					t.Errorf("%s with allowedAddresses [%s]: %v, want allowed", a, key, err)
				}
				err := ssrf.CheckAddr(a, &ssrf.Policy{AllowPrivate: true})
				if liftable[key] && err != nil {
					t.Errorf("%s with allowPrivate: %v, want allowed", a, err)
				}
				if !liftable[key] && !wantAllowed && err == nil {
					t.Errorf("%s with allowPrivate: allowed, want refused", a)
				}
			}
		})
	}
	for key := range decisions {
		if !seen[key] {
			t.Errorf("decision for %s matches no registry row", key)
		}
	}

	// Neighbours: the address just outside each block is reachable unless
	// it lies in another special range.
	special := func(a netip.Addr) bool {
		for _, r := range rows {
			if r.prefix.Contains(a) && !decisions[r.prefix.String()].embedsIPv4 {
				return true
			}
		}
		for _, p := range notInRegistry {
			if p.Contains(a) {
				return true
			}
		}
		return a.Is6() && !netip.MustParsePrefix("2000::/3").Contains(a)
	}
	for _, row := range rows {
		for _, n := range []netip.Addr{row.prefix.Masked().Addr().Prev(), lastAddr(row.prefix).Next()} {
			if !n.IsValid() || special(n) || netip.MustParsePrefix("64:ff9b::/96").Contains(n) || netip.MustParsePrefix("::ffff:0:0/96").Contains(n) {
				continue
			}
			if err := ssrf.CheckAddr(n, nil); err != nil {
				t.Errorf("%s, next to %s (%s): %v, want allowed", n, row.prefix, row.name, err)
			}
		}
	}
}

// notInRegistry are refused ranges that the special-purpose registries do
// not list.
var notInRegistry = []netip.Prefix{
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast (IPv4 Multicast Address Space registry)
	netip.MustParsePrefix("ff00::/8"),           // multicast (RFC 4291)
	netip.MustParsePrefix("::/96"),              // IPv4-compatible, deprecated (RFC 4291 §2.5.5.1)
	netip.MustParsePrefix("fec0::/10"),          // site-local, deprecated (RFC 3879)
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
}

func TestNotInRegistry(t *testing.T) {
	for _, p := range notInRegistry {
		for _, a := range probes(p) {
			for _, s := range spellings(a) {
				var re *ssrf.RefusedError
				if err := ssrf.CheckAddr(s, nil); !errors.As(err, &re) {
					t.Errorf("%s (in %s): %v, want refused", s, p, err)
				}
			}
			if err := ssrf.CheckAddr(a, &ssrf.Policy{AllowedAddresses: []string{p.String()}}); err != nil {
				t.Errorf("%s with allowedAddresses [%s]: %v", a, p, err)
			}
		}
	}
	// IPv6 outside 2000::/3 is reserved by the IETF (IPv6 Address Space
	// registry) except where a registry row says otherwise.
	for _, s := range []string{"4000::1", "6000::1", "8000::1", "e000::1", "fe00::1", "1::1", "200::1"} {
		if err := ssrf.CheckAddr(netip.MustParseAddr(s), nil); err == nil {
			t.Errorf("%s allowed, want refused", s)
		}
	}
}
