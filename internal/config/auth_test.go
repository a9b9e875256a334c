package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthSections(t *testing.T) {
	const in = `server:
  dataDir: /var/lib/switchboard
store:
  driver: postgres
  dsn: "${DATABASE_URL}"
secrets:
  keyFile: /etc/switchboard/keys.json
auth:
  localLogin: false
  accessTokenTTL: 15m
  providers:
    naver:
      clientId: nid
      clientSecret: "${NAVER_SECRET}"
    corp:
      type: oidc
      issuer: https://sso.example.com
      clientId: sb
access:
  default: {roles: [admin, user]}
  servers:
    github: {roles: [admin], users: [alice]}
`
	got, err := Parse("a.yaml", []byte(in), env(map[string]string{"DATABASE_URL": "postgres://db/sb", "NAVER_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/var/lib/switchboard" || got.Secrets.KeyFile != "/etc/switchboard/keys.json" {
		t.Errorf("dataDir/keyFile = %q %q", got.DataDir, got.Secrets.KeyFile)
	}
	if diff := cmp.Diff(Store{Driver: "postgres", Path: "switchboard.db", DSN: "postgres://db/sb"}, got.Store); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	wantAuth := Auth{LocalLogin: false, AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: DefaultRefreshTokenTTL, Providers: []*Provider{
		{Name: "naver", Pos: Position{"a.yaml", 12, 5}, Type: "naver", ClientID: "nid", ClientSecret: "s"},
		{Name: "corp", Pos: Position{"a.yaml", 15, 5}, Type: "oidc", Issuer: "https://sso.example.com", ClientID: "sb"},
	}}
	if diff := cmp.Diff(wantAuth, got.Auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
	tests := []struct {
		server, role string
		names        []string
		want         bool
	}{
		{"github", "admin", nil, true},
		{"github", "user", []string{"bob"}, false},
		{"github", "user", []string{"alice"}, true},
		{"other", "user", nil, true},
	}
	for _, tt := range tests {
		if g := got.Access.Allows(tt.server, tt.role, tt.names...); g != tt.want {
			t.Errorf("Allows(%s, %s, %v) = %v", tt.server, tt.role, tt.names, g)
		}
	}
}

func TestAuthSectionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"auth:\n  providers:\n    corp:\n      clientId: x\n", "a.yaml:3:5: auth.providers.corp: type is required"},
		{"auth:\n  providers:\n    naver:\n      clientSecret: x\n", "a.yaml:3:5: auth.providers.naver: clientId is required"},
		{"store:\n  driver: postgres\n", "store.driver is postgres but store.dsn is empty"},
		{"access:\n  default: {roles: [root]}\n", `unknown role "root"`},
		{"auth:\n  localLogn: true\n", `did you mean "localLogin"`},
	}
	for _, tt := range tests {
		_, err := Parse("a.yaml", []byte(tt.in), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want error containing %q", tt.in, err, tt.want)
		}
	}
}
