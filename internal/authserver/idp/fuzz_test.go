package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
)

// The fuzz targets below put untrusted provider answers — token responses,
// id_tokens, profile and userinfo JSON — in front of a real provider built
// by idp.New against an idptest fake. One real login captures the fake's
// answers as seeds; during fuzzing a tap transport answers the endpoint under
// test in-process with the fuzzed body and replays the captured answers
// elsewhere.

// fuzzAccessToken replaces the fake's access token in replayed token
// responses, so that errors can be checked for leaking it.
const fuzzAccessToken = "AT-fuzz-s3cret-0001"

type tapped struct {
	status int
	body   string
}

// tap forwards to the fake and records each path's last answer, unless
// override has the path.
type tap struct {
	mu       sync.Mutex // guards the fields below
	override map[string]tapped
	captured map[string]string
}

func (t *tap) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	o, ok := t.override[r.URL.Path]
	t.mu.Unlock()
	if ok {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: o.status, Status: http.StatusText(o.status),
			Header:  http.Header{"Content-Type": {"application/json;charset=utf-8"}, "X-Oauth-Scopes": {"read:user, user:email"}},
			Body:    io.NopCloser(strings.NewReader(o.body)),
			Request: r}, nil
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.captured[r.URL.Path] = string(b)
	t.mu.Unlock()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp, nil
}

func (t *tap) set(path string, status int, body string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.override[path] = tapped{status, body}
}

// fuzzProvider is a provider that has logged in once for real.
type fuzzProvider struct {
	p                      idp.Provider
	tap                    *tap
	params                 url.Values
	verifier, nonce        string
	tokenPath, profilePath string
	token, profile         string // captured answers, access token replaced
	clientSecret           string
	subject                string // who the fake logged in
}

func newFuzzProvider(f *testing.F, cfg idp.Config, fake *idptest.Server, subject, tokenPath, profilePath string) *fuzzProvider {
	f.Helper()
	tp := &tap{override: map[string]tapped{}, captured: map[string]string{}}
	p, err := idp.New(context.Background(), cfg, &http.Client{Transport: tp, Timeout: 10 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	fp := &fuzzProvider{p: p, tap: tp, tokenPath: tokenPath, profilePath: profilePath,
		clientSecret: cfg.ClientSecret, subject: subject,
		verifier: strings.Repeat("v", 50), nonce: "nonce-for-fuzzing"}
	sum := sha256.Sum256([]byte(fp.verifier))
	resp, err := fake.Client().Get(p.AuthCodeURL("state-for-fuzzing", fp.nonce, base64.RawURLEncoding.EncodeToString(sum[:]), redirectURI))
	if err != nil {
		f.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		f.Fatal(err)
	}
	fp.params = loc.Query()
	if _, _, err := p.Exchange(context.Background(), fp.params, fp.verifier, fp.nonce, redirectURI); err != nil {
		f.Fatalf("real login: %v", err)
	}
	var tok map[string]any
	if err := json.Unmarshal([]byte(tp.captured[tokenPath]), &tok); err != nil {
		f.Fatalf("captured token response %q: %v", tp.captured[tokenPath], err)
	}
	tok["access_token"] = fuzzAccessToken
	b, _ := json.Marshal(tok)
	fp.token = string(b)
	fp.profile = tp.captured[profilePath]
	if profilePath != "" && fp.profile == "" {
		f.Fatalf("login did not call %s", profilePath)
	}
	tp.set(tokenPath, http.StatusOK, fp.token)
	if profilePath != "" {
		tp.set(profilePath, http.StatusOK, fp.profile)
	}
	return fp
}

// exchange redeems the captured callback again, against whatever the tap
// now answers.
func (fp *fuzzProvider) exchange() (*idp.Identity, *idp.Token, error) {
	return fp.p.Exchange(context.Background(), fp.params, fp.verifier, fp.nonce, redirectURI)
}

// checkError asserts that an error shown to a person carries no secret and
// no control character.
func (fp *fuzzProvider) checkError(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{fuzzAccessToken, fp.clientSecret, fp.params.Get("code")} {
		if s != "" && strings.Contains(msg, s) {
			t.Fatalf("error %q leaks %q", msg, s)
		}
	}
	if strings.ContainsAny(msg, "\x00\r\n\x1b") {
		t.Fatalf("error %q has control characters", msg)
	}
}

// FuzzProfile feeds the profile answers of NAVER (/v1/nid/me), GitHub
// (/user) and an OIDC userinfo endpoint, with any status. A user is accepted
// only with a subject — the id_token's where there is one — and errors
// carry no token.
func FuzzProfile(f *testing.F) {
	naver := idptest.NewNaver(f, nil)
	gh := idptest.NewGitHub(f, nil)
	corp := idptest.NewOIDC(f, &idptest.OIDCOptions{PostAuthOnly: true, NoPKCE: true, RS256: true, IDTokenOmitEmail: true})
	ghCfg := gh.Config()
	ghCfg.Scopes = []string{"read:user", "user:email"}
	providers := []*fuzzProvider{
		newFuzzProvider(f, naver.ClassicConfig(), naver.Server, idptest.DefaultNaverUser().ID, "/oauth2.0/token", "/v1/nid/me"),
		newFuzzProvider(f, ghCfg, gh.Server, "583231", "/login/oauth/access_token", "/user"),
		newFuzzProvider(f, corp.Config(), corp.Server, idptest.DefaultOIDCUser().Subject, "/token", "/userinfo"),
	}
	for i, fp := range providers {
		f.Add(uint8(i), http.StatusOK, fp.profile)
	}
	// WIRE.md error answers.
	f.Add(uint8(0), 401, `{"resultcode":"024","message":"Authentication failed (인증 실패하였습니다.)"}`)
	f.Add(uint8(0), 401, `{"resultcode":"028","message":"Authentication header not exists."}`)
	f.Add(uint8(0), 200, `{"resultcode":"00","message":"success","response":{"id":""}}`)
	f.Add(uint8(0), 200, `{"resultcode":"00","message":"success","response":"32742776"}`)
	f.Add(uint8(0), 200, `{"resultcode":"01","message":"bad token `+fuzzAccessToken+`\n"}`)
	f.Add(uint8(1), 200, `{"id":"1e3","login":"octocat"}`)
	f.Add(uint8(1), 200, `{"id":-1,"login":"octocat"}`)
	f.Add(uint8(1), 200, `{"id":9223372036854775808,"login":"octocat"}`)
	f.Add(uint8(1), 401, `{"message":"Bad credentials `+fuzzAccessToken+`","documentation_url":"https://docs.github.com/rest"}`)
	f.Add(uint8(2), 200, `{"sub":"someone-else","email":"mallory@corp.example"}`)
	f.Add(uint8(2), 200, `{"id":"u-1001","verified_email":"true","email":"alice@corp.example"}`)
	f.Add(uint8(2), 400, `{"error":"invalid_token","error_description":"`+fuzzAccessToken+`"}`)
	f.Fuzz(func(t *testing.T, which uint8, status int, body string) {
		fp := providers[int(which)%len(providers)]
		if status < 100 || status > 599 {
			status = http.StatusOK
		}
		fp.tap.set(fp.profilePath, status, body)
		id, _, err := fp.exchange()
		if err != nil {
			fp.checkError(t, err)
			return
		}
		if status != http.StatusOK {
			t.Fatalf("profile answered %d, identity %+v accepted", status, id)
		}
		if id.Subject == "" {
			t.Fatalf("identity without subject: %+v", id)
		}
		if fp.profilePath == "/userinfo" && id.Subject != fp.subject {
			t.Fatalf("subject %q, but the id_token names %q", id.Subject, fp.subject)
		}
		if fp.profilePath == "/user" && strings.TrimLeft(id.Subject, "0123456789") != "" {
			t.Fatalf("GitHub subject %q is not a decimal id", id.Subject)
		}
	})
}

// FuzzTokenEndpoint feeds token endpoint answers (RFC 6749 §5.1/§5.2, and
// GitHub's form-encoded variant). An accepted token has an access token and
// an expiry that is unknown or in the future.
func FuzzTokenEndpoint(f *testing.F) {
	naver := idptest.NewNaver(f, nil)
	gh := idptest.NewGitHub(f, nil)
	providers := []*fuzzProvider{
		newFuzzProvider(f, naver.ClassicConfig(), naver.Server, idptest.DefaultNaverUser().ID, "/oauth2.0/token", "/v1/nid/me"),
		newFuzzProvider(f, gh.Config(), gh.Server, "583231", "/login/oauth/access_token", "/user"),
	}
	for i, fp := range providers {
		f.Add(uint8(i), http.StatusOK, fp.token)
	}
	for _, s := range []string{
		`{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":"3600"}`,
		`{"access_token":"a","expires_in":1099511627776}`,
		`{"access_token":"a","expires_in":"1e10"}`,
		`{"access_token":"a","expires_in":-1}`,
		`{"error":"invalid_request","error_description":"no valid data in session"}`,
		`access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer`,
		`error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.`,
		`{"access_token":""}`,
		``,
	} {
		f.Add(uint8(0), http.StatusOK, s)
	}
	f.Add(uint8(1), http.StatusBadRequest, `{"error":"invalid_grant","error_description":"code `+fuzzAccessToken+"\x1b[31m\"}")
	f.Fuzz(func(t *testing.T, which uint8, status int, body string) {
		fp := providers[int(which)%len(providers)]
		if status < 100 || status > 599 {
			status = http.StatusOK
		}
		fp.tap.set(fp.tokenPath, status, body)
		before := time.Now()
		id, tok, err := fp.exchange()
		if err != nil {
			fp.checkError(t, err)
			return
		}
		if tok.AccessToken == "" || id.Subject == "" {
			t.Fatalf("accepted token %+v, identity %+v", tok, id)
		}
		if !tok.Expiry.IsZero() && !tok.Expiry.After(before) {
			t.Fatalf("expiry %v is in the past (%s)", tok.Expiry, body)
		}
	})
}

// FuzzIDToken feeds the id_token of a token response to an OIDC provider
// (ES256, RFC 9207 iss) and to NAVER (RS256). No key but the fake's signs,
// so whatever verifies names the user the fake logged in, with our nonce.
func FuzzIDToken(f *testing.F) {
	corp := idptest.NewOIDC(f, &idptest.OIDCOptions{IssParam: true})
	naver := idptest.NewNaver(f, &idptest.NaverOptions{IDTokenProfile: true})
	providers := []*fuzzProvider{
		newFuzzProvider(f, corp.Config(), corp.Server, idptest.DefaultOIDCUser().Subject, "/token", ""),
		newFuzzProvider(f, naver.Config(), naver.Server, idptest.DefaultNaverUser().ID, "/oauth2/token", ""),
	}
	for i, fp := range providers {
		var tok map[string]any
		json.Unmarshal([]byte(fp.token), &tok)
		raw, _ := tok["id_token"].(string)
		if raw == "" {
			f.Fatalf("provider %d: the fake's token response has no id_token", i)
		}
		f.Add(uint8(i), raw)
		parts := strings.Split(raw, ".")
		if len(parts) == 3 {
			enc := base64.RawURLEncoding.EncodeToString
			f.Add(uint8(i), enc([]byte(`{"alg":"none"}`))+"."+parts[1]+".")
			f.Add(uint8(i), enc([]byte(`{"alg":"HS256","kid":"x"}`))+"."+parts[1]+"."+parts[2])
			f.Add(uint8(i), parts[0]+"."+enc([]byte(`{"sub":"mallory","aud":"x"}`))+"."+parts[2])
			f.Add(uint8(i), parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])/2])
		}
	}
	f.Add(uint8(0), "")
	f.Add(uint8(0), "....")
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		fp := providers[int(which)%len(providers)]
		var tok map[string]any
		json.Unmarshal([]byte(fp.token), &tok)
		tok["id_token"] = raw
		b, _ := json.Marshal(tok)
		fp.tap.set(fp.tokenPath, http.StatusOK, string(b))
		id, _, err := fp.exchange()
		if err != nil {
			fp.checkError(t, err)
			return
		}
		if id.Subject != fp.subject {
			t.Fatalf("id_token %q verified for subject %q, the fake signed only %q", raw, id.Subject, fp.subject)
		}
	})
}
