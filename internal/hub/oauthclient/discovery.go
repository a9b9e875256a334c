package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ResourceMetadata is OAuth 2.0 protected resource metadata (RFC 9728 §2).
type ResourceMetadata struct {
	Resource                      string   `json:"resource"`
	AuthorizationServers          []string `json:"authorization_servers,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	DPoPBoundAccessTokensRequired bool     `json:"dpop_bound_access_tokens_required,omitempty"`
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// ServerMetadata is OAuth 2.0 authorization server metadata (RFC 8414 §2,
// OpenID Connect Discovery) as far as the client uses it.
type ServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint,omitempty"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                     string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	ClientIDMetadataDocumentSupported      bool     `json:"client_id_metadata_document_supported,omitempty"`
	DPoPSigningAlgValuesSupported          []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// discovery is what the client learned about a server's authorization.
type discovery struct {
	prm      *ResourceMetadata // nil: the server publishes none (2025-03-26 fallback)
	resource string            // RFC 8707 resource to request tokens for
	as       *ServerMetadata
	legacy   bool // endpoints guessed (2025-03-26 fallback), issuer unverified
	static   bool // endpoints configured (Options.TokenURL), no metadata, no issuer
}

// discover finds the protected resource metadata and the authorization
// server metadata (MCP 2025-11-25 §Authorization Server Discovery).
func (c *Client) discover(ctx context.Context, chs []challenge) (*discovery, error) {
	if c.opts.TokenURL != "" {
		return c.staticDiscovery(), nil
	}
	prm, err := c.resourceMetadata(ctx, challengeParam(chs, "resource_metadata"))
	if err != nil {
		return nil, err
	}
	d := &discovery{prm: prm}
	var issuer string
	if prm != nil {
		if len(prm.AuthorizationServers) == 0 {
			return nil, errors.New("protected resource metadata lists no authorization servers")
		}
		issuer = prm.AuthorizationServers[0]
		d.resource = prm.Resource
	} else {
		// MCP 2025-03-26: the authorization server is the MCP server's
		// origin and the resource is the server URL.
		issuer = c.server.Scheme + "://" + c.server.Host
		d.resource = c.server.String()
	}
	if err := checkURL(issuer); err != nil {
		return nil, fmt.Errorf("authorization server: %w", err)
	}
	as, err := c.serverMetadata(ctx, issuer)
	if err != nil {
		return nil, err
	}
	if as == nil {
		if prm != nil {
			return nil, fmt.Errorf("no authorization server metadata for %s", issuer)
		}
		// MCP 2025-03-26 §Fallbacks for servers without metadata discovery.
		as = &ServerMetadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/authorize",
			TokenEndpoint: issuer + "/token", RegistrationEndpoint: issuer + "/register",
			CodeChallengeMethodsSupported: []string{"S256"}}
		d.legacy = true
	}
	d.as = as
	return d, nil
}

// staticDiscovery describes the configured endpoints (Options.TokenURL).
func (c *Client) staticDiscovery() *discovery {
	return &discovery{
		resource: c.server.String(),
		static:   true,
		as: &ServerMetadata{
			AuthorizationEndpoint:         c.opts.AuthorizationURL,
			TokenEndpoint:                 c.opts.TokenURL,
			RevocationEndpoint:            c.opts.RevocationURL,
			CodeChallengeMethodsSupported: []string{"S256"},
		},
	}
}

// audience is what client assertions and token exchanges name as the
// authorization server: its issuer or, for configured endpoints whose
// issuer is unknown, the token endpoint (RFC 7523 §3 allows either).
func (d *discovery) audience() string {
	if d.as.Issuer == "" {
		return d.as.TokenEndpoint
	}
	return d.as.Issuer
}

// resourceMetadata fetches protected resource metadata from the URL a
// challenge named, then the path-inserted and root well-known URLs
// (RFC 9728 §3.1). It returns nil if none is published.
func (c *Client) resourceMetadata(ctx context.Context, fromChallenge string) (*ResourceMetadata, error) {
	type candidate struct{ url, resource string }
	var cands []candidate
	server := c.server.String()
	if fromChallenge != "" {
		if err := checkURL(fromChallenge); err != nil {
			return nil, fmt.Errorf("resource_metadata: %w", err)
		}
		cands = append(cands, candidate{fromChallenge, server})
	}
	origin := c.server.Scheme + "://" + c.server.Host
	if p := strings.TrimSuffix(c.server.EscapedPath(), "/"); p != "" {
		cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource" + p, server})
	}
	cands = append(cands, candidate{origin + "/.well-known/oauth-protected-resource", origin})
	var lastErr error
	for _, cd := range cands {
		var m ResourceMetadata
		found, err := c.getJSON(ctx, cd.url, &m)
		if err != nil {
			lastErr = err
			c.log.Debug("protected resource metadata", slog.String("url", cd.url), slog.String("error", err.Error()))
			continue
		}
		if !found {
			continue
		}
		// RFC 9728 §3.3: the metadata must be about the resource we asked for.
		if !resourceMatches(m.Resource, server) {
			return nil, fmt.Errorf("%w: %q at %s, want %q", ErrResourceMismatch, m.Resource, cd.url, server)
		}
		for _, as := range m.AuthorizationServers {
			if err := checkURL(as); err != nil {
				return nil, fmt.Errorf("authorization server %q: %w", as, err)
			}
		}
		return &m, nil
	}
	if lastErr != nil && fromChallenge != "" {
		c.log.Debug("no protected resource metadata", slog.String("error", lastErr.Error()))
	}
	return nil, nil
}

// resourceMatches reports whether the resource a server's metadata names
// covers the server URL: same origin, and the resource's path is the
// server's path or a parent of it (metadata published at the root describes
// the origin).
func resourceMatches(resource, server string) bool {
	r, err := url.Parse(resource)
	if err != nil || r.Fragment != "" {
		return false
	}
	s, err := url.Parse(server)
	if err != nil {
		return false
	}
	if !strings.EqualFold(r.Scheme, s.Scheme) || !strings.EqualFold(r.Host, s.Host) {
		return false
	}
	rp := strings.TrimSuffix(r.EscapedPath(), "/")
	sp := strings.TrimSuffix(s.EscapedPath(), "/")
	return rp == sp || strings.HasPrefix(sp, rp+"/")
}

// metadataURLs lists where an issuer's metadata may live, in the order the
// MCP specification prescribes: for an issuer with a path, RFC 8414
// path-inserted, OIDC path-inserted, OIDC path-appended; without a path,
// RFC 8414 then OIDC at the root.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}, nil
}

// serverMetadata fetches an issuer's metadata; nil if none is published.
func (c *Client) serverMetadata(ctx context.Context, issuer string) (*ServerMetadata, error) {
	urls, err := metadataURLs(issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer %q: %w", issuer, err)
	}
	var firstErr error
	for _, u := range urls {
		var m ServerMetadata
		found, err := c.getJSON(ctx, u, &m)
		if err != nil {
			c.log.Debug("authorization server metadata", slog.String("url", u), slog.String("error", err.Error()))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !found {
			continue
		}
		// RFC 8414 §3.3: the issuer must be the one the URL was built from,
		// or the metadata may send us to an attacker's endpoints.
		if strings.TrimSuffix(m.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
			return nil, fmt.Errorf("%w: metadata at %s names issuer %q, want %q", ErrIssuerMismatch, u, m.Issuer, issuer)
		}
		for _, e := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.RegistrationEndpoint, m.RevocationEndpoint} {
			if e == "" {
				continue
			}
			if err := checkURL(e); err != nil {
				return nil, fmt.Errorf("metadata of %s: endpoint %q: %w", issuer, e, err)
			}
		}
		if m.TokenEndpoint == "" {
			return nil, fmt.Errorf("metadata of %s has no token_endpoint", issuer)
		}
		return &m, nil
	}
	if firstErr != nil {
		// Unreachable or refused (e.g. by the SSRF guard): say why, rather
		// than fall back to guessed endpoints.
		return nil, fmt.Errorf("authorization server metadata of %s: %w", issuer, firstErr)
	}
	return nil, nil
}

// maxMetadata bounds a metadata document.
const maxMetadata = 256 << 10

// getJSON fetches a JSON document. found is false on 404 and other 4xx
// answers, which mean "not published here".
func (c *Client) getJSON(ctx context.Context, u string, v any) (found bool, err error) {
	if err := checkURL(u); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return false, fmt.Errorf("GET %s: content type %q is not JSON", u, mt)
		}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMetadata)).Decode(v); err != nil {
		return false, fmt.Errorf("GET %s: %w", u, err)
	}
	return true, nil
}

// checkURL accepts absolute http(s) URLs without credentials or fragments.
// The address it names is checked when the connection is made (ssrf).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsafeURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q in %q", ErrUnsafeURL, u.Scheme, redact(u))
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: %q", ErrUnsafeURL, redact(u))
	}
	return nil
}

func redact(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery = ""
	return v.String()
}

func supportsS256(m *ServerMetadata) bool {
	return slices.Contains(m.CodeChallengeMethodsSupported, "S256")
}
