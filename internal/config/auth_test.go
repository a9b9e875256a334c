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

func TestRedisSection(t *testing.T) {
	tests := []struct {
		name, in string
		env      map[string]string
		want     Redis
	}{
		{"absent", "store: {}\n", nil, Redis{}},
		{"from the environment", "redis:\n  url: \"${REDIS_URL}\"\n", map[string]string{"REDIS_URL": "redis://:pw@10.0.0.5:6379/2"}, Redis{URL: "redis://:pw@10.0.0.5:6379/2"}},
		{"optional and unset", "redis:\n  url: \"${REDIS_URL:-}\"\n", nil, Redis{}},
		{"tls", "redis: {url: \"rediss://cache.example:6380\"}\n", nil, Redis{URL: "rediss://cache.example:6380"}},
		{"socket", "redis: {url: \"unix:///run/redis.sock\"}\n", nil, Redis{URL: "unix:///run/redis.sock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("a.yaml", []byte(tt.in), env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Redis); diff != "" {
				t.Errorf("redis (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedisSectionErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis:\n  ur: redis://x\n", `a.yaml:2:3: unknown key "ur" in redis; did you mean "url"?`},
		{"rediss:\n  url: redis://x\n", `a.yaml:1:1: unknown top-level section "rediss"; did you mean "redis"?`},
		{"redis:\n  url: http://:secret@x\n", `a.yaml:2:8: redis.url: URL scheme must be redis, rediss or unix, not "http"`},
		{"redis:\n  url: 127.0.0.1:6379\n", `a.yaml:2:8: redis.url: want a URL such as "redis://127.0.0.1:6379/0"`},
		{"redis:\n  url: redis:///0\n", "redis.url: URL has no host"},
		{"redis:\n  url: redis://:secret@x/cache\n", "redis.url: the path must be a database number"},
		{"redis:\n  url: \"${REDIS_URL}\"\n", "redis.url: environment variable REDIS_URL is not set"},
		{"redis: redis://x\n", "a.yaml:1:8: redis must be a mapping"},
	}
	for _, tt := range tests {
		_, err := Parse("a.yaml", []byte(tt.in), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want error containing %q", tt.in, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q): error shows the password: %v", tt.in, err)
		}
	}
}

func TestKoreanProvidersAndAdmins(t *testing.T) {
	const in = `auth:
  providers:
    kakao:
      clientId: rest-api-key
    kakao-rest:
      type: kakao
      oidc: false
      clientId: rest-api-key
      clientSecret: s
      scopes: [profile_nickname, account_email]
    naverworks:
      clientId: w
      clientSecret: ws
      domains: ["10000001", example.co.kr]
  admins:
    - boss@example.co.kr
    - kakao:3141592653
    - naverworks:userf7da-f82c
`
	got, err := Parse("a.yaml", []byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Auth{LocalLogin: true, AccessTokenTTL: DefaultAccessTokenTTL, RefreshTokenTTL: DefaultRefreshTokenTTL, Providers: []*Provider{
		{Name: "kakao", Pos: Position{"a.yaml", 3, 5}, Type: "kakao", ClientID: "rest-api-key"},
		{Name: "kakao-rest", Pos: Position{"a.yaml", 5, 5}, Type: "kakao", Classic: true, ClientID: "rest-api-key", ClientSecret: "s",
			Scopes: []string{"profile_nickname", "account_email"}},
		{Name: "naverworks", Pos: Position{"a.yaml", 11, 5}, Type: "naverworks", ClientID: "w", ClientSecret: "ws",
			Domains: []string{"10000001", "example.co.kr"}},
	}, Admins: []Admin{
		{Email: "boss@example.co.kr", Pos: Position{"a.yaml", 16, 7}},
		{Provider: "kakao", Subject: "3141592653", Pos: Position{"a.yaml", 17, 7}},
		{Provider: "naverworks", Subject: "userf7da-f82c", Pos: Position{"a.yaml", 18, 7}},
	}}
	if diff := cmp.Diff(want, got.Auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
}

func TestKoreanProvidersAndAdminsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"auth:\n  providers:\n    naverworks:\n      clientId: x\n      clientSecret: y\n",
			"a.yaml:3:5: auth.providers.naverworks: domains is required for type naverworks"},
		{"auth:\n  providers:\n    kakao:\n      clientId: x\n      domains: [a.example]\n",
			"a.yaml:3:5: auth.providers.kakao: domains is only for type naverworks"},
		{"auth:\n  providers:\n    kakao:\n      clientId: x\n      oidc: maybe\n", "auth.providers.kakao.oidc"},
		{"auth:\n  admins:\n    - kakao:1\n",
			`a.yaml:3:7: auth.admins[0]: "kakao:1" names provider "kakao", which auth.providers does not configure (configured: none)`},
		{"auth:\n  providers:\n    kakao: {clientId: x}\n  admins:\n    - root\n",
			`a.yaml:5:7: auth.admins[0]: "root" is neither an e-mail address nor provider:subject`},
		{"auth:\n  admins:\n    - \"@example.com\"\n", `a.yaml:3:7: auth.admins[0]: "@example.com" is not an e-mail address`},
		{"auth:\n  admins: boss@example.com\n", "a.yaml:2:11: auth.admins must be a list"},
		{"auth:\n  admins:\n    - \"\"\n", "auth.admins[0] is empty"},
	}
	for _, tt := range tests {
		_, err := Parse("a.yaml", []byte(tt.in), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want error containing %q", tt.in, err, tt.want)
		}
	}
}
