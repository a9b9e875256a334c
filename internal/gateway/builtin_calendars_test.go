package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/tools"
	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

// newCalendarGateway is the gateway over the real built-in server with only
// tools.calendar configured from yaml (with ${CALENDAR_URL}), each user
// holding the provider token "tok-<user>".
func newCalendarGateway(t *testing.T, yaml, calendarURL, provider string) *builtinEnv {
	t.Helper()
	lookupEnv := func(k string) (string, bool) { return calendarURL, k == "CALENDAR_URL" }
	cfg, err := config.Parse("switchboard.yaml", []byte(yaml), lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	topts := tools.OptionsFromConfig(cfg)
	topts.Now = func() time.Time { return gatewayNow }
	topts.ProviderToken = func(ctx context.Context, userID, p string) (string, error) {
		if p != provider || userID == "" {
			return "", fmt.Errorf("%s has no %s token: %w", userID, p, tools.ErrNotAuthorized)
		}
		return "tok-" + userID, nil
	}
	h := hub.New(cfg, &hub.Options{Builtin: tools.NewServer(topts), LookupEnv: lookupEnv})
	gw := gateway.New(h, &gateway.Options{Verify: testVerify})
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
	gw.Sync()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &builtinEnv{url: srv.URL}
}

// TestKoreanCalendarsThroughGateway checks the Kakao and NAVER WORKS
// calendar tools through the gateway: their schemas compile, structured
// results validate, and each user's call lands in that user's calendar.
func TestKoreanCalendarsThroughGateway(t *testing.T) {
	tokens := map[string]string{"tok-alice": "alice", "tok-bob": "bob"}
	tests := []struct {
		provider string
		start    func(t *testing.T) (url string, count func(user string) int)
	}{
		{"kakao", func(t *testing.T) (string, func(string) int) {
			f := toolstest.NewKakaoCalendar(t, tokens)
			return f.URL, func(u string) int { return len(f.Events(u, "primary")) }
		}},
		{"naverworks", func(t *testing.T) (string, func(string) int) {
			f := toolstest.NewNaverWorksCalendar(t, tokens)
			return f.URL, func(u string) int { return len(f.Events(u, "")) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			url, count := tt.start(t)
			yaml := "tools:\n  timezone: Asia/Seoul\n  webRead: {enabled: false}\n  calendar:\n    " + tt.provider + ":\n      baseURL: \"${CALENDAR_URL}\"\n"
			e := newCalendarGateway(t, yaml, url, tt.provider)
			prefix := hub.BuiltinName + hub.Separator
			for _, user := range []string{"alice", "bob"} {
				c := e.connect(t, "/mcp", user, "")
				var names []string
				for _, tool := range c.list(t) {
					names = append(names, strings.TrimPrefix(tool.Name, prefix))
				}
				slices.Sort(names)
				if want := []string{"create_calendar_schedule", "get_current_time", "list_calendar_schedules"}; !slices.Equal(names, want) {
					t.Fatalf("tools = %v, want %v", names, want)
				}
				ev := structuredAs[tools.ScheduleOutput](t, mustOK(t, c.call(t, prefix+"create_calendar_schedule",
					map[string]any{"title": user + " 점심", "start": "2026-11-16 12:00", "location": "을지로"}, nil)))
				if ev.Provider != tt.provider || ev.ID == "" || ev.Start != "2026-11-16T12:00:00+09:00" {
					t.Errorf("%s: %+v", user, ev)
				}
				list := structuredAs[tools.ScheduleList](t, mustOK(t, c.call(t, prefix+"list_calendar_schedules", map[string]any{}, nil)))
				if len(list.Events) != 1 || list.Events[0].Title != user+" 점심" || list.Events[0].Location != "을지로" {
					t.Errorf("%s lists %+v", user, list.Events)
				}
				if n := count(user); n != 1 {
					t.Errorf("%s's calendar holds %d events, want 1", user, n)
				}
			}
			anon := e.connect(t, "/mcp", "", "")
			anon.list(t)
			res := anon.call(t, prefix+"create_calendar_schedule", map[string]any{"title": "spoofed", "start": "2026-11-16 12:00"}, mcp.Meta{tools.UserMetaKey: "alice"})
			if !res.IsError || count("alice") != 1 {
				t.Errorf("a caller without a user wrote to alice's calendar: %s", resultText(res))
			}
		})
	}
}
