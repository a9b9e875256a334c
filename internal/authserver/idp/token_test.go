package idp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestTokenResponse(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        *Token // Expiry compared as "set or not"
		wantExpiry  time.Duration
		wantErr     string
	}{
		{"expires_in string", 200, "application/json", `{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":"3600"}`,
			&Token{AccessToken: "a", RefreshToken: "r", TokenType: "bearer"}, time.Hour, ""},
		{"expires_in number", 200, "application/json;charset=utf-8", `{"access_token":"a","token_type":"Bearer","expires_in":3599,"scope":"openid email"}`,
			&Token{AccessToken: "a", TokenType: "Bearer", Scopes: []string{"openid", "email"}}, 3599 * time.Second, ""},
		{"expires_in float", 200, "application/json", `{"access_token":"a","expires_in":60.0}`,
			&Token{AccessToken: "a"}, time.Minute, ""},
		{"JSON labelled text/plain", 200, "text/plain", `{"access_token":"a","expires_in":"60"}`,
			&Token{AccessToken: "a"}, time.Minute, ""},
		{"form-encoded (GitHub without Accept)", 200, "application/x-www-form-urlencoded", `access_token=a&scope=repo%2Cgist&token_type=bearer`,
			&Token{AccessToken: "a", TokenType: "bearer", Scopes: []string{"repo", "gist"}}, 0, ""},
		{"error with 200 (NAVER classic)", 200, "application/json", `{"error":"invalid_request","error_description":"no valid data in session"}`,
			nil, 0, "p: token endpoint: invalid_request: no valid data in session"},
		{"error 400", 400, "application/json", `{"error":"invalid_grant","error_description":"bad code"}`,
			nil, 0, "p: token endpoint: invalid_grant: bad code"},
		{"error without body", 502, "text/html", `<html>bad gateway</html>`,
			nil, 0, "p: token endpoint: HTTP 502 Bad Gateway"},
		{"secret echoed", 401, "application/json", `{"error":"invalid_client","error_description":"client_secret s3cr3t-value is wrong"}`,
			nil, 0, "p: token endpoint: invalid_client: client_secret [redacted] is wrong"},
		{"no access token", 200, "application/json", `{"token_type":"bearer"}`, nil, 0, "p: token endpoint: response has no access_token"},
		{"bad expires_in", 200, "application/json", `{"access_token":"a","expires_in":"soon"}`, nil, 0, `p: token endpoint: bad expires_in "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			p := &provider{name: "p", client: srv.Client(), clientID: "id", clientSecret: "s3cr3t-value", tokenURL: srv.URL}
			tok, err := p.token(context.Background(), url.Values{"grant_type": {"authorization_code"}, "code": {"c0de-value"}})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantExpiry == 0 != tok.Expiry.IsZero() {
				t.Errorf("expiry %v, want in %v", tok.Expiry, tt.wantExpiry)
			} else if tt.wantExpiry != 0 {
				if d := time.Until(tok.Expiry); d > tt.wantExpiry || d < tt.wantExpiry-time.Minute {
					t.Errorf("expiry in %v, want %v", d, tt.wantExpiry)
				}
			}
			tok.Expiry = time.Time{}
			if diff := cmp.Diff(tt.want, tok); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCallbackError(t *testing.T) {
	p := &provider{name: "naver", issuer: "https://nid.naver.com"}
	err := p.checkCallback(url.Values{"error": {"access_denied"}, "error_description": {"Canceled\nBy User"}, "state": {"s"}})
	var e *Error
	if !errors.As(err, &e) || err.Error() != "naver: authorization response: access_denied: Canceled By User" {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","expires_in":"3600"}`, `{"access_token":"a","expires_in":3600}`,
		`access_token=a&scope=repo`, `{"error":"x"}`, `{"expires_in":1e99}`, `{"expires_in":-1}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := parseTokenResponse(body)
		if err != nil {
			return
		}
		if secs, err := fields.seconds("expires_in"); err == nil && (secs < 0 || secs > 1<<40) {
			t.Fatalf("expires_in %d out of range", secs)
		}
		_ = splitScopes(fields.get("scope"))
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add("error \x00 description with s3cret", "s3cret")
	f.Fuzz(func(t *testing.T, s, secret string) {
		out := sanitize(s, secret)
		if strings.ContainsFunc(out, unicode.IsControl) {
			t.Fatalf("sanitize(%q) = %q has control characters", s, out)
		}
		if n := utf8.RuneCountInString(out); n > 301 {
			t.Fatalf("sanitize gave %d runes", n)
		}
		// "[redacted]" cannot combine with its neighbours into an
		// alphanumeric secret that it does not itself contain.
		alnum := !strings.ContainsFunc(secret, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if len(secret) >= 4 && alnum && !strings.Contains("[redacted]", secret) && strings.Contains(out, secret) {
			t.Fatalf("sanitize(%q, %q) = %q still holds the secret", s, secret, out)
		}
	})
}
