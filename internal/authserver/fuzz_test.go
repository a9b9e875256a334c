package authserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
)

// Fuzz targets for what the authorization server reads from anyone on the
// network: bearer credentials, client authentication, registration
// requests, Client ID Metadata Documents and resource indicators.

const fuzzIssuer = "https://sb.example"

// cimdDocs serves Client ID Metadata Documents in-process by URL; others 404.
type cimdDocs struct {
	mu   sync.Mutex // guards docs
	docs map[string]string
}

func (d *cimdDocs) set(u, body string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[u] = body
}

func (d *cimdDocs) RoundTrip(r *http.Request) (*http.Response, error) {
	d.mu.Lock()
	body, ok := d.docs[r.URL.String()]
	d.mu.Unlock()
	status := http.StatusOK
	if !ok {
		status, body = http.StatusNotFound, "not found"
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// fuzzEnv is a server over a real SQLite store with one user, a
// confidential and a public client, and tokens for two resources.
type fuzzEnv struct {
	srv    *Server
	docs   *cimdDocs
	user   *store.User
	tokMCP string // access token for /mcp
	tokX   string // access token for /mcp/x
	apiKey string
	conf   *store.Client
	pub    *store.Client
	cimdID string
	known  []string // resources
}

// Secrets with characters that RFC 6749 §2.3.1 form-encoding changes.
const fuzzSecret = "s3cr3t+/= %é"

// CIMD draft §3 example document, with its own URL as client_id.
const cimdExample = `{"client_id":"https://app.example.com/client.json","client_name":"Example MCP Client",` +
	`"client_uri":"https://app.example.com","logo_uri":"https://app.example.com/logo.png",` +
	`"redirect_uris":["http://127.0.0.1:3000/callback","http://localhost:3000/callback"],` +
	`"grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none"}`

func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	ctx := context.Background()
	kr, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, secrets.KeySize)})
	if err != nil {
		f.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "switchboard.db"), kr)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	e := &fuzzEnv{docs: &cimdDocs{docs: map[string]string{}}, known: []string{fuzzIssuer + "/mcp", fuzzIssuer + "/mcp/x"},
		cimdID: "https://app.example.com/client.json"}
	e.docs.set(e.cimdID, cimdExample)
	// A fixed clock: tokens seeded into the corpus stay valid.
	now := time.Now()
	e.srv, err = New(ctx, &Options{Issuer: fuzzIssuer, Store: st, LocalLogin: true,
		Resources: func() []string { return e.known }, HTTPClient: &http.Client{Transport: e.docs},
		Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	if e.user, err = e.srv.CreateUser(ctx, "alice", "correct horse battery", store.RoleUser); err != nil {
		f.Fatal(err)
	}
	if e.tokMCP, _, err = e.srv.issueAccessToken(ctx, e.user.ID, "pub", fuzzIssuer+"/mcp", []string{"mcp"}, "", ""); err != nil {
		f.Fatal(err)
	}
	if e.tokX, _, err = e.srv.issueAccessToken(ctx, e.user.ID, "pub", fuzzIssuer+"/mcp/x", []string{"mcp"}, "", ""); err != nil {
		f.Fatal(err)
	}
	if e.apiKey, _, err = e.srv.CreateAPIKey(ctx, e.user.ID, "laptop"); err != nil {
		f.Fatal(err)
	}
	e.conf = &store.Client{ID: "conf", Name: "Confidential", RedirectURIs: []string{"https://app.example.com/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "client_secret_basic", ApplicationType: "web", Secret: fuzzSecret, CreatedAt: now}
	e.pub = &store.Client{ID: "pub", Name: "Public", RedirectURIs: []string{"http://127.0.0.1:9/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "none", ApplicationType: "native", CreatedAt: now}
	for _, c := range []*store.Client{e.conf, e.pub} {
		if err := st.CreateClient(ctx, c); err != nil {
			f.Fatal(err)
		}
	}
	return e
}

// FuzzAccessToken feeds Authorization header values to the bearer check
// of /mcp. Only ES256 tokens signed by the server verify, so whatever is
// accepted is alice's /mcp token or her API key — never the /mcp/x token,
// an alg:none or HS256 rewrite, or a token with edited claims.
func FuzzAccessToken(f *testing.F) {
	e := newFuzzEnv(f)
	enc := base64.RawURLEncoding.EncodeToString
	for _, tok := range []string{e.tokMCP, e.tokX} {
		f.Add("Bearer " + tok)
		p := strings.Split(tok, ".")
		f.Add("bearer  " + tok + " ")
		f.Add("Bearer " + enc([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + p[1] + ".")
		f.Add("Bearer " + enc([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + p[1] + "." + p[2])
		var claims map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(p[1])
		json.Unmarshal(b, &claims)
		claims["aud"] = fuzzIssuer + "/mcp"
		claims["sub"] = "someone-else"
		b, _ = json.Marshal(claims)
		f.Add("Bearer " + p[0] + "." + enc(b) + "." + p[2])
	}
	f.Add("Bearer " + e.apiKey)
	f.Add("Bearer " + e.apiKey[:len(e.apiKey)-1])
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("conf:x")))
	f.Add("Bearer")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/mcp", nil)
		for _, v := range strings.Split(header, "\n") {
			r.Header.Add("Authorization", v)
		}
		raw, present := bearer(r)
		if !present {
			t.Fatalf("header %q not seen", header)
		}
		if raw != strings.TrimSpace(raw) {
			t.Fatalf("token %q keeps surrounding space", raw)
		}
		if raw != "" {
			// The token read back from a canonical header is the same.
			r2 := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/mcp", nil)
			r2.Header.Set("Authorization", "Bearer "+raw)
			if again, _ := bearer(r2); again != raw {
				t.Fatalf("bearer(Bearer %q) = %q", raw, again)
			}
		}
		p, err := e.srv.verify(context.Background(), raw, fuzzIssuer+"/mcp")
		if err != nil {
			if !errors.Is(err, errInvalidToken) && !errors.Is(err, errInsufficientScope) {
				t.Fatalf("verify(%q): unexpected error %v", raw, err)
			}
			return
		}
		if p.UserID != e.user.ID || p.Resource != fuzzIssuer+"/mcp" {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
		if strings.HasPrefix(raw, apiKeyPrefix) {
			if raw != e.apiKey {
				t.Fatalf("API key %q accepted, only %q exists", raw, e.apiKey)
			}
			return
		}
		c, err := e.srv.parseAccessToken(context.Background(), raw)
		if err != nil {
			t.Fatalf("verified but does not parse: %v", err)
		}
		want, _ := e.srv.parseAccessToken(context.Background(), e.tokMCP)
		if c.ID != want.ID || c.Subject != want.Subject || c.ClientID != want.ClientID || !slices.Equal(c.Audience, want.Audience) {
			t.Fatalf("token %q verified with claims %+v; only %+v was issued for /mcp", raw, c, want)
		}
	})
}

// FuzzAuthenticateClient feeds the token endpoint's client authentication:
// an Authorization header (RFC 6749 §2.3.1 Basic with form-encoded parts)
// and a form body. A confidential client is authenticated only with its
// secret, by exactly one method; a public one only without a secret.
func FuzzAuthenticateClient(f *testing.F) {
	e := newFuzzEnv(f)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	f.Add(basic("conf", fuzzSecret), "grant_type=authorization_code&code=x")
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte("conf:"+fuzzSecret)), "grant_type=authorization_code")
	f.Add(basic("conf", fuzzSecret), "client_id=conf&client_secret="+url.QueryEscape(fuzzSecret))
	f.Add(basic("conf", fuzzSecret), "client_id=pub")
	f.Add("", "client_id=conf&client_secret="+url.QueryEscape(fuzzSecret))
	f.Add("", "client_id=pub")
	f.Add("", "client_id=pub&client_secret=x")
	f.Add("", "client_id="+url.QueryEscape(e.cimdID))
	f.Add(basic(e.cimdID, ""), "")
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte("%zz:%")), "")
	f.Add("Basic !!!", "client_id=pub")
	f.Add("", "client_id=conf&client_id=pub")
	f.Fuzz(func(t *testing.T, authz, body string) {
		r := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if oe := parseTokenForm(httptest.NewRecorder(), r); oe != nil {
			return
		}
		c, usedBasic, oe := e.srv.authenticateClient(context.Background(), r)
		if _, _, isBasic := r.BasicAuth(); usedBasic != isBasic {
			t.Fatalf("basic = %v for %q", usedBasic, authz)
		}
		if oe != nil {
			if oe.status != http.StatusBadRequest && oe.status != http.StatusUnauthorized {
				t.Fatalf("error %+v", oe)
			}
			return
		}
		user, pass, isBasic := r.BasicAuth()
		if isBasic {
			user, _ = url.QueryUnescape(user)
			pass, _ = url.QueryUnescape(pass)
			if r.PostForm.Has("client_secret") {
				t.Fatal("two authentication methods accepted")
			}
		} else {
			user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if c.ID != user {
			t.Fatalf("authenticated as %q, presented %q", c.ID, user)
		}
		switch c.ID {
		case e.conf.ID:
			if pass != fuzzSecret {
				t.Fatalf("confidential client accepted with secret %q", pass)
			}
		case e.pub.ID, e.cimdID:
			if pass != "" {
				t.Fatalf("public client accepted with secret %q", pass)
			}
		default:
			t.Fatalf("unknown client %q authenticated", c.ID)
		}
	})
}

// checkValidated asserts what validateMetadata promises of metadata it
// accepted.
func checkValidated(t *testing.T, s *Server, m *clientMetadata, cimd bool) {
	t.Helper()
	if len(m.RedirectURIs) == 0 || len(m.RedirectURIs) > maxRedirectURIs {
		t.Fatalf("%d redirect_uris accepted", len(m.RedirectURIs))
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			t.Fatalf("redirect URI %q accepted: %v", u, err)
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "none":
	case "client_secret_basic", "client_secret_post":
		if cimd {
			t.Fatal("metadata document client with a secret")
		}
	default:
		t.Fatalf("token_endpoint_auth_method %q", m.TokenEndpointAuthMethod)
	}
	if !slices.Contains(m.GrantTypes, "authorization_code") || slices.ContainsFunc(m.GrantTypes, func(g string) bool {
		return g != "authorization_code" && g != "refresh_token"
	}) {
		t.Fatalf("grant_types %q", m.GrantTypes)
	}
	if !slices.Equal(m.ResponseTypes, []string{"code"}) {
		t.Fatalf("response_types %q", m.ResponseTypes)
	}
	if m.ApplicationType != "web" && m.ApplicationType != "native" {
		t.Fatalf("application_type %q", m.ApplicationType)
	}
	if !scopesSubset(strings.Fields(m.Scope), s.scopes) {
		t.Fatalf("scope %q", m.Scope)
	}
	if len([]rune(m.ClientName)) > maxClientNameLen {
		t.Fatal("client_name too long")
	}
}

// FuzzClientMetadata feeds RFC 7591 registration requests (and the same
// shape as metadata documents). Accepted metadata satisfies every rule, and
// validating it again changes nothing.
func FuzzClientMetadata(f *testing.F) {
	e := newFuzzEnv(f)
	// RFC 7591 §3.1 examples, the MCP clients' usual request, edge cases.
	for _, s := range []string{
		`{"redirect_uris":["https://client.example.org/callback","https://client.example.org/callback2"],` +
			`"client_name":"My Example Client","client_name#ja-Jpan-JP":"クライアント名",` +
			`"token_endpoint_auth_method":"client_secret_basic","logo_uri":"https://client.example.org/logo.png",` +
			`"jwks_uri":"https://client.example.org/my_public_keys.jwks","example_extension_parameter":"example_value"}`,
		`{"redirect_uris":["https://client.example.org/callback","https://client.example.org/callback2"],` +
			`"client_name":"My Example Client","token_endpoint_auth_method":"client_secret_basic",` +
			`"jwks_uri":"https://client.example.org/my_public_keys.jwks","software_statement":"eyJhbGciOiJSUzI1NiJ9.e30.x",` +
			`"scope":"read write dolphin","logo_uri":"https://client.example.org/logo.png"}`,
		`{"client_name":"MCP Inspector","redirect_uris":["http://localhost:6274/oauth/callback"],` +
			`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
		`{"redirect_uris":["http://127.0.0.1:0/cb"],"scope":"mcp","application_type":"native"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`,
		`{"redirect_uris":["https://a.example/cb#frag"]}`,
		`{"redirect_uris":["https://a.example/cb"],"grant_types":["implicit"]}`,
		`{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`,
		`{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("é", 201) + `"}`,
		cimdExample,
		`{"redirect_uris":null}`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, cimd bool) {
		var m clientMetadata
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		if oe := e.srv.validateMetadata(&m, cimd); oe != nil {
			if oe.status != http.StatusBadRequest || (oe.code != "invalid_redirect_uri" && oe.code != "invalid_client_metadata") {
				t.Fatalf("RFC 7591 §3.2.2 error expected, got %+v", oe)
			}
			return
		}
		checkValidated(t, e.srv, &m, cimd)
		again := m
		again.RedirectURIs = slices.Clone(m.RedirectURIs)
		again.GrantTypes = slices.Clone(m.GrantTypes)
		again.ResponseTypes = slices.Clone(m.ResponseTypes)
		if oe := e.srv.validateMetadata(&again, cimd); oe != nil {
			t.Fatalf("accepted metadata refused on second validation: %v", oe)
		}
		b1, _ := json.Marshal(m)
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("validation is not idempotent:\n%s\n%s", b1, b2)
		}
	})
}

// FuzzCIMD feeds a Client ID Metadata Document served at a client_id URL.
// A client is made only from a document that names its own URL, is small
// enough and passes every metadata rule, and it is always public.
func FuzzCIMD(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add(e.cimdID, cimdExample)
	f.Add("https://app.example.com/client.json", strings.Replace(cimdExample, `"none"`, `"client_secret_basic"`, 1))
	f.Add("https://app.example.com/client.json", strings.Replace(cimdExample, "app.example.com/client", "evil.example/client", 1))
	f.Add("https://app.example.com/other.json", cimdExample)
	f.Add("https://app.example.com/client.json", `{"client_id":"https://app.example.com/client.json","redirect_uris":["https://app.example.com/cb"]}`)
	f.Add("https://app.example.com/client.json", `{"client_id":"https://app.example.com/client.json","redirect_uris":[]}`)
	f.Add("https://app.example.com/", `{"client_id":"https://app.example.com/","redirect_uris":["https://app.example.com/cb"]}`)
	f.Add("https://u@app.example.com/c", `{"client_id":"https://u@app.example.com/c","redirect_uris":["https://app.example.com/cb"]}`)
	f.Add("https://app.example.com/c.json", `{"client_id":"https://app.example.com/c.json","redirect_uris":["https://app.example.com/cb"],"padding":"`+strings.Repeat("x", maxDocBytes)+`"}`)
	f.Fuzz(func(t *testing.T, id, body string) {
		if !isCIMDClientID(id) {
			return
		}
		u, err := url.Parse(id)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.Path == "" || u.Path == "/" || u.User != nil || strings.Contains(id, "#") {
			t.Fatalf("%q taken for a metadata document URL", id)
		}
		e.docs.set(id, body)
		c, err := e.srv.fetchCIMD(context.Background(), id)
		if err != nil {
			var ce *cimdError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a cimdError", err)
			}
			return
		}
		if c.ID != id || !c.CIMD || c.TokenEndpointAuthMethod != "none" || c.Secret != "" || len(body) > maxDocBytes {
			t.Fatalf("client %+v from a %d-byte document at %q", c, len(body), id)
		}
		var m clientMetadata
		if err := json.Unmarshal([]byte(body), &m); err != nil || m.ClientID != id {
			t.Fatalf("accepted document %q", body)
		}
		checkValidated(t, e.srv, &clientMetadata{RedirectURIs: c.RedirectURIs, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
			GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes, Scope: c.Scope, ApplicationType: c.ApplicationType}, true)
	})
}

// FuzzResolveResource feeds the RFC 8707 resource parameter. It resolves
// only to a known endpoint, which is the parameter itself or the parameter
// without a query or trailing slash.
func FuzzResolveResource(f *testing.F) {
	e := newFuzzEnv(f)
	for _, s := range []string{"", fuzzIssuer + "/mcp", fuzzIssuer + "/mcp/x", fuzzIssuer + "/mcp/", fuzzIssuer + "/mcp?chatgpt=1",
		fuzzIssuer + "/mcp/x#frag", fuzzIssuer + "/mcp/y", fuzzIssuer + "/mcp/x/..", "https://SB.example/mcp", fuzzIssuer + "/mcp?a#b",
		fuzzIssuer + "/mcp/x/?q", fuzzIssuer + "/mcp//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := e.srv.resolveResource(raw)
		if !ok {
			return
		}
		if !slices.Contains(e.known, got) {
			t.Fatalf("resolveResource(%q) = %q, not a known resource", raw, got)
		}
		switch rest, _ := strings.CutPrefix(raw, got); {
		case raw == "":
			if got != e.srv.defaultResource() {
				t.Fatalf("empty resource resolved to %q", got)
			}
		case raw == got:
		case !strings.HasPrefix(raw, got) || (rest != "/" && !strings.HasPrefix(rest, "?")) || strings.Contains(raw, "#"):
			t.Fatalf("resolveResource(%q) = %q", raw, got)
		}
	})
}
