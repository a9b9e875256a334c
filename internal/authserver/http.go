package authserver

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
)

func errAttr(err error) slog.Attr { return slog.String(logKeyErr, err.Error()) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// oauthErr is an error answer of the token, revocation and registration
// endpoints (RFC 6749 §5.2, RFC 7591 §3.2.2).
type oauthErr struct {
	status      int
	code        string
	description string
}

func (e *oauthErr) Error() string { return e.code + ": " + e.description }

func errInvalidRequest(d string) *oauthErr {
	return &oauthErr{http.StatusBadRequest, "invalid_request", d}
}
func errInvalidGrant(d string) *oauthErr { return &oauthErr{http.StatusBadRequest, "invalid_grant", d} }
func errInvalidClient(d string) *oauthErr {
	return &oauthErr{http.StatusUnauthorized, "invalid_client", d}
}

// writeOAuthError is the one place token-endpoint errors become responses.
// basic is whether the client tried HTTP Basic authentication: RFC 6749
// §5.2 then asks for a matching WWW-Authenticate challenge on 401.
func writeOAuthError(w http.ResponseWriter, e *oauthErr, basic bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if e.status == http.StatusUnauthorized {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="switchboard", charset="UTF-8"`)
		}
	}
	body := map[string]string{"error": e.code}
	if e.description != "" {
		body["error_description"] = e.description
	}
	writeJSON(w, e.status, body)
}

// clientIP is the address of the client that sent r. It is the peer's,
// unless the peer is a trusted proxy (Options.TrustedProxies): then
// X-Forwarded-For is read from the right, where each trusted proxy appended
// the address it was connected from, skipping the trusted hops; the first
// address that is not a trusted proxy is the client. Everything left of it
// was written by the client or by proxies not trusted, and is ignored. When
// every hop is trusted, the leftmost one is the client; an entry that is not
// an address ends the walk at the hop that passed it on.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(h, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip := peerAddr(hops[i])
		if !ip.IsValid() {
			break
		}
		client = ip
		if !s.trusted(ip) {
			break
		}
	}
	return client
}

func (s *Server) trusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range s.trustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// peerAddr parses "ip", "ip:port" or "[ipv6]:port"; IPv4-mapped IPv6
// addresses become IPv4. The zero Addr when it is none of these.
func peerAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func slogClient(id string) slog.Attr   { return slog.String(logKeyClient, id) }
func slogString(k, v string) slog.Attr { return slog.String(k, v) }
