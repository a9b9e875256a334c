package authserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// cimdHost is a TLS server of Client ID Metadata Documents that counts the
// fetches of each path: /bad… answers 404, every other path a valid
// document naming itself.
type cimdHost struct {
	*httptest.Server
	mu      sync.Mutex // guards fetches
	fetches map[string]int
}

func newCIMDHost(t *testing.T) *cimdHost {
	h := &cimdHost{fetches: map[string]int{}}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.fetches[r.URL.Path]++
		h.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/bad") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": "https://" + r.Host + r.URL.Path, "client_name": "CIMD " + r.URL.Path,
			"redirect_uris": []string{testRedirect}, "token_endpoint_auth_method": "none",
		})
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *cimdHost) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fetches[path]
}

// Issue 10, finding 7 (CIMD): a failed document is not fetched again for a
// minute, and each host is fetched at most cimdFetchLimit times a minute.
func TestCIMDFetchLimits(t *testing.T) {
	h1, h2 := newCIMDHost(t), newCIMDHost(t)
	roots := x509.NewCertPool()
	roots.AddCert(h1.Certificate())
	roots.AddCert(h2.Certificate())
	// The test-only allowance: exactly the two hosts' addresses.
	hc := ssrf.NewClient(&ssrf.Policy{
		AllowedAddresses: []string{h1.Listener.Addr().String(), h2.Listener.Addr().String()},
		TLSClientConfig:  &tls.Config{RootCAs: roots},
	})
	e := newEnv(t, func(o *Options) { o.HTTPClient = hc })
	authorize := func(h *cimdHost, path string) (int, string) {
		t.Helper()
		resp, body := newBrowser().get(t, e.authorizeURL(client{id: h.URL + path, redirect: testRedirect}, newPKCE(), nil))
		return resp.StatusCode, body
	}

	t.Run("failures are cached for a minute", func(t *testing.T) {
		for range 3 {
			if status, body := authorize(h1, "/bad.json"); status != http.StatusBadRequest || !strings.Contains(body, "HTTP 404") {
				t.Fatalf("bad document: %d %s", status, body)
			}
		}
		if n := h1.count("/bad.json"); n != 1 {
			t.Fatalf("a failing document was fetched %d times within a minute, want 1", n)
		}
		e.clock.Advance(cimdNegativeTTL + 1)
		authorize(h1, "/bad.json")
		if n := h1.count("/bad.json"); n != 2 {
			t.Fatalf("after the negative cache expired: %d fetches, want 2", n)
		}
	})

	t.Run("fetches per host are limited", func(t *testing.T) {
		e.clock.Advance(cimdFetchWindow) // a fresh window
		for i := range cimdFetchLimit {
			path := "/c" + string(rune('a'+i)) + ".json"
			if status, body := authorize(h1, path); status != http.StatusOK {
				t.Fatalf("document %d: %d %s", i, status, body)
			}
		}
		// A stored document needs no fetch, and still works.
		if status, _ := authorize(h1, "/ca.json"); status != http.StatusOK || h1.count("/ca.json") != 1 {
			t.Fatalf("stored document: %d, %d fetches", status, h1.count("/ca.json"))
		}
		status, body := authorize(h1, "/one-too-many.json")
		if status != http.StatusBadRequest || !strings.Contains(body, "too many documents") || h1.count("/one-too-many.json") != 0 {
			t.Fatalf("fetch over the limit: %d, %d fetches\n%s", status, h1.count("/one-too-many.json"), body)
		}
		// Another host has its own count.
		if status, body := authorize(h2, "/other.json"); status != http.StatusOK {
			t.Fatalf("another host: %d %s", status, body)
		}
		// A refusal for the limit is not a failure of the document: once
		// the window passes, it is fetched.
		e.clock.Advance(cimdFetchWindow)
		if status, body := authorize(h1, "/one-too-many.json"); status != http.StatusOK || h1.count("/one-too-many.json") != 1 {
			t.Fatalf("after the window: %d, %d fetches\n%s", status, h1.count("/one-too-many.json"), body)
		}
	})
}
