package oauthclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The upstream documents the fuzz targets below feed to the client come from
// a party Switchboard does not trust: an MCP server and the authorization
// server it names. The harness answers every request in-process (no sockets)
// with the fuzzed document at the one path under test and a valid document
// everywhere else.

const fuzzBase = "https://mcp.example.com"

// docTransport serves fixed bodies by URL path; others are 404.
type docTransport map[string]string

func (d docTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	body, ok := d[r.URL.Path]
	status := http.StatusOK
	switch {
	case !ok:
		status, body = http.StatusNotFound, "not found"
	case r.URL.Path == "/register":
		status = http.StatusCreated
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r,
	}, nil
}

// Valid documents, in the shape of the RFC examples (RFC 9728 §3.2, RFC 8414
// §3.2, RFC 7591 §3.2.1, RFC 6749 §5.1) with this harness's URLs.
const (
	validPRM = `{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com"],` +
		`"scopes_supported":["profile","email","phone"],"bearer_methods_supported":["header"]}`
	validASM = `{"issuer":"https://mcp.example.com","authorization_endpoint":"https://mcp.example.com/authorize",` +
		`"token_endpoint":"https://mcp.example.com/token","registration_endpoint":"https://mcp.example.com/register",` +
		`"scopes_supported":["openid","profile","email","address","phone","offline_access"],` +
		`"response_types_supported":["code","code token"],"code_challenge_methods_supported":["S256"],` +
		`"token_endpoint_auth_methods_supported":["client_secret_basic","private_key_jwt","none"],` +
		`"service_documentation":"http://server.example.com/service_documentation.html"}`
	validReg = `{"client_id":"s6BhdRkqt3","client_secret":"cf136dc3c1fc93f31185e5885805d",` +
		`"client_id_issued_at":2893256800,"client_secret_expires_at":2893276800,` +
		`"redirect_uris":["https://client.example.org/callback","https://client.example.org/callback2"],` +
		`"grant_types":["authorization_code","refresh_token"],"client_name":"My Example Client",` +
		`"token_endpoint_auth_method":"client_secret_basic","logo_uri":"https://client.example.org/logo.png",` +
		`"jwks_uri":"https://client.example.org/my_public_keys.jwks","example_extension_parameter":"example_value"}`
	validToken = `{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,` +
		`"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}`
)

func fuzzClient(t *testing.T, docs docTransport, now time.Time) *Client {
	c, err := New(fuzzBase+"/mcp", &Options{
		HTTPClient:  &http.Client{Transport: docs},
		RedirectURL: "http://127.0.0.1:8080/oauth/callback",
		DPoP:        DPoPNever,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func validDocs() docTransport {
	return docTransport{
		"/.well-known/oauth-protected-resource/mcp": validPRM,
		"/.well-known/oauth-authorization-server":   validASM,
		"/register": validReg,
		"/token":    validToken,
	}
}

// FuzzDiscovery feeds the protected resource metadata (RFC 9728) and the
// authorization server metadata (RFC 8414) a server publishes. Whatever
// discovery accepts points at http(s) endpoints without credentials, names
// the resource it was asked about, and comes from the issuer the resource
// metadata named.
func FuzzDiscovery(f *testing.F) {
	f.Add(validPRM, validASM)
	f.Add(`{"resource":"https://mcp.example.com","authorization_servers":["https://mcp.example.com/"]}`, validASM)
	f.Add(`{"resource":"https://mcp.example.com/mcp","authorization_servers":["https://mcp.example.com/tenant"]}`,
		`{"issuer":"https://mcp.example.com/tenant","token_endpoint":"https://mcp.example.com/t/token"}`)
	f.Add(`{"resource":"https://evil.example/mcp","authorization_servers":["https://mcp.example.com"]}`, validASM)
	f.Add(validPRM, `{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`)
	f.Add(validPRM, `{"issuer":"https://mcp.example.com","token_endpoint":"javascript:alert(1)"}`)
	f.Add(validPRM, `{"issuer":"https://mcp.example.com","token_endpoint":"https://u:p@mcp.example.com/token"}`)
	f.Add(`{"resource":"https://mcp.example.com/mcp","authorization_servers":[]}`, validASM)
	f.Add(`{"resource":"https://MCP.example.com/mcp/","authorization_servers":["http://mcp.example.com#x"]}`, validASM)
	f.Add(`null`, `null`)
	f.Add(`{"resource":1}`, `[]`)
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, prm, asm string) {
		docs := docTransport{"/.well-known/oauth-protected-resource/mcp": prm}
		// Serve the AS document at every well-known location an issuer of
		// this origin may use.
		for _, p := range []string{"", "/tenant"} {
			docs["/.well-known/oauth-authorization-server"+p] = asm
			docs["/.well-known/openid-configuration"+p] = asm
		}
		c := fuzzClient(t, docs, now)
		d, err := c.discover(context.Background(), nil)
		if err != nil {
			return
		}
		if d.as == nil {
			t.Fatal("discovery succeeded without authorization server metadata")
		}
		if err := checkURL(d.as.TokenEndpoint); err != nil {
			t.Fatalf("discovery accepted token endpoint %q: %v", d.as.TokenEndpoint, err)
		}
		for _, e := range []string{d.as.AuthorizationEndpoint, d.as.RegistrationEndpoint, d.as.RevocationEndpoint} {
			if e == "" {
				continue
			}
			if err := checkURL(e); err != nil {
				t.Fatalf("discovery accepted endpoint %q: %v", e, err)
			}
		}
		if d.prm == nil {
			// MCP 2025-03-26: the server's origin is the issuer.
			if !sameIssuer(d.as.Issuer, fuzzBase) || d.resource != fuzzBase+"/mcp" {
				t.Fatalf("without resource metadata: issuer %q, resource %q", d.as.Issuer, d.resource)
			}
			return
		}
		if !resourceMatches(d.resource, fuzzBase+"/mcp") {
			t.Fatalf("resource %q accepted for %s/mcp", d.resource, fuzzBase)
		}
		if len(d.prm.AuthorizationServers) == 0 || !sameIssuer(d.as.Issuer, d.prm.AuthorizationServers[0]) {
			t.Fatalf("issuer %q is not the one the resource named (%q)", d.as.Issuer, d.prm.AuthorizationServers)
		}
		for _, as := range d.prm.AuthorizationServers {
			if err := checkURL(as); err != nil {
				t.Fatalf("authorization server %q accepted: %v", as, err)
			}
		}
	})
}

// FuzzRegistrationResponse feeds an RFC 7591 registration response. An
// accepted registration has a client_id, an authentication method, and the
// redirect URI that was registered.
func FuzzRegistrationResponse(f *testing.F) {
	f.Add(validReg)
	f.Add(`{"client_id":"dyn-client","token_endpoint_auth_method":"none"}`)
	f.Add(`{"client_id":"c","client_secret":"s"}`)
	f.Add(`{"client_id":"","client_secret":"s"}`)
	f.Add(`{"client_id":"c","client_secret_expires_at":-1}`)
	f.Add(`{"client_id":"c","client_secret_expires_at":9223372036854775807}`)
	f.Add(`{"client_id":"c","client_secret_expires_at":1e300}`)
	f.Add(`{"client_id":7}`)
	f.Add(`{"error":"invalid_redirect_uri","error_description":"The redirection URI is not valid."}`)
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		docs := validDocs()
		docs["/register"] = body
		c := fuzzClient(t, docs, now)
		d, err := c.discover(context.Background(), nil)
		if err != nil {
			t.Fatalf("valid discovery failed: %v", err)
		}
		reg, err := c.register(context.Background(), d.as)
		if err != nil {
			return
		}
		if reg.ClientID == "" || reg.AuthMethod == "" || reg.RedirectURI != c.opts.RedirectURL {
			t.Fatalf("accepted registration %+v", reg)
		}
		if reg.ClientSecret != "" && reg.AuthMethod == AuthNone {
			// A secret the client never sends is harmless, but a registration
			// that has one and says "none" came from the server itself.
			if !strings.Contains(body, `"none"`) {
				t.Fatalf("secret with method none not named by the server: %+v", reg)
			}
		}
	})
}

// FuzzTokenResponse feeds an RFC 6749 §5.1 token response (and error
// responses, §5.2). A token accepted has an access token, a token type the
// client can send, and an expiry that is in the future or unknown.
func FuzzTokenResponse(f *testing.F) {
	for _, s := range []string{
		validToken,
		`{"access_token":"mF_9.B5f-4.1JqM","token_type":"Bearer","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA"}`,
		`{"access_token":"a","token_type":"bearer","expires_in":"3600","scope":"read write"}`,
		`{"access_token":"a","token_type":"DPoP","expires_in":60}`,
		`{"access_token":"","token_type":"Bearer"}`,
		`{"access_token":"a","expires_in":1e300}`,
		`{"access_token":"a","expires_in":9223372036}`,
		`{"access_token":"a","expires_in":"9223372036854775807"}`,
		`{"access_token":"a","expires_in":-5}`,
		`{"access_token":"a","expires_in":0.5}`,
		`{"access_token":["a"]}`,
		`{"error":"invalid_request"}`,
		`{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}`,
		``,
	} {
		f.Add(s, 200)
	}
	f.Add(`{"error":"invalid_grant","error_description":"`+strings.Repeat("x", 300)+`"}`, 400)
	f.Add(`{"access_token":"a"}`, 201)
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string, status int) {
		if status < 100 || status > 999 {
			status = 200
		}
		c := fuzzClient(t, docTransport{}, now)
		c.http = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}
		d := &discovery{resource: fuzzBase + "/mcp", as: &ServerMetadata{Issuer: fuzzBase, TokenEndpoint: fuzzBase + "/token"}}
		id := &identity{clientID: "c", secret: "s", authMethod: AuthClientSecretBasic}
		tok, err := c.tokenRequest(context.Background(), d, id, url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			var te *TokenError
			if status == 200 {
				return
			}
			if !errors.As(err, &te) || te.Status != status || len(te.Description) > 200+len("…") {
				t.Fatalf("status %d: error %v", status, err)
			}
			return
		}
		if status != 200 {
			t.Fatalf("status %d accepted", status)
		}
		if tok.AccessToken == "" {
			t.Fatal("empty access token accepted")
		}
		if tok.TokenType != "Bearer" {
			t.Fatalf("token type %q without DPoP", tok.TokenType)
		}
		if !tok.Expiry.IsZero() && !tok.Expiry.After(now) {
			t.Fatalf("expiry %v is not after now (%v) for %s", tok.Expiry, now, body)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
