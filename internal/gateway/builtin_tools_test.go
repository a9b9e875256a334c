package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/tools"
)

// testVerify stands in for the authorization server's verification:
// "Authorization: Bearer NAME" is user NAME, and "Bearer -" a valid token
// that names no user (as a token of the app itself would).
func testVerify(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	if token == "" {
		return nil, auth.ErrInvalidToken
	}
	if token == "-" {
		token = ""
	}
	return &auth.TokenInfo{UserID: token, Expiration: time.Now().Add(time.Hour)}, nil
}

// builtinConfig is a switchboard.yaml with every built-in tool configured:
// NAVER search and NAVER Calendar against the NAVER fake, web_read allowed
// to reach loopback pages, and one HTTP-API tool against a local JSON API.
const builtinConfig = `
mcpSettings:
  allowedAddresses: ["127.0.0.0/8"]

tools:
  timezone: Asia/Seoul
  webSearch:
    provider: naver
    naver:
      clientId: "${NAVER_CLIENT_ID}"
      clientSecret: "${NAVER_CLIENT_SECRET}"
      baseURL: "${NAVER_URL}"
  calendar:
    provider: naver
    naver:
      baseURL: "${NAVER_URL}"
  httpTools:
    - name: get_weather
      title: Weather
      description: Current weather in a city from the weather API. 도시의 현재 날씨를 알려 줍니다.
      method: GET
      url: "${WEATHER_URL}/v1/weather/{{city}}"
      query:
        units: "{{units}}"
      inputSchema:
        type: object
        required: [city]
        properties:
          city: {type: string, minLength: 1, maxLength: 100}
          units: {type: string, enum: [metric, imperial]}
      outputSchema:
        type: object
        required: [city, temperature, conditions]
        properties:
          city: {type: string}
          temperature: {type: number}
          conditions: {type: string}
      resultPointer: /current
      auth: {mode: env, env: WEATHER_API_KEY}
      timeout: 5s
`

// The switchboard users of these tests and their NAVER accounts.
var naverIDs = map[string]string{"alice": "11111111", "bob": "22222222"}

// gatewayNow is the built-in tools' clock: 2026-11-15 10:00 KST, a Sunday.
var gatewayNow = time.Date(2026, 11, 15, 1, 0, 0, 0, time.UTC)

// builtinEnv is the gateway over the hub's real built-in server, wired as
// cmd/switchboard's newApp wires them.
type builtinEnv struct {
	url   string // of the gateway
	naver *idptest.Naver
	page  string // URL of a local article page
}

func newBuiltinEnv(t *testing.T) *builtinEnv {
	t.Helper()
	e := &builtinEnv{}
	e.naver = idptest.NewNaver(t, &idptest.NaverOptions{Users: []idptest.NaverUser{
		{ID: naverIDs["alice"], Name: "김앨리스"}, {ID: naverIDs["bob"], Name: "이밥"},
	}})
	e.naver.SetSearchItems("webkr", []idptest.SearchItem{
		{Title: "<b>예술의 전당</b> 오시는 길", Link: "https://www.sac.or.kr/site/main/content/location", Description: "서울특별시 서초구 <b>남부순환로</b> 2406 &amp; 주차 안내"},
		{Title: "예술의전당 - 나무위키", Link: "https://namu.wiki/w/%EC%98%88%EC%88%A0%EC%9D%98%EC%A0%84%EB%8B%B9", Description: "&quot;복합 예술 시설&quot;"},
	})
	naverTokens := map[string]string{}
	for user, id := range naverIDs {
		naverTokens[user], _ = e.naver.IssueTokens(id, "")
	}

	page := http.NewServeMux()
	page.HandleFunc("GET /article", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>예술의전당 안내</title></head><body>
<header><nav><a href="/">홈</a> <a href="/about">소개</a></nav></header>
<main><article><h1>예술의전당 안내</h1>
<p>예술의전당은 서울특별시 서초구 남부순환로 2406에 있는 복합 예술 시설로, 오페라하우스와 음악당, 한가람미술관을 갖추고 있습니다. 지하철 3호선 남부터미널역에서 걸어서 갈 수 있습니다.</p>
<p>공연 시작 30분 전까지 도착하면 여유 있게 입장할 수 있습니다. 주차장은 공연 당일 혼잡하므로 대중교통을 이용하는 편이 좋습니다.</p>
</article></main>
<footer><p>Copyright 2026 Example. All rights reserved.</p></footer></body></html>`)
	})
	pageSrv := httptest.NewServer(page)
	t.Cleanup(pageSrv.Close)
	e.page = pageSrv.URL + "/article"

	api := http.NewServeMux()
	api.HandleFunc("GET /v1/weather/{city}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer weather-key" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"requestId": "r-1",
			"current":   map[string]any{"city": r.PathValue("city"), "temperature": 12.5, "conditions": "맑음", "units": r.URL.Query().Get("units")},
		})
	})
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	env := map[string]string{
		"NAVER_CLIENT_ID": e.naver.ClientID(), "NAVER_CLIENT_SECRET": e.naver.ClientSecret(), "NAVER_URL": e.naver.URL(),
		"WEATHER_URL": apiSrv.URL, "WEATHER_API_KEY": "weather-key",
	}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse("switchboard.yaml", []byte(builtinConfig), lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	topts := tools.OptionsFromConfig(cfg)
	topts.Now = func() time.Time { return gatewayNow }
	topts.ProviderToken = func(ctx context.Context, userID, provider string) (string, error) {
		if tok, ok := naverTokens[userID]; ok && provider == tools.ProviderNaver {
			return tok, nil
		}
		return "", fmt.Errorf("%s has no %s token: %w", userID, provider, tools.ErrNotAuthorized)
	}
	// NAVER Calendar cannot list events; everything else configured is on.
	if un := tools.Unavailable(topts); len(un) != 1 || un[tools.ToolListSchedules] == "" {
		t.Fatalf("tools left out: %v", un)
	}

	// Wired as cmd/switchboard's newApp does; gw is set before the hub
	// starts, so the callbacks never see it nil.
	var gw *gateway.Gateway
	h := hub.New(cfg, &hub.Options{
		Builtin:   tools.NewServer(topts),
		LookupEnv: lookupEnv,
	})
	gw = gateway.New(h, &gateway.Options{Verify: testVerify})
	t.Cleanup(func() {
		h.Close()
		gw.Close()
	})
	h.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	if st := h.Statuses(); len(st) != 1 || st[0].State != hub.StateConnected {
		t.Fatalf("statuses: %+v", st)
	}
	gw.Sync()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// asUser adds the user header to every request of a client.
type asUser struct {
	user string
	base *http.Transport
}

func (a *asUser) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+cmpOr(a.user, "-"))
	return a.base.RoundTrip(r)
}

// schemaClient is a go-sdk client session that checks, as a careful MCP
// host would, that listed schemas compile and results match them.
type schemaClient struct {
	cs  *mcp.ClientSession
	in  map[string]*jsonschema.Resolved
	out map[string]*jsonschema.Resolved
}

func (e *builtinEnv) connect(t *testing.T, path, user, protocol string) *schemaClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "builtin-test", Version: "1"}, nil)
	var sopts *mcp.ClientSessionOptions
	if protocol != "" {
		sopts = &mcp.ClientSessionOptions{ProtocolVersion: protocol}
	}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + path, HTTPClient: &http.Client{Transport: &asUser{user, tr}}}, sopts)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", path, user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return &schemaClient{cs: cs}
}

// list lists the tools and compiles their schemas.
func (c *schemaClient) list(t *testing.T) []*mcp.Tool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c.in, c.out = map[string]*jsonschema.Resolved{}, map[string]*jsonschema.Resolved{}
	var out []*mcp.Tool
	for tool, err := range c.cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tool)
		if tool.Description == "" {
			t.Errorf("%s: no description", tool.Name)
		}
		in, err := compileSchema(tool.InputSchema)
		if err != nil {
			t.Errorf("%s: input schema does not compile: %v", tool.Name, err)
		} else {
			c.in[tool.Name] = in
		}
		if tool.OutputSchema == nil {
			t.Errorf("%s: no output schema", tool.Name)
			continue
		}
		o, err := compileSchema(tool.OutputSchema)
		if err != nil {
			t.Errorf("%s: output schema does not compile: %v", tool.Name, err)
			continue
		}
		c.out[tool.Name] = o
	}
	return out
}

func compileSchema(v any) (*jsonschema.Resolved, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if s.Type != "object" {
		return nil, fmt.Errorf("type %q, want object", s.Type)
	}
	return s.Resolve(nil)
}

// call calls a listed tool with arguments that must validate against its
// input schema, and checks a successful result's structured content
// against its output schema. meta, if not nil, is sent as the request's
// _meta.
func (c *schemaClient) call(t *testing.T, name string, args map[string]any, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	if in := c.in[name]; in == nil {
		t.Fatalf("%s is not listed", name)
	} else if err := in.Validate(jsonValue(t, args)); err != nil {
		t.Fatalf("%s: test arguments do not validate: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args, Meta: meta})
	if err != nil {
		t.Fatalf("call %s: protocol error: %v", name, err)
	}
	if res.IsError {
		return res
	}
	if resultText(res) == "" {
		t.Errorf("%s: no text rendering", name)
	}
	if res.StructuredContent == nil {
		t.Fatalf("%s: success without structured content", name)
	}
	if err := c.out[name].Validate(jsonValue(t, res.StructuredContent)); err != nil {
		data, _ := json.Marshal(res.StructuredContent)
		t.Errorf("%s: structured content does not validate against the output schema: %v\n%s", name, err, data)
	}
	return res
}

// jsonValue is v as the generic JSON value a validator expects.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func structuredAs[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var out T
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("structured content %s: %v", data, err)
	}
	return out
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestBuiltinToolsThroughGateway is issue 5's acceptance 2: through the
// gateway, with the go-sdk client, tools/list shows the configured built-in
// tools with schemas that compile, and every call's structured content
// validates against its tool's output schema; the calendar tool acts for
// the user the gateway was told about, with that user's own NAVER token.
func TestBuiltinToolsThroughGateway(t *testing.T) {
	e := newBuiltinEnv(t)
	builtin := []string{"create_calendar_schedule", "get_current_time", "get_weather", "web_read", "web_search"}
	endpoints := []struct {
		name, path, prefix string
	}{
		{"aggregate", "/mcp", hub.BuiltinName + hub.Separator},
		{"transparent", "/mcp/" + hub.BuiltinName, ""},
	}
	protocols := []struct{ name, version string }{
		{"2025-11-25", legacyProtocol},
		{"sdk-default", ""},
	}
	for _, ep := range endpoints {
		for _, proto := range protocols {
			t.Run(ep.name+"/"+proto.name, func(t *testing.T) {
				alice := e.connect(t, ep.path, "alice", proto.version)
				var names []string
				for _, tool := range alice.list(t) {
					names = append(names, tool.Name)
				}
				slices.Sort(names)
				var want []string
				for _, n := range builtin {
					want = append(want, ep.prefix+n)
				}
				if diff := cmp.Diff(want, names); diff != "" {
					t.Fatalf("tools (-want +got):\n%s", diff)
				}
				name := func(tool string) string { return ep.prefix + tool }

				clock := structuredAs[tools.TimeOutput](t, mustOK(t, alice.call(t, name("get_current_time"), map[string]any{}, nil)))
				if clock.Datetime != "2026-11-15T10:00:00+09:00" || clock.WeekdayKorean != "일요일" || clock.Timezone != "Asia/Seoul" {
					t.Errorf("get_current_time: %+v", clock)
				}
				clock = structuredAs[tools.TimeOutput](t, mustOK(t, alice.call(t, name("get_current_time"), map[string]any{"timezone": "America/New_York"}, nil)))
				if clock.Datetime != "2026-11-14T20:00:00-05:00" {
					t.Errorf("get_current_time in New York: %+v", clock)
				}

				search := structuredAs[tools.SearchOutput](t, mustOK(t, alice.call(t, name("web_search"), map[string]any{"query": "예술의 전당 위치", "display": 5}, nil)))
				wantItems := []tools.SearchItem{
					{Rank: 1, Title: "예술의 전당 오시는 길", URL: "https://www.sac.or.kr/site/main/content/location", Snippet: "서울특별시 서초구 남부순환로 2406 & 주차 안내", Domain: "www.sac.or.kr"},
					{Rank: 2, Title: "예술의전당 - 나무위키", URL: "https://namu.wiki/w/%EC%98%88%EC%88%A0%EC%9D%98%EC%A0%84%EB%8B%B9", Snippet: `"복합 예술 시설"`, Domain: "namu.wiki"},
				}
				if diff := cmp.Diff(wantItems, search.Results); diff != "" || search.Provider != "naver" || search.TotalResults != 2 {
					t.Errorf("web_search: provider %q, total %d, results (-want +got):\n%s", search.Provider, search.TotalResults, diff)
				}

				read := structuredAs[tools.ReadOutput](t, mustOK(t, alice.call(t, name("web_read"), map[string]any{"url_list": []string{e.page}}, nil)))
				if len(read.Results) != 1 || read.Successful != 1 || read.Results[0].Status != "success" ||
					!strings.Contains(read.Results[0].Content, "남부순환로 2406") || strings.Contains(read.Results[0].Content, "Copyright") {
					t.Errorf("web_read: %+v", read)
				}

				weather := structuredAs[map[string]any](t, mustOK(t, alice.call(t, name("get_weather"), map[string]any{"city": "서울", "units": "metric"}, nil)))
				if diff := cmp.Diff(map[string]any{"city": "서울", "temperature": 12.5, "conditions": "맑음", "units": "metric"}, weather); diff != "" {
					t.Errorf("get_weather (-want +got):\n%s", diff)
				}

				// The calendar tool writes to the caller's own calendar,
				// with the caller's own NAVER token.
				title := "예술의 전당 방문 (" + ep.name + "/" + proto.name + ")"
				before := len(e.naver.CalendarEvents(naverIDs["alice"]))
				ev := structuredAs[tools.ScheduleOutput](t, mustOK(t, alice.call(t, name("create_calendar_schedule"),
					map[string]any{"title": title, "start": "2026-11-18 15:00", "location": "서울 서초구 남부순환로 2406"}, nil)))
				if ev.ID == "" || ev.Start != "2026-11-18T15:00:00+09:00" || ev.End != "2026-11-18T16:00:00+09:00" || ev.Title != title {
					t.Errorf("create_calendar_schedule: %+v", ev)
				}
				got := e.naver.CalendarEvents(naverIDs["alice"])
				if len(got) != before+1 {
					t.Fatalf("alice's NAVER calendar has %d events, want %d", len(got), before+1)
				}
				last := got[len(got)-1]
				if last.UID != ev.ID || !strings.Contains(last.ICal, "DTSTART;TZID=Asia/Seoul:20261118T150000") {
					t.Errorf("alice's event: id %q, recorded %+v", ev.ID, last)
				}
				for _, other := range e.naver.CalendarEvents(naverIDs["bob"]) {
					if other.UID == ev.ID {
						t.Errorf("alice's event landed in bob's calendar")
					}
				}

				bob := e.connect(t, ep.path, "bob", proto.version)
				bob.list(t)
				bev := structuredAs[tools.ScheduleOutput](t, mustOK(t, bob.call(t, name("create_calendar_schedule"), map[string]any{"title": "bob " + title, "start": "2026-11-19T09:30:00+09:00"}, nil)))
				bobs := e.naver.CalendarEvents(naverIDs["bob"])
				if len(bobs) == 0 || bobs[len(bobs)-1].UID != bev.ID {
					t.Errorf("bob's event %q not in bob's calendar: %+v", bev.ID, bobs)
				}

				// A caller the gateway knows nothing of gets a tool error,
				// even when it claims a user in _meta.
				anon := e.connect(t, ep.path, "", proto.version)
				anon.list(t)
				n := len(e.naver.CalendarEvents(""))
				res := anon.call(t, name("create_calendar_schedule"), map[string]any{"title": "spoofed", "start": "2026-11-18 15:00"}, mcp.Meta{tools.UserMetaKey: "alice"})
				if !res.IsError || !strings.Contains(resultText(res), "signed-in user") {
					t.Errorf("anonymous call: isError %v, %q", res.IsError, resultText(res))
				}
				if got := len(e.naver.CalendarEvents("")); got != n {
					t.Errorf("an anonymous call created an event")
				}
			})
		}
	}
}

// mustOK fails the test for an isError result.
func mustOK(t *testing.T, res *mcp.CallToolResult) *mcp.CallToolResult {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", resultText(res))
	}
	return res
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
