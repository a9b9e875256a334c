package authserver

import (
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// asMetadata is the RFC 8414 authorization server metadata.
func (s *Server) asMetadata() map[string]any {
	return map[string]any{
		"issuer":                                         s.issuer,
		"authorization_endpoint":                         s.issuer + "/authorize",
		"token_endpoint":                                 s.issuer + "/token",
		"registration_endpoint":                          s.issuer + "/register",
		"revocation_endpoint":                            s.issuer + "/revoke",
		"jwks_uri":                                       s.issuer + "/jwks",
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"none", "client_secret_post", "client_secret_basic"},
		"revocation_endpoint_auth_methods_supported":     []string{"none", "client_secret_post", "client_secret_basic"},
		"scopes_supported":                               s.scopes,
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          true,
	}
}

func (s *Server) handleASMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.asMetadata())
}

// handlePRM serves RFC 9728 protected resource metadata. §3.1: the
// well-known path is inserted between the host and the resource's path, so
// /mcp/github's metadata is at /.well-known/oauth-protected-resource/mcp/github.
// The root form describes Issuer+"/mcp", the aggregate endpoint.
//
// Every /mcp/{name} that could be a server's endpoint gets the same answer,
// configured or not: the metadata is public, and a 404 for names that do not
// exist would let anyone list the servers without signing in (Protect's 401
// at /mcp/{name} is the same for every name too). Only paths that cannot be
// an endpoint are 404.
func (s *Server) handlePRM(w http.ResponseWriter, r *http.Request) {
	resource := s.defaultResource()
	if p := r.PathValue("path"); p != "" {
		resource = s.issuer + "/" + strings.TrimSuffix(p, "/")
		if !slices.Contains(s.resources(), resource) && !s.serverResourceShape(resource) {
			http.NotFound(w, r)
			return
		}
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 resource,
		"authorization_servers":    []string{s.issuer},
		"scopes_supported":         s.scopes,
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "Switchboard",
	})
}

// serverResourceShape reports whether resource has the shape of one
// server's endpoint, Issuer+"/mcp/{name}", whether or not such a server
// exists: {name} is one path segment, not a dot-segment, without spaces or
// control characters (the rules config applies to server names).
func (s *Server) serverResourceShape(resource string) bool {
	name, ok := strings.CutPrefix(resource, s.issuer+"/mcp/")
	if !ok || name == "" || name == "." || name == ".." || len(name) > 200 {
		return false
	}
	for _, c := range name {
		if c == '/' || c == '?' || c == '#' || c == '%' || unicode.IsSpace(c) || unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// prmURL is the metadata URL of a resource (RFC 9728 §3.1).
func (s *Server) prmURL(resource string) string {
	return s.issuer + "/.well-known/oauth-protected-resource" + strings.TrimPrefix(resource, s.issuer)
}
