package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClientMetadataDocument(t *testing.T) {
	const base = "https://mcp.example.com"
	rec := httptest.NewRecorder()
	clientMetadata(base).ServeHTTP(rec, httptest.NewRequest("GET", clientMetadataPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// The document's client_id is its own URL, which the hub presents as
	// client_id to upstream authorization servers.
	if got, want := doc["client_id"], base+clientMetadataPath; got != want || clientMetadataURL(base) != want {
		t.Errorf("client_id = %v, URL %q; want %q", got, clientMetadataURL(base), want)
	}
	if diff := cmp.Diff([]any{base + oauthCallbackPath}, doc["redirect_uris"]); diff != "" {
		t.Errorf("redirect_uris (-want +got):\n%s", diff)
	}
	if doc["token_endpoint_auth_method"] != "none" {
		t.Errorf("token_endpoint_auth_method = %v", doc["token_endpoint_auth_method"])
	}

	// Plain http has no document: CIMD client ids must be https URLs.
	rec = httptest.NewRecorder()
	clientMetadata("http://127.0.0.1:8080").ServeHTTP(rec, httptest.NewRequest("GET", clientMetadataPath, nil))
	if rec.Code != http.StatusNotFound || clientMetadataURL("http://127.0.0.1:8080") != "" {
		t.Errorf("http base: status %d, URL %q; want 404 and none", rec.Code, clientMetadataURL("http://127.0.0.1:8080"))
	}
}
