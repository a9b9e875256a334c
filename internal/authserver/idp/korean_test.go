package idp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
)

// Kakao's token endpoint errors carry its own error_code next to the OAuth
// error; both reach the error text, the code and secret do not.
func TestKakaoTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      func(f *idptest.Kakao) idp.Config
		twice    bool
		wantCode string
		wantKOE  string
	}{
		{"code used twice", func(f *idptest.Kakao) idp.Config { return f.Config() }, true, "invalid_grant", "KOE320"},
		{"wrong client secret", func(f *idptest.Kakao) idp.Config {
			c := f.Config()
			c.ClientSecret = "not-the-secret"
			return c
		}, false, "invalid_client", "KOE010"},
		{"client secret missing", func(f *idptest.Kakao) idp.Config {
			c := f.ClassicConfig()
			c.ClientSecret = ""
			return c
		}, false, "invalid_client", "KOE010"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := idptest.NewKakao(t, &idptest.KakaoOptions{ClientSecret: "kakao-secret"})
			p := newProvider(t, tc.cfg(f))
			l := startLogin(t, p, f.Server, nil)
			_, _, err := l.exchange(t, p)
			if tc.twice {
				if err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				_, _, err = l.exchange(t, p)
			}
			var e *idp.Error
			if !errors.As(err, &e) || e.Code != tc.wantCode || e.ProviderCode != tc.wantKOE || e.Endpoint != "token endpoint" {
				t.Fatalf("err = %v, want a token endpoint error %s (%s)", err, tc.wantCode, tc.wantKOE)
			}
			if !strings.Contains(err.Error(), tc.wantCode+" ("+tc.wantKOE+")") {
				t.Errorf("error text %q does not name both codes", err)
			}
			if msg := err.Error(); strings.Contains(msg, l.params.Get("code")) || strings.Contains(msg, "kakao-secret") {
				t.Errorf("error text %q repeats the code or the secret", msg)
			}
		})
	}
}

func TestNaverWorksDomains(t *testing.T) {
	users := []idptest.NaverWorksUser{
		{UserID: "u-in", Email: "in@works.example", LastName: "Lee", FirstName: "Jun", DomainID: 10000001},
		{UserID: "u-mail", Email: "mail@partner.example", LastName: "박", FirstName: "서준", DomainID: 30000003},
		{UserID: "u-out", Email: "eve@other.example", LastName: "Doe", FirstName: "Eve", DomainID: 20000002},
	}
	f := idptest.NewNaverWorks(t, &idptest.NaverWorksOptions{Users: users})
	cfg := f.Config()
	cfg.Domains = []string{"10000001", "Partner.Example"}
	p := newProvider(t, cfg)
	for _, tc := range []struct {
		hint, wantName string
		wantDomains    []string // of a refusal
	}{
		{"u-in", "Jun Lee", nil},
		{"u-mail", "박서준", nil},
		{"u-out", "", []string{"20000002", "other.example"}},
	} {
		t.Run(tc.hint, func(t *testing.T) {
			id, tok, err := startLogin(t, p, f.Server, map[string][]string{"login_hint": {tc.hint}}).exchange(t, p)
			if tc.wantDomains == nil {
				if err != nil || id.Name != tc.wantName || tok.AccessToken == "" {
					t.Fatalf("Exchange = %+v, %v; want %s signed in", id, err, tc.wantName)
				}
				return
			}
			var de *idp.DomainError
			if !errors.Is(err, idp.ErrDomainNotAllowed) || !errors.As(err, &de) || id != nil || tok != nil {
				t.Fatalf("Exchange = %v, %v; want ErrDomainNotAllowed and no identity or token", id, err)
			}
			if diff := cmp.Diff(tc.wantDomains, de.Domains); diff != "" {
				t.Errorf("refused user's domains (-want +got):\n%s", diff)
			}
		})
	}
	cfg.Domains = nil
	if _, err := idp.New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "domains is required") {
		t.Errorf("New without domains: %v", err)
	}
}
