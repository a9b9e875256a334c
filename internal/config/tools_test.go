package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestToolsSection(t *testing.T) {
	const in = `
tools:
  timezone: UTC
  webSearch:
    naver: {clientId: "${NAVER_ID}", clientSecret: "${NAVER_SECRET}", baseURL: "http://127.0.0.1:9000"}
  webRead: {enabled: true, maxBytes: 1048576, timeout: 15s, maxURLs: 3, maxConcurrent: 2, maxChars: 1000}
  calendar:
    provider: caldav
    caldav: {url: "https://dav.example.com/"}
  httpTools:
    - name: get_item
      description: Gets an item.
      url: "https://api.example.com/items/{{id}}"
      query: {expand: "{{expand}}"}
      headers: {X-Team: "${TEAM}"}
      inputSchema:
        properties:
          id: {type: string}
          expand: {type: boolean}
      resultPointer: /item
      auth: {mode: forward, env: API_KEY}
      timeout: 2500
    - name: create_item
      description: Creates an item.
      method: post
      url: "https://api.example.com/items"
      body: {name: "{{name}}", tags: ["a", 1, true], nested: {n: "{{name}}"}}
      inputSchema: {type: object, properties: {name: {type: string}}}
      auth: {env: API_KEY}
`
	env := map[string]string{"NAVER_ID": "id", "NAVER_SECRET": "secret", "TEAM": "blue", "API_KEY": "k"}
	c, err := Parse("t.yaml", []byte(in), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := Tools{
		WebSearch: WebSearch{Provider: "naver", Naver: NaverAPI{ClientID: "id", ClientSecret: "secret", BaseURL: "http://127.0.0.1:9000"}},
		WebRead:   WebRead{MaxBytes: 1 << 20, Timeout: 15 * time.Second, MaxURLs: 3, MaxConcurrent: 2, MaxChars: 1000},
		Calendar:  Calendar{Provider: "caldav", CalDAV: CalDAV{URL: "https://dav.example.com/"}},
		HTTPTools: []*HTTPTool{
			{
				Name: "get_item", Pos: Position{"t.yaml", 11, 13}, Description: "Gets an item.",
				URL: "https://api.example.com/items/{{id}}", Query: map[string]string{"expand": "{{expand}}"},
				Headers:       map[string]string{"X-Team": "blue"},
				InputSchema:   map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}, "expand": map[string]any{"type": "boolean"}}},
				ResultPointer: "/item", Auth: HTTPToolAuth{Mode: "forward", Env: "API_KEY", Token: "k"}, Timeout: 2500 * time.Millisecond,
			},
			{
				Name: "create_item", Pos: Position{"t.yaml", 23, 13}, Description: "Creates an item.", Method: "POST",
				URL:         "https://api.example.com/items",
				Body:        map[string]any{"name": "{{name}}", "tags": []any{"a", int64(1), true}, "nested": map[string]any{"n": "{{name}}"}},
				InputSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
				Auth:        HTTPToolAuth{Mode: "env", Env: "API_KEY", Token: "k"},
			},
		},
	}
	if diff := cmp.Diff(want, c.Tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	ex := Explain(c)
	for _, s := range []string{"web_search: naver", "caldav", "get_item (t.yaml:11:13): GET", "auth forward (API_KEY, set)"} {
		if !strings.Contains(ex, s) {
			t.Errorf("Explain lacks %q:\n%s", s, ex)
		}
	}
	if strings.Contains(ex, "secret") || strings.Contains(ex, "blue") {
		t.Errorf("Explain shows a secret:\n%s", ex)
	}
}

func TestToolsSectionErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"typo", "tools:\n  webSerch: {}\n", `t.yaml:2:3: unknown key "webSerch" in tools; did you mean "webSearch"?`},
		{"provider typo", "tools:\n  webSearch: {provider: naverr}\n", `t.yaml:2:25: tools.webSearch.provider: unknown provider "naverr"; did you mean "naver"?`},
		{"naver without keys", "tools:\n  webSearch:\n    provider: naver\n", `t.yaml:2:3: tools.webSearch: provider naver needs naver.clientId and naver.clientSecret (e.g. clientId: ${NAVER_CLIENT_ID})`},
		{"searxng url", "tools:\n  webSearch:\n    searxng: {url: \"127.0.0.1:8888\"}\n", `t.yaml:3:20: tools.webSearch.searxng.url: invalid URL: first path segment in URL cannot contain colon`},
		{"maxURLs", "tools:\n  webRead: {maxURLs: 50}\n", `t.yaml:2:22: tools.webRead.maxURLs must be from 1 to 20, got 50`},
		{"timeout", "tools:\n  webRead: {timeout: fast}\n", `t.yaml:2:22: tools.webRead.timeout must be a positive duration such as "15s" or a number of milliseconds, got "fast"`},
		{"calendar both", "tools:\n  calendar:\n    naver: {}\n    caldav: {}\n", `t.yaml:2:3: tools.calendar: both naver and caldav are set; choose one with provider: naver or provider: caldav`},
		{"calendar kakao and naverworks", "tools:\n  calendar:\n    kakao: {}\n    naverworks: {}\n", `t.yaml:2:3: tools.calendar: both kakao and naverworks are set; choose one with provider: kakao or provider: naverworks`},
		{"calendar three", "tools:\n  calendar:\n    naver: {}\n    kakao: {}\n    naverworks: {}\n", `t.yaml:2:3: tools.calendar: both naver, kakao and naverworks are set; choose one with provider: naver, provider: kakao or provider: naverworks`},
		{"calendar provider typo", "tools:\n  calendar: {provider: kakaoo}\n", `t.yaml:2:24: tools.calendar.provider: unknown provider "kakaoo"; did you mean "kakao"?`},
		{"kakao key typo", "tools:\n  calendar:\n    kakao: {calendarID: x}\n", `t.yaml:3:13: unknown key "calendarID" in tools.calendar.kakao; did you mean "calendarId"?`},
		{"naverworks url", "tools:\n  calendar:\n    naverworks: {baseURL: \"127.0.0.1:8888\"}\n", `t.yaml:3:27: tools.calendar.naverworks.baseURL: invalid URL: first path segment in URL cannot contain colon`},
		{"tool missing url", "tools:\n  httpTools:\n    - name: x\n      description: d\n", `t.yaml:3:7: tools.httpTools[0]: url is required`},
		{"placeholder typo", "tools:\n  httpTools:\n    - name: x\n      description: d\n      url: \"https://a.example/{{colection_id}}\"\n      inputSchema: {properties: {collection_id: {type: string}}}\n",
			`t.yaml:5:12: tools.httpTools[0].url: {{colection_id}} is not a property of inputSchema; did you mean {{collection_id}}?`},
		{"placeholder in host", "tools:\n  httpTools:\n    - name: x\n      description: d\n      url: \"https://{{host}}/a\"\n      inputSchema: {properties: {host: {type: string}}}\n",
			`t.yaml:5:12: tools.httpTools[0].url: {{argument}} placeholders may appear only in the path and query, not in the host`},
		{"builtin name", "tools:\n  httpTools:\n    - {name: web_read, description: d, url: \"https://a.example/\"}\n",
			`t.yaml:3:14: tools.httpTools: "web_read" is the name of a built-in tool (disable it with tools.webRead.enabled: false, or choose another name)`},
		{"env unset", "tools:\n  httpTools:\n    - {name: x, description: d, url: \"https://a.example/\", auth: {mode: env, env: NOPE}}\n",
			`t.yaml:3:83: tools.httpTools[0].auth.env: environment variable NOPE is not set`},
		{"bad method", "tools:\n  httpTools:\n    - {name: x, description: d, url: \"https://a.example/\", method: FETCH}\n",
			`t.yaml:3:68: tools.httpTools[0].method: "FETCH" is not one of GET, POST, PUT, PATCH, DELETE, HEAD`},
		{"duplicate", "tools:\n  httpTools:\n    - {name: x, description: d, url: \"https://a.example/\"}\n    - {name: x, description: d, url: \"https://a.example/\"}\n",
			`t.yaml:4:14: tools.httpTools: duplicate tool name "x" (first defined at 3:14)`},
		{"pointer", "tools:\n  httpTools:\n    - {name: x, description: d, url: \"https://a.example/\", resultPointer: items}\n",
			`t.yaml:3:75: tools.httpTools[0].resultPointer: a JSON pointer (RFC 6901) starts with /, e.g. /items`},
		{"schema type", "tools:\n  httpTools:\n    - {name: x, description: d, url: \"https://a.example/\", inputSchema: {type: array}}\n",
			`t.yaml:3:73: tools.httpTools[0].inputSchema must have type: object, got array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.in), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCalendarProviders(t *testing.T) {
	tests := []struct {
		name, in string
		want     Calendar
	}{
		{"kakao inferred", "tools:\n  calendar:\n    kakao: {}\n", Calendar{Provider: "kakao"}},
		{"kakao explicit", "tools:\n  calendar:\n    provider: kakao\n    kakao: {baseURL: \"http://127.0.0.1:9/\", calendarId: user_abc}\n",
			Calendar{Provider: "kakao", Kakao: APICalendar{BaseURL: "http://127.0.0.1:9/", CalendarID: "user_abc"}}},
		{"naverworks inferred", "tools:\n  calendar:\n    naverworks: {calendarId: c-1}\n", Calendar{Provider: "naverworks", NaverWorks: APICalendar{CalendarID: "c-1"}}},
		{"naverworks bare", "tools:\n  calendar: {provider: naverworks}\n", Calendar{Provider: "naverworks"}},
		{"provider picks one of two", "tools:\n  calendar:\n    provider: kakao\n    kakao: {}\n    naverworks: {calendarId: c}\n",
			Calendar{Provider: "kakao", NaverWorks: APICalendar{CalendarID: "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Tools.Calendar); diff != "" {
				t.Errorf("calendar (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExampleConfigs(t *testing.T) {
	env := func(k string) (string, bool) {
		return map[string]string{"APERAG_API_KEY": "k"}[k], k == "APERAG_API_KEY"
	}
	c, err := Load("../../examples/aperag.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tools.HTTPTools) != 4 || !c.Tools.WebRead.Disabled {
		t.Errorf("aperag.yaml: %+v", c.Tools)
	}
}

func TestExplainCalendarProviders(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tools:\n  calendar:\n    kakao: {}\n", "create_calendar_schedule, list_calendar_schedules: kakao Talk Calendar, with each user's Kakao sign-in and talk_calendar consent (https://kapi.kakao.com, calendar primary; listing covers every own calendar)"},
		{"tools:\n  calendar:\n    naverworks: {calendarId: team}\n", "create_calendar_schedule, list_calendar_schedules: naverworks, with each user's NAVER WORKS sign-in and calendar scope (https://www.worksapis.com/v1.0, calendar team)"},
	}
	for _, tt := range tests {
		c, err := Parse("t.yaml", []byte(tt.in), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Explain(c); !strings.Contains(got, tt.want) {
			t.Errorf("Explain lacks %q:\n%s", tt.want, got)
		}
	}
}
