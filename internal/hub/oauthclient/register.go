package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Registration is a client_id obtained by dynamic client registration
// (RFC 7591) at one authorization server.
type Registration struct {
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	AuthMethod   string    `json:"token_endpoint_auth_method,omitempty"`
	RedirectURI  string    `json:"redirect_uri,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"` // zero: never
}

// Registrations keeps dynamic registrations by issuer, so that a client
// registers once per authorization server and registers again when a server
// moves to another one.
type Registrations interface {
	// Registration returns the registration for issuer, or nil.
	Registration(ctx context.Context, issuer string) (*Registration, error)
	// SaveRegistration stores r for issuer.
	SaveRegistration(ctx context.Context, issuer string, r *Registration) error
}

// MemoryRegistrations keeps registrations in memory.
type MemoryRegistrations struct {
	mu sync.Mutex // guards m
	m  map[string]*Registration
}

var _ Registrations = (*MemoryRegistrations)(nil)

// NewMemoryRegistrations returns an empty in-memory registration cache.
func NewMemoryRegistrations() *MemoryRegistrations {
	return &MemoryRegistrations{m: map[string]*Registration{}}
}

func (r *MemoryRegistrations) Registration(_ context.Context, issuer string) (*Registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[issuer], nil
}

func (r *MemoryRegistrations) SaveRegistration(_ context.Context, issuer string, reg *Registration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[issuer] = reg
	return nil
}

// TokenStore keeps a Client's token.
type TokenStore interface {
	// LoadToken returns the stored token, or nil.
	LoadToken(ctx context.Context) (*Token, error)
	// SaveToken stores t; nil deletes.
	SaveToken(ctx context.Context, t *Token) error
}

type memoryTokens struct {
	mu sync.Mutex // guards t
	t  *Token
}

func (m *memoryTokens) LoadToken(context.Context) (*Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t, nil
}

func (m *memoryTokens) SaveToken(_ context.Context, t *Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = t
	return nil
}

// identity is the client as presented to one authorization server.
type identity struct {
	clientID   string
	secret     string
	authMethod string
	key        *ClientIdentity // for private_key_jwt; nil otherwise
}

// identityFor resolves the client identity for an authorization server, in
// the MCP order: pre-registered, Client ID Metadata Document, dynamic
// registration.
func (c *Client) identityFor(ctx context.Context, d *discovery) (*identity, error) {
	as := d.as
	if ci := c.opts.Client; ci != nil && ci.ClientID != "" && (ci.Issuer == "" || sameIssuer(ci.Issuer, as.Issuer)) {
		id := &identity{clientID: ci.ClientID, secret: ci.ClientSecret, authMethod: ci.AuthMethod}
		if ci.PrivateKey != nil {
			id.key = ci
		}
		if id.authMethod == "" {
			id.authMethod = chooseAuthMethod(as.TokenEndpointAuthMethodsSupported, id.secret != "", id.key != nil)
		}
		return id, nil
	}
	if c.opts.Grant != GrantAuthorizationCode {
		// Machine grants use a configured client or, for JWT bearer, no
		// client authentication at all.
		if c.opts.Grant == GrantJWTBearer {
			return &identity{authMethod: AuthNone}, nil
		}
		return nil, ErrNoRegistration
	}
	// SEP-991: a URL client_id where the server fetches our metadata itself.
	if c.opts.ClientMetadataURL != "" && as.ClientIDMetadataDocumentSupported {
		return &identity{clientID: c.opts.ClientMetadataURL, authMethod: AuthNone}, nil
	}
	reg, err := c.regs.Registration(ctx, as.Issuer)
	if err != nil {
		return nil, fmt.Errorf("load registration: %w", err)
	}
	if reg != nil && (reg.ExpiresAt.IsZero() || c.now().Before(reg.ExpiresAt)) && (reg.RedirectURI == "" || reg.RedirectURI == c.opts.RedirectURL) {
		return &identity{clientID: reg.ClientID, secret: reg.ClientSecret, authMethod: reg.AuthMethod}, nil
	}
	if as.RegistrationEndpoint == "" {
		return nil, fmt.Errorf("%w at %s (no pre-registered client, no client metadata document, no registration endpoint)", ErrNoRegistration, as.Issuer)
	}
	reg, err = c.register(ctx, as)
	if err != nil {
		return nil, err
	}
	if err := c.regs.SaveRegistration(ctx, as.Issuer, reg); err != nil {
		return nil, fmt.Errorf("save registration: %w", err)
	}
	return &identity{clientID: reg.ClientID, secret: reg.ClientSecret, authMethod: reg.AuthMethod}, nil
}

func sameIssuer(a, b string) bool { return trimSlash(a) == trimSlash(b) }

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// chooseAuthMethod picks a token endpoint authentication method the server
// supports. RFC 8414 §2: an absent list means client_secret_basic.
func chooseAuthMethod(supported []string, hasSecret, hasKey bool) string {
	if len(supported) == 0 {
		switch {
		case hasKey:
			return AuthPrivateKeyJWT
		case hasSecret:
			return AuthClientSecretBasic
		}
		return AuthNone
	}
	var prefs []string
	if hasKey {
		prefs = append(prefs, AuthPrivateKeyJWT)
	}
	if hasSecret {
		prefs = append(prefs, AuthClientSecretBasic, AuthClientSecretPost)
	}
	prefs = append(prefs, AuthNone)
	for _, m := range prefs {
		if slices.Contains(supported, m) {
			return m
		}
	}
	return prefs[0]
}

// registrationRequest is RFC 7591 §2 client metadata.
type registrationRequest struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

type registrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
}

// register performs dynamic client registration (RFC 7591 §3).
func (c *Client) register(ctx context.Context, as *ServerMetadata) (*Registration, error) {
	name := c.opts.ClientName
	if name == "" {
		name = "Switchboard"
	}
	method := AuthNone
	if len(as.TokenEndpointAuthMethodsSupported) > 0 && !slices.Contains(as.TokenEndpointAuthMethodsSupported, AuthNone) {
		method = chooseAuthMethod(as.TokenEndpointAuthMethodsSupported, true, false)
	}
	body, err := json.Marshal(registrationRequest{
		ClientName:              name,
		RedirectURIs:            []string{c.opts.RedirectURL},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: method,
		ApplicationType:         applicationType(c.opts.RedirectURL),
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("register at %s: %w", as.Issuer, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata))
	if err != nil {
		return nil, fmt.Errorf("register at %s: %w", as.Issuer, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("register at %s: %w", as.Issuer, oauthError("registration", resp.StatusCode, data))
	}
	var rr registrationResponse
	if err := json.Unmarshal(data, &rr); err != nil || rr.ClientID == "" {
		return nil, fmt.Errorf("register at %s: malformed response", as.Issuer)
	}
	reg := &Registration{ClientID: rr.ClientID, ClientSecret: rr.ClientSecret, AuthMethod: rr.TokenEndpointAuthMethod, RedirectURI: c.opts.RedirectURL}
	if reg.AuthMethod == "" {
		reg.AuthMethod = method
		if reg.ClientSecret != "" && method == AuthNone {
			reg.AuthMethod = AuthClientSecretBasic
		}
	}
	if rr.ClientSecretExpiresAt > 0 {
		reg.ExpiresAt = time.Unix(rr.ClientSecretExpiresAt, 0)
	}
	return reg, nil
}

// applicationType is "native" for loopback and custom-scheme redirects,
// "web" otherwise (OIDC Registration §2, SEP-837).
func applicationType(redirect string) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return "web"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "native"
	}
	h := u.Hostname()
	if h == "localhost" {
		return "native"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return "native"
	}
	return "web"
}
