package tools

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

// apiCalendarFake is what the Kakao and NAVER WORKS tests need of a fake.
type apiCalendarFake struct {
	provider    string
	opts        func(calendarID string) CalendarOptions
	denyConsent func(user string)
	revoke      func(token string)
	rateLimit   func(on bool)
	addCalendar func(user, id string)
	setPageSize func(n int)
	// stored renders user's events in calendar ("" = default) as
	// "title|start|end|zone" in the provider's own wire form.
	stored func(user, calendar string) []string
	// consent are the fragments the missing-consent message must hold.
	consent []string
}

func newKakaoFake(t *testing.T, tokens map[string]string) apiCalendarFake {
	f := toolstest.NewKakaoCalendar(t, tokens)
	return apiCalendarFake{
		provider: ProviderKakao,
		opts: func(id string) CalendarOptions {
			return CalendarOptions{Provider: ProviderKakao, KakaoBaseURL: f.URL, KakaoCalendarID: id}
		},
		denyConsent: f.DenyConsent, revoke: f.RevokeToken, rateLimit: f.SetRateLimited, addCalendar: f.AddCalendar,
		setPageSize: func(n int) { f.PageSize = n },
		stored: func(user, cal string) []string {
			var out []string
			for _, e := range f.Events(user, orDefault(cal, "primary")) {
				out = append(out, strings.Join([]string{e.Title, e.Time.StartAt, e.Time.EndAt, e.Time.TimeZone, fmt.Sprint(e.Time.AllDay), e.RRule}, "|"))
			}
			return out
		},
		consent: []string{"talk_calendar", "sign in to Switchboard again with Kakao", "동의", "톡캘린더"},
	}
}

func newNaverWorksFake(t *testing.T, tokens map[string]string) apiCalendarFake {
	f := toolstest.NewNaverWorksCalendar(t, tokens)
	return apiCalendarFake{
		provider: ProviderNaverWorks,
		opts: func(id string) CalendarOptions {
			return CalendarOptions{Provider: ProviderNaverWorks, NaverWorksBaseURL: f.URL, NaverWorksCalendarID: id}
		},
		denyConsent: f.DenyScope, revoke: f.RevokeToken, rateLimit: f.SetRateLimited, addCalendar: f.AddCalendar,
		setPageSize: func(n int) { f.PageSize = n },
		stored: func(user, cal string) []string {
			var out []string
			for _, e := range f.Events(user, cal) {
				r := ""
				if len(e.Recurrence) > 0 {
					r = e.Recurrence[0]
				}
				out = append(out, strings.Join([]string{e.Summary, e.Start.DateTime + e.Start.Date, e.End.DateTime + e.End.Date, e.Start.TimeZone, fmt.Sprint(e.Start.Date != ""), r}, "|"))
			}
			return out
		},
		consent: []string{"scope calendar", "sign in to Switchboard again with NAVER WORKS", "캘린더", "허용"},
	}
}

var apiCalendarFakes = []struct {
	name string
	new  func(*testing.T, map[string]string) apiCalendarFake
	// want is what create stores for the three events of the test, in the
	// provider's wire form.
	want []string
}{
	{"kakao", newKakaoFake, []string{
		"alice의 치과 예약|2026-11-20T01:00:00Z|2026-11-20T02:00:00Z|Asia/Seoul|false|",
		"창립기념일|2026-11-25T00:00:00Z|2026-11-27T00:00:00Z|Asia/Seoul|true|",
		"주간 회의|2026-11-23T00:30:00Z|2026-11-23T01:00:00Z|Asia/Seoul|false|FREQ=WEEKLY;BYDAY=MO;COUNT=4",
	}},
	{"naverworks", newNaverWorksFake, []string{
		"alice의 치과 예약|2026-11-20T10:00:00|2026-11-20T11:00:00|Asia/Seoul|false|",
		"창립기념일|2026-11-25|2026-11-27||true|",
		"주간 회의|2026-11-23T09:30:00|2026-11-23T10:00:00|Asia/Seoul|false|RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4",
	}},
}

func TestAPICalendars(t *testing.T) {
	for _, tt := range apiCalendarFakes {
		t.Run(tt.name, func(t *testing.T) {
			tokens := map[string]string{"tok-alice": "alice", "tok-bob": "bob", "tok-carol": "carol", "tok-erin": "erin", "tok-frank": "frank"}
			fake := tt.new(t, tokens)
			var asked sync.Map
			c := connect(t, &Options{
				Calendar: fake.opts(""),
				ProviderToken: func(ctx context.Context, userID, provider string) (string, error) {
					asked.Store(userID+"/"+provider, true)
					if userID == "dave" {
						return "", fmt.Errorf("user %s has no %s sign-in: %w", userID, provider, ErrNotAuthorized)
					}
					return "tok-" + userID, nil
				},
			})
			if c.tools[ToolListSchedules] == nil || c.tools[ToolCreateSchedule] == nil {
				t.Fatalf("tools = %v", c.names())
			}

			// Two users write to their own calendars.
			for _, user := range []string{"alice", "bob"} {
				var got ScheduleOutput
				wantOK(t, c.call(user, ToolCreateSchedule, map[string]any{"title": user + "의 치과 예약", "start": "2026-11-20 10:00", "location": "강남역"}, &got))
				if got.Provider != tt.name || got.ID == "" || got.Start != "2026-11-20T10:00:00+09:00" || got.End != "2026-11-20T11:00:00+09:00" || got.Timezone != "Asia/Seoul" {
					t.Errorf("%s: %+v", user, got)
				}
				if _, ok := asked.Load(user + "/" + tt.name); !ok {
					t.Errorf("no %s token asked for %s", tt.name, user)
				}
			}
			wantOK(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "창립기념일", "start": "2026-11-25", "end": "2026-11-26"}, nil))
			wantOK(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "주간 회의", "start": "2026-11-23T09:30:00+09:00", "end": "2026-11-23 10:00", "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=4"}, nil))
			if diff := cmp.Diff(tt.want, fake.stored("alice", "")); diff != "" {
				t.Errorf("alice's calendar (-want +got):\n%s", diff)
			}
			if got := fake.stored("bob", ""); len(got) != 1 || !strings.HasPrefix(got[0], "bob의 치과 예약|") {
				t.Errorf("bob's calendar = %v", got)
			}

			// Listing pages through the provider's answers.
			fake.setPageSize(2)
			var list ScheduleList
			wantOK(t, c.call("alice", ToolListSchedules, map[string]any{"from": "2026-11-18", "to": "2026-11-30"}, &list))
			var got []string
			for _, e := range list.Events {
				got = append(got, e.Title+"@"+e.Start+"~"+e.End)
			}
			want := []string{"alice의 치과 예약@2026-11-20T10:00:00+09:00~2026-11-20T11:00:00+09:00", "주간 회의@2026-11-23T09:30:00+09:00~2026-11-23T10:00:00+09:00", "창립기념일@2026-11-25~2026-11-26"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("alice's events (-want +got):\n%s", diff)
			}
			if len(list.Events) == 3 && (!list.Events[2].AllDay || list.Events[0].Location != "강남역" || list.Events[1].Recurrence != "FREQ=WEEKLY;BYDAY=MO;COUNT=4") {
				t.Errorf("events = %+v", list.Events)
			}
			wantOK(t, c.call("alice", ToolListSchedules, map[string]any{"from": "2026-11-18", "to": "2026-11-30", "limit": 1}, &list))
			if len(list.Events) != 1 || list.Events[0].Title != "alice의 치과 예약" {
				t.Errorf("limit 1: %+v", list.Events)
			}
			wantOK(t, c.call("bob", ToolListSchedules, map[string]any{"from": "2026-11-18", "to": "2026-11-30"}, &list))
			if len(list.Events) != 1 || list.Events[0].Title != "bob의 치과 예약" {
				t.Errorf("bob sees %+v", list.Events)
			}
			// A period longer than one provider request may span.
			wantOK(t, c.call("alice", ToolListSchedules, map[string]any{"from": "2026-10-01", "to": "2027-01-31"}, &list))
			if len(list.Events) != 3 {
				t.Errorf("four months: %d events, want 3", len(list.Events))
			}

			t.Run("missing consent", func(t *testing.T) {
				fake.denyConsent("carol")
				wantError(t, c.call("carol", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), fake.consent...)
				wantError(t, c.call("carol", ToolListSchedules, map[string]any{}, nil), fake.consent...)
			})
			t.Run("expired token", func(t *testing.T) {
				fake.revoke("tok-erin")
				wantError(t, c.call("erin", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), "sign-in", "expired", "sign in to Switchboard with", "again")
				wantError(t, c.call("erin", ToolListSchedules, map[string]any{}, nil), "expired")
			})
			t.Run("never signed in", func(t *testing.T) {
				wantError(t, c.call("dave", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), "sign in to Switchboard with")
			})
			t.Run("rate limited", func(t *testing.T) {
				fake.rateLimit(true)
				defer fake.rateLimit(false)
				wantError(t, c.call("frank", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), "rate limiting", "try again later")
			})
			if n := len(fake.stored("alice", "")); n != 3 {
				t.Errorf("alice has %d events after the failures, want 3", n)
			}

			t.Run("configured calendar", func(t *testing.T) {
				fake.addCalendar("alice", "team-cal")
				cc := connect(t, &Options{Calendar: fake.opts("team-cal"), ProviderToken: func(_ context.Context, u, _ string) (string, error) { return "tok-" + u, nil }})
				var out ScheduleOutput
				wantOK(t, cc.call("alice", ToolCreateSchedule, map[string]any{"title": "팀 일정", "start": "2026-11-21 14:00"}, &out))
				if out.CalendarID != "team-cal" || len(fake.stored("alice", "team-cal")) != 1 {
					t.Errorf("created %+v; team-cal holds %v", out, fake.stored("alice", "team-cal"))
				}
				// Bob has no such calendar.
				wantError(t, cc.call("bob", ToolCreateSchedule, map[string]any{"title": "팀 일정", "start": "2026-11-21 14:00"}, nil), "team-cal")
			})
		})
	}
}

func TestKakaoCalendarSpecifics(t *testing.T) {
	fake := toolstest.NewKakaoCalendar(t, map[string]string{"tok-alice": "alice"})
	fake.AddCalendar("alice", "user_sub")
	c := connect(t, &Options{
		Calendar:      CalendarOptions{Provider: ProviderKakao, KakaoBaseURL: fake.URL},
		ProviderToken: func(_ context.Context, u, _ string) (string, error) { return "tok-" + u, nil },
	})
	wantError(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:03"}, nil), "five-minute", "5분")
	if n := len(fake.Events("alice", "primary")); n != 0 {
		t.Errorf("an off-step event was sent: %d", n)
	}
	// Without a configured calendar, listing covers every calendar the
	// user keeps (from the calendar list).
	cs := connect(t, &Options{
		Calendar:      CalendarOptions{Provider: ProviderKakao, KakaoBaseURL: fake.URL, KakaoCalendarID: "user_sub"},
		ProviderToken: func(_ context.Context, u, _ string) (string, error) { return "tok-" + u, nil },
	})
	wantOK(t, cs.call("alice", ToolCreateSchedule, map[string]any{"title": "서브", "start": "2026-11-19 09:00"}, nil))
	wantOK(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "기본", "start": "2026-11-19 08:00"}, nil))
	var list ScheduleList
	wantOK(t, c.call("alice", ToolListSchedules, map[string]any{"from": "2026-11-19", "to": "2026-11-19"}, &list))
	if len(list.Events) != 2 || list.Events[0].Title != "기본" || list.Events[1].Title != "서브" {
		t.Errorf("events = %+v", list.Events)
	}
}

// TestAPICalendarGolden pins the request bodies Kakao and NAVER WORKS get.
func TestAPICalendarGolden(t *testing.T) {
	loc := seoul(t)
	inputs := []struct {
		name string
		in   scheduleInput
	}{
		{"meeting", scheduleInput{Title: "팀 회의, 주간; 계획", Start: "2026-11-18 15:00", End: "2026-11-18 16:30", Location: "서울 강남구 테헤란로 1, 3층", Description: "안건:\n1. 회고"}},
		{"all-day", scheduleInput{Title: "Company holiday", Start: "2026-12-24", End: "2026-12-25"}},
		{"weekly", scheduleInput{Title: "Stand-up", Start: "2026-11-18T09:30:00+09:00", End: "2026-11-18T09:45:00+09:00", Recurrence: "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=10"}},
	}
	encoders := []struct {
		name string
		enc  func(*event) ([]byte, error)
	}{{"kakao", kakaoEventJSON}, {"naverworks", worksEventJSON}}
	for _, e := range encoders {
		for _, tt := range inputs {
			t.Run(e.name+"/"+tt.name, func(t *testing.T) {
				ev, err := newEvent(tt.in, loc)
				if err != nil {
					t.Fatal(err)
				}
				b, err := e.enc(ev)
				if err != nil {
					t.Fatal(err)
				}
				got := string(b) + "\n"
				golden := filepath.Join("testdata", e.name+"-"+tt.name+".json")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(want), got); diff != "" {
					t.Errorf("mismatch (-want +got), run with -update if intended:\n%s", diff)
				}
			})
		}
	}
}

func TestAPICalendarErrors(t *testing.T) {
	tests := []struct {
		name, provider string
		status         int
		body           string
		want           []string
	}{
		{"kakao app not permitted", ProviderKakao, http.StatusForbidden, `{"msg":"App is not permitted","code":-3}`, []string{"추가 기능 신청", "administrator"}},
		{"kakao consent via required_scopes", ProviderKakao, http.StatusForbidden, `{"msg":"insufficient scopes.","code":-402,"required_scopes":["talk_calendar"]}`, []string{"talk_calendar", "동의"}},
		{"kakao expired", ProviderKakao, http.StatusUnauthorized, `{"msg":"this access token does not exist","code":-401}`, []string{"expired", "again"}},
		{"kakao not a talk user", ProviderKakao, http.StatusBadRequest, `{"msg":"not registered","code":-501}`, []string{"Kakao Talk user"}},
		{"kakao quota in a 400", ProviderKakao, http.StatusBadRequest, `{"msg":"API limit has been exceeded","code":-10}`, []string{"rate limiting"}},
		{"kakao bad parameter", ProviderKakao, http.StatusBadRequest, `{"msg":"title is too long","code":-2}`, []string{"rejected", "title is too long"}},
		{"kakao maintenance", ProviderKakao, http.StatusServiceUnavailable, `{"msg":"service check","code":-9798}`, []string{"maintenance"}},
		{"kakao server error", ProviderKakao, http.StatusInternalServerError, `<html>oops</html>`, []string{"HTTP 500", "try again"}},
		{"naverworks expired", ProviderNaverWorks, http.StatusUnauthorized, `{"code":"UNAUTHORIZED","description":"Authentication failed"}`, []string{"expired", "NAVER WORKS again"}},
		{"naverworks scope", ProviderNaverWorks, http.StatusForbidden, `{"code":"FORBIDDEN","description":"Not allowed scope"}`, []string{"scope calendar", "캘린더"}},
		{"naverworks rate limit", ProviderNaverWorks, http.StatusTooManyRequests, `{"code":"TOO_MANY_REQUESTS","description":"slow down"}`, []string{"rate limiting", "Retry-After: 7"}},
		{"naverworks default missing", ProviderNaverWorks, http.StatusNotFound, `{"code":"NOT_FOUND","description":"no calendar"}`, []string{"no default calendar"}},
		{"naverworks server error", ProviderNaverWorks, http.StatusBadGateway, `{"code":"BAD_GATEWAY"}`, []string{"HTTP 502", "BAD_GATEWAY"}},
		{"naverworks not JSON", ProviderNaverWorks, http.StatusCreated, `<html>created?</html>`, []string{"other than JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			opts := CalendarOptions{Provider: tt.provider, KakaoBaseURL: srv.URL, NaverWorksBaseURL: srv.URL}
			c := connect(t, &Options{Calendar: opts, ProviderToken: func(context.Context, string, string) (string, error) { return "tok", nil }})
			wantError(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), tt.want...)
		})
	}
}

// TestKakaoNextLinkStaysOnHost: a next-page link to another host is not
// followed, so the user's token goes only to Kakao's API.
func TestKakaoNextLinkStaysOnHost(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.Write([]byte(`{"events":[]}`))
	}))
	defer other.Close()
	kakao := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"events":[],"has_next":true,"next":%q}`, other.URL+"/v2/api/calendar/events?offset=1")
	}))
	defer kakao.Close()
	c := connect(t, &Options{
		Calendar:      CalendarOptions{Provider: ProviderKakao, KakaoBaseURL: kakao.URL, KakaoCalendarID: "primary"},
		ProviderToken: func(context.Context, string, string) (string, error) { return "tok", nil },
	})
	wantError(t, c.call("alice", ToolListSchedules, map[string]any{}, nil), "another host")
	if leaked.Load() {
		t.Error("the token was sent to the next link's host")
	}
}

func TestAPICalendarUnavailable(t *testing.T) {
	for _, p := range []string{ProviderKakao, ProviderNaverWorks} {
		got := Unavailable(&Options{Calendar: CalendarOptions{Provider: p}})
		if !strings.Contains(got[ToolCreateSchedule], "signed in") || !strings.Contains(got[ToolListSchedules], "signed in") {
			t.Errorf("%s without ProviderToken: %v", p, got)
		}
	}
}
