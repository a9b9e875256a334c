package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

const (
	maxDocBytes      = 64 << 10
	registrationTTL  = 30 * 24 * time.Hour // unused DCR registrations expire
	cimdCacheTTL     = 24 * time.Hour      // a CIMD document is refetched after this
	cimdNegativeTTL  = time.Minute         // a failed CIMD fetch is not retried before this
	cimdFetchLimit   = 10                  // CIMD fetches per host
	cimdFetchWindow  = time.Minute
	maxClientNameLen = 200
)

// clientMetadata is the RFC 7591 §2 registration request, and the shape of
// a Client ID Metadata Document.
type clientMetadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

// regErr is an RFC 7591 §3.2.2 error.
func regErr(code, d string) *oauthErr { return &oauthErr{http.StatusBadRequest, code, d} }

// validate checks metadata and fills in defaults. cimd documents must be
// public clients (the CIMD draft forbids shared secrets).
func (s *Server) validateMetadata(m *clientMetadata, cimd bool) *oauthErr {
	if len(m.RedirectURIs) == 0 {
		return regErr("invalid_redirect_uri", "redirect_uris is required")
	}
	if len(m.RedirectURIs) > maxRedirectURIs {
		return regErr("invalid_redirect_uri", fmt.Sprintf("at most %d redirect_uris", maxRedirectURIs))
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return regErr("invalid_redirect_uri", err.Error())
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		if cimd {
			m.TokenEndpointAuthMethod = "none"
		} else {
			// RFC 7591 §2 default.
			m.TokenEndpointAuthMethod = "client_secret_basic"
		}
	case "none":
	case "client_secret_post", "client_secret_basic":
		if cimd {
			return regErr("invalid_client_metadata", "a client ID metadata document client cannot use a client secret")
		}
	default:
		return regErr("invalid_client_metadata", "unsupported token_endpoint_auth_method")
	}
	if len(m.GrantTypes) == 0 {
		// Refresh tokens are what MCP clients want; asking for them is the norm.
		m.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return regErr("invalid_client_metadata", "unsupported grant type "+g)
		}
	}
	if !slices.Contains(m.GrantTypes, "authorization_code") {
		return regErr("invalid_client_metadata", "grant_types must include authorization_code")
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if len(m.ResponseTypes) != 1 || m.ResponseTypes[0] != "code" {
		return regErr("invalid_client_metadata", "response_types must be [\"code\"]")
	}
	if m.Scope != "" && !scopesSubset(strings.Fields(m.Scope), s.scopes) {
		return regErr("invalid_client_metadata", "unsupported scope")
	}
	switch m.ApplicationType {
	case "":
		m.ApplicationType = "web"
		for _, u := range m.RedirectURIs {
			if pu, _ := url.Parse(u); pu == nil || pu.Scheme != "https" || isLoopbackHost(pu.Hostname()) {
				m.ApplicationType = "native"
			}
		}
	case "web", "native":
	default:
		return regErr("invalid_client_metadata", "application_type must be web or native")
	}
	if len([]rune(m.ClientName)) > maxClientNameLen {
		return regErr("invalid_client_metadata", "client_name is too long")
	}
	return nil
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	if ok, retry := s.allowRegistration(r.Context(), s.clientIP(r)); !ok {
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
		writeOAuthError(w, &oauthErr{http.StatusTooManyRequests, "slow_down", "too many registrations; try again later"}, false)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeOAuthError(w, regErr("invalid_client_metadata", "the body must be application/json"), false)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDocBytes))
	if err != nil {
		writeOAuthError(w, &oauthErr{http.StatusRequestEntityTooLarge, "invalid_client_metadata", "registration request too large"}, false)
		return
	}
	var m clientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		writeOAuthError(w, regErr("invalid_client_metadata", "the body is not valid JSON client metadata"), false)
		return
	}
	m.ClientID = ""
	if e := s.validateMetadata(&m, false); e != nil {
		writeOAuthError(w, e, false)
		return
	}
	c := &store.Client{
		ID:                      "sbc_" + randomToken()[:26],
		Name:                    m.ClientName,
		RedirectURIs:            m.RedirectURIs,
		GrantTypes:              m.GrantTypes,
		ResponseTypes:           m.ResponseTypes,
		Scope:                   m.Scope,
		TokenEndpointAuthMethod: m.TokenEndpointAuthMethod,
		ApplicationType:         m.ApplicationType,
		Metadata:                body,
		CreatedAt:               now,
		ExpiresAt:               now.Add(registrationTTL),
	}
	if c.TokenEndpointAuthMethod != "none" {
		c.Secret = randomToken()
	}
	if err := s.st.CreateClient(r.Context(), c); err != nil {
		s.log.Error("registering client", errAttr(err))
		writeOAuthError(w, &oauthErr{http.StatusInternalServerError, "server_error", "registration failed"}, false)
		return
	}
	s.log.Info("registered client", slogClient(c.ID), slogString("client_name", c.Name))
	resp := map[string]any{
		"client_id":                  c.ID,
		"client_id_issued_at":        now.Unix(),
		"redirect_uris":              c.RedirectURIs,
		"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"grant_types":                c.GrantTypes,
		"response_types":             c.ResponseTypes,
		"application_type":           c.ApplicationType,
	}
	if c.Name != "" {
		resp["client_name"] = c.Name
	}
	if c.Scope != "" {
		resp["scope"] = c.Scope
	}
	if c.Secret != "" {
		resp["client_secret"] = c.Secret
		resp["client_secret_expires_at"] = 0
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

var errUnknownClient = errors.New("unknown client")

// isCIMDClientID reports whether id is a Client ID Metadata Document URL:
// https with a path and no fragment.
func isCIMDClientID(id string) bool {
	u, err := url.Parse(id)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Path != "" && u.Path != "/" &&
		u.Fragment == "" && u.User == nil && !strings.Contains(id, "#")
}

// client finds a client by id: registered, or known by its metadata
// document, which is fetched when not cached or stale.
func (s *Server) client(ctx context.Context, id string) (*store.Client, error) {
	if id == "" || len(id) > 2000 {
		return nil, errUnknownClient
	}
	c, err := s.st.ClientByID(ctx, id)
	now := s.now()
	switch {
	case err == nil && (c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt)):
		return c, nil
	case err == nil && !c.CIMD:
		// Registrations expire only when never used (DeleteExpiredClients
		// removes exactly those).
		if !c.LastUsedAt.IsZero() {
			return c, nil
		}
		return nil, errUnknownClient
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if !isCIMDClientID(id) {
		return nil, errUnknownClient
	}
	c, err = s.fetchCIMDLimited(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.st.CreateClient(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// cimdError is why a Client ID Metadata Document was refused; it is shown
// to the user on the error page, so it carries no internal detail.
type cimdError struct{ msg string }

func (e *cimdError) Error() string { return "client metadata document: " + e.msg }

// fetchCIMDLimited fetches a metadata document unless its URL failed
// lately or its host was asked too often. Any client_id given to /authorize
// or /token makes Switchboard fetch a URL, so without these an anonymous
// caller could have it hammer a host, or itself, with fetches: a failure is
// remembered for cimdNegativeTTL (per replica) and answered from memory,
// and each host gets at most cimdFetchLimit fetches per cimdFetchWindow
// (shared by the replicas through the limiter). Documents that were fetched
// are kept in the store (cimdCacheTTL) and need no fetch.
func (s *Server) fetchCIMDLimited(ctx context.Context, id string) (*store.Client, error) {
	now := s.now()
	if v, ok := s.cimdFailures.get(id, now); ok {
		return nil, v.(*cimdError)
	}
	u, _ := url.Parse(id) // isCIMDClientID parsed it
	lctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	ok, _, err := s.limiter.Allow(lctx, "cimd:"+strings.ToLower(u.Host), cimdFetchLimit, cimdFetchWindow)
	cancel()
	if err != nil {
		s.failOpen("cimd", err)
	} else if !ok {
		s.log.Warn("client metadata document fetches from this host are rate limited", slogClient(id))
		return nil, &cimdError{"too many documents fetched from its host lately; try again in a minute"}
	}
	c, err := s.fetchCIMD(ctx, id)
	var ce *cimdError
	if errors.As(err, &ce) {
		s.cimdFailures.put(id, ce, now)
	}
	return c, err
}

func (s *Server) fetchCIMD(ctx context.Context, id string) (*store.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, &cimdError{"invalid URL"}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		s.log.Warn("fetching client metadata document", slogClient(id), errAttr(err))
		return nil, &cimdError{"could not be fetched"}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &cimdError{fmt.Sprintf("fetch answered HTTP %d", resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil || len(body) > maxDocBytes {
		return nil, &cimdError{"too large or unreadable"}
	}
	var m clientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &cimdError{"not valid JSON"}
	}
	// The document must name itself (CIMD draft §4.1), so that one URL
	// cannot claim another client's identity.
	if subtle.ConstantTimeCompare([]byte(m.ClientID), []byte(id)) != 1 {
		return nil, &cimdError{"client_id does not equal the document URL"}
	}
	if e := s.validateMetadata(&m, true); e != nil {
		return nil, &cimdError{e.description}
	}
	now := s.now()
	name := m.ClientName
	if name == "" {
		name = id
	}
	return &store.Client{
		ID: id, Name: name, RedirectURIs: m.RedirectURIs, GrantTypes: m.GrantTypes, ResponseTypes: m.ResponseTypes,
		Scope: m.Scope, TokenEndpointAuthMethod: "none", ApplicationType: m.ApplicationType, Metadata: body,
		CIMD: true, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(cimdCacheTTL),
	}, nil
}

// authenticateClient authenticates the client at the token and revocation
// endpoints (RFC 6749 §2.3, OAuth 2.1 §2.4): HTTP Basic, client_secret in
// the body, or client_id alone for public clients. basic reports whether
// Basic was tried, for the 401 challenge.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request) (c *store.Client, basic bool, e *oauthErr) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-urlencoded inside Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, true, errInvalidClient("malformed client credentials")
		}
		if r.PostForm.Has("client_secret") {
			return nil, true, errInvalidRequest("use one client authentication method")
		}
		if fid := r.PostForm.Get("client_id"); fid != "" && fid != id {
			return nil, true, errInvalidRequest("client_id does not match the authenticated client")
		}
	} else {
		id = r.PostForm.Get("client_id")
		secret = r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, basic, errInvalidClient("client authentication failed")
	}
	c, err := s.client(ctx, id)
	if err != nil {
		var ce *cimdError
		if !errors.Is(err, errUnknownClient) && !errors.As(err, &ce) {
			s.log.Error("looking up client", slogClient(id), errAttr(err))
			return nil, basic, &oauthErr{http.StatusInternalServerError, "server_error", "client lookup failed"}
		}
		return nil, basic, errInvalidClient("client authentication failed")
	}
	switch c.TokenEndpointAuthMethod {
	case "none":
		if secret != "" {
			return nil, basic, errInvalidClient("client authentication failed")
		}
	default:
		// Either secret method is accepted for a confidential client;
		// what matters is that the secret is right.
		if c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
			return nil, basic, errInvalidClient("client authentication failed")
		}
	}
	return c, basic, nil
}
