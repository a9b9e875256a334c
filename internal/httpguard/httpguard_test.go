package httpguard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/httpguard"
)

func TestCheck(t *testing.T) {
	p := httpguard.New(&httpguard.Options{AllowedOrigins: []string{"https://claude.ai"}, PublicURL: "https://mcp.example.com"})
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	public := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080}
	for _, tc := range []struct {
		name, method, host string
		local              net.Addr
		headers            map[string]string
		want               error
	}{
		{"plain client", "POST", "127.0.0.1:8080", loopback, nil, nil},
		{"same origin page", "POST", "127.0.0.1:8080", loopback, map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, nil},
		{"loopback tool at another port", "POST", "localhost:8080", loopback, map[string]string{"Origin": "http://localhost:6274", "Sec-Fetch-Site": "cross-site"}, nil},
		{"allowed origin", "GET", "mcp.example.com", loopback, map[string]string{"Origin": "https://claude.ai"}, nil},
		{"public origin behind a proxy", "POST", "mcp.example.com", loopback, map[string]string{"Origin": "https://mcp.example.com"}, nil},
		{"foreign origin POST", "POST", "127.0.0.1:8080", loopback, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, httpguard.ErrOrigin},
		{"foreign origin GET", "GET", "127.0.0.1:8080", loopback, map[string]string{"Origin": "https://evil.example"}, httpguard.ErrOrigin},
		{"null origin", "POST", "127.0.0.1:8080", loopback, map[string]string{"Origin": "null"}, httpguard.ErrOrigin},
		{"cross-site without Origin", "POST", "127.0.0.1:8080", loopback, map[string]string{"Sec-Fetch-Site": "cross-site"}, httpguard.ErrOrigin},
		{"cross-site navigation GET", "GET", "127.0.0.1:8080", loopback, map[string]string{"Sec-Fetch-Site": "cross-site"}, nil},
		{"rebound name", "GET", "evil.example:8080", loopback, nil, httpguard.ErrHost},
		{"rebound name with loopback origin", "GET", "evil.example", loopback, map[string]string{"Origin": "http://evil.example"}, httpguard.ErrHost},
		{"any host on a public listener", "GET", "switchboard.internal", public, nil, nil},
		{"ipv6 loopback host", "GET", "[::1]:8080", loopback, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.WithValue(t.Context(), http.LocalAddrContextKey, tc.local), tc.method, "/api/servers", nil)
			r.Host = tc.host
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if err := p.Check(r); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRequireJSON(t *testing.T) {
	h := httpguard.RequireJSON(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"json", "application/json", `{}`, http.StatusNoContent},
		{"json with charset", "application/json; charset=utf-8", `{}`, http.StatusNoContent},
		{"text/plain", "text/plain", `{"message":"x"}`, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", `a=b`, http.StatusUnsupportedMediaType},
		{"none", "", `{}`, http.StatusUnsupportedMediaType},
		{"no body", "", ``, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/chat", strings.NewReader(tc.body))
			if tc.body == "" {
				r = httptest.NewRequest("POST", "/api/chat", nil)
			}
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d", w.Code, tc.want)
			}
		})
	}
}
