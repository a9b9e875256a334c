package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// principalExtra is the TokenInfo.Extra key of the verified Principal.
const principalExtra = "io.switchboard/principal"

// VerifyToken is the verification of Protect as the SDK's
// auth.TokenVerifier, for a resource server that checks tokens itself
// (the gateway, through auth.RequireBearerToken): the token must be valid
// for the MCP resource at r's path. TokenInfo.UserID is the user; the
// whole Principal is in PrincipalOf.
func (s *Server) VerifyToken(ctx context.Context, token string, r *http.Request) (*auth.TokenInfo, error) {
	p, err := s.verify(ctx, token, s.resourceFor(r.URL.Path))
	switch {
	case errors.Is(err, errInvalidToken):
		return nil, fmt.Errorf("%w: the access token is invalid, expired, revoked or for another resource", auth.ErrInvalidToken)
	case errors.Is(err, errInsufficientScope):
		// Scopes without the required one: RequireBearerToken, given the
		// scope, answers 403 insufficient_scope.
		return &auth.TokenInfo{UserID: "", Scopes: nil, Expiration: time.Now().Add(time.Minute)}, nil
	case err != nil:
		return nil, err
	}
	return &auth.TokenInfo{UserID: p.UserID, Scopes: p.Scopes, Expiration: time.Now().Add(time.Minute),
		Extra: map[string]any{principalExtra: p}}, nil
}

// Scope is the scope every MCP request's token must carry.
func (s *Server) Scope() string { return s.scopes[0] }

// ResourceMetadataURL returns the RFC 9728 metadata URL of the MCP resource
// at path, for the WWW-Authenticate challenge.
func (s *Server) ResourceMetadataURL(path string) string { return s.prmURL(s.resourceFor(path)) }

// PrincipalOf returns the principal VerifyToken put in ti.
func PrincipalOf(ti *auth.TokenInfo) (*Principal, bool) {
	if ti == nil {
		return nil, false
	}
	p, ok := ti.Extra[principalExtra].(*Principal)
	return p, ok
}
