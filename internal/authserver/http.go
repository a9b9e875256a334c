package authserver

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
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

// remoteIP is the peer address; a reverse proxy in front is expected to
// be the only peer, so forwarded headers are not trusted here.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func slogClient(id string) slog.Attr   { return slog.String(logKeyClient, id) }
func slogString(k, v string) slog.Attr { return slog.String(k, v) }
