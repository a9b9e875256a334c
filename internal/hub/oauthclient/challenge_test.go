package oauthclient

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   []challenge
	}{
		{
			name:   "bearer with resource metadata",
			header: []string{`Bearer error="invalid_token", error_description="Missing Authorization header", resource_metadata="http://localhost:35023/custom/metadata/location.json"`},
			want: []challenge{{scheme: "bearer", params: map[string]string{
				"error": "invalid_token", "error_description": "Missing Authorization header",
				"resource_metadata": "http://localhost:35023/custom/metadata/location.json"}}},
		},
		{
			name:   "step-up",
			header: []string{`Bearer scope="mcp:write", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp", error="insufficient_scope"`},
			want: []challenge{{scheme: "bearer", params: map[string]string{
				"scope": "mcp:write", "resource_metadata": "https://x/.well-known/oauth-protected-resource/mcp", "error": "insufficient_scope"}}},
		},
		{
			name:   "dpop nonce",
			header: []string{`DPoP error="use_dpop_nonce", resource_metadata="http://h/m"`},
			want:   []challenge{{scheme: "dpop", params: map[string]string{"error": "use_dpop_nonce", "resource_metadata": "http://h/m"}}},
		},
		{
			name:   "several challenges in one value",
			header: []string{`Basic realm="x", Bearer scope="a b", error=insufficient_scope, DPoP algs="ES256"`},
			want: []challenge{
				{scheme: "basic", params: map[string]string{"realm": "x"}},
				{scheme: "bearer", params: map[string]string{"scope": "a b", "error": "insufficient_scope"}},
				{scheme: "dpop", params: map[string]string{"algs": "ES256"}},
			},
		},
		{
			name:   "token68 then another challenge",
			header: []string{`Negotiate dXNlcjpwYXNz==, Bearer realm="r\"q"`},
			want: []challenge{
				{scheme: "negotiate", params: map[string]string{}},
				{scheme: "bearer", params: map[string]string{"realm": `r"q`}},
			},
		},
		{
			name:   "two header values",
			header: []string{`Bearer`, `DPoP`},
			want:   []challenge{{scheme: "bearer", params: map[string]string{}}, {scheme: "dpop", params: map[string]string{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Www-Authenticate": tt.header}
			got := parseChallenges(h)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(challenge{})); diff != "" {
				t.Errorf("parseChallenges (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer error="invalid_token", resource_metadata="http://h/x"`)
	f.Add(`Basic realm="x", Bearer scope="a b", DPoP algs="ES256"`)
	f.Add(`Negotiate abc==, Bearer`)
	f.Add(`"`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range parseChallenge(s) {
			if c.scheme == "" {
				t.Fatalf("empty scheme from %q", s)
			}
		}
	})
}
