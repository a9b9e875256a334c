package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/google/go-cmp/cmp"
)

func seoul(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestICalendarGolden(t *testing.T) {
	loc := seoul(t)
	tests := []struct {
		name string
		in   scheduleInput
		loc  *time.Location
	}{
		{"meeting", scheduleInput{Title: "팀 회의, 주간; 계획 \\ 검토", Start: "2026-11-18 15:00", Location: "서울 강남구 테헤란로 1, 3층",
			Description: "안건:\n1. 지난주 회고 — 잘한 점, 아쉬운 점\n2. 다음 분기 계획을 세우고 각 팀의 우선순위를 정리합니다 (긴 줄이 75옥텟에서 접히는지 확인)"}, loc},
		{"all-day", scheduleInput{Title: "Company holiday", Start: "2026-12-24", End: "2026-12-25"}, loc},
		{"utc-weekly", scheduleInput{Title: "Stand-up", Start: "2026-11-18T09:30:00-05:00", End: "2026-11-18T09:45:00-05:00", Recurrence: "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=10"}, time.UTC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := newEvent(tt.in, tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			ev.UID = "0123456789abcdef@switchboard"
			got := icalendar(ev, fixedNow)
			checkFolding(t, got)
			golden := filepath.Join("testdata", tt.name+".ics")
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
				t.Errorf("iCalendar mismatch (-want +got), run with -update if intended:\n%s", diff)
			}
			// A real iCalendar parser reads the text values back.
			cal, err := ical.NewDecoder(strings.NewReader(got)).Decode()
			if err != nil {
				t.Fatal(err)
			}
			e := cal.Events()[0]
			if s, _ := e.Props.Text(ical.PropSummary); s != tt.in.Title {
				t.Errorf("SUMMARY reads back as %q", s)
			}
			if s, _ := e.Props.Text(ical.PropDescription); s != tt.in.Description {
				t.Errorf("DESCRIPTION reads back as %q", s)
			}
		})
	}
}

// checkFolding checks RFC 5545 §3.1: CRLF line ends, at most 75 octets per
// line, folds not inside a UTF-8 sequence.
func checkFolding(t *testing.T, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\r\n") {
		t.Error("does not end with CRLF")
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("fold inside a UTF-8 sequence: %q", l)
		}
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("bare line break in %q", l)
		}
	}
}

func TestFoldLine(t *testing.T) {
	for _, l := range []string{"", "short", strings.Repeat("a", 75), strings.Repeat("a", 76), strings.Repeat("가", 100), "X:" + strings.Repeat("é가😀", 40)} {
		folded := foldLine(l)
		checkFolding(t, folded)
		if unfolded := strings.ReplaceAll(strings.TrimSuffix(folded, "\r\n"), "\r\n ", ""); unfolded != l {
			t.Errorf("unfold(fold(%q)) = %q", l, unfolded)
		}
	}
}

func TestNewEvent(t *testing.T) {
	loc := seoul(t)
	tests := []struct {
		in               scheduleInput
		wantStart, wantE string
		wantErr          string
	}{
		{in: scheduleInput{Title: "a", Start: "2026-11-18 15:00"}, wantStart: "2026-11-18T15:00:00+09:00", wantE: "2026-11-18T16:00:00+09:00"},
		{in: scheduleInput{Title: "a", Start: "2026-11-18T15:00"}, wantStart: "2026-11-18T15:00:00+09:00", wantE: "2026-11-18T16:00:00+09:00"},
		{in: scheduleInput{Title: "a", Start: "2026-11-18T06:00:00Z", End: "2026-11-18 17:30"}, wantStart: "2026-11-18T15:00:00+09:00", wantE: "2026-11-18T17:30:00+09:00"},
		{in: scheduleInput{Title: "a", Start: "2026-11-18 15:00", End: "2026-11-18 14:00"}, wantErr: "before start"},
		{in: scheduleInput{Title: "a", Start: "tomorrow 3pm"}, wantErr: "YYYY-MM-DD HH:MM"},
		{in: scheduleInput{Title: "a", Start: "2026-11-18", End: "2026-11-18 10:00"}, wantErr: "both"},
		{in: scheduleInput{Title: " ", Start: "2026-11-18 15:00"}, wantErr: "title"},
		{in: scheduleInput{Title: "a", Start: "2026-11-18 15:00", Recurrence: "FREQ=DAILY\r\nATTENDEE:x"}, wantErr: "RRULE"},
	}
	for _, tt := range tests {
		ev, err := newEvent(tt.in, loc)
		if tt.wantErr != "" {
			var te *toolError
			if !errors.As(err, &te) || !strings.Contains(te.msg, tt.wantErr) {
				t.Errorf("%+v: error %v, want one mentioning %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tt.in, err)
			continue
		}
		if got := ev.Start.Format(time.RFC3339) + " " + ev.End.Format(time.RFC3339); got != tt.wantStart+" "+tt.wantE {
			t.Errorf("%+v: %s, want %s %s", tt.in, got, tt.wantStart, tt.wantE)
		}
	}
}

// fakeNaverCalendar is NAVER Calendar's createSchedule as WIRE.md describes
// it: JSON served as text/html, 403 / 1403 for users without calendar
// consent. Tokens name users.
type fakeNaverCalendar struct {
	tokens map[string]string // access token -> NAVER user id
	denied map[string]bool   // users who did not consent to calendar access

	mu     sync.Mutex // guards events
	events map[string][]url.Values
}

func (f *fakeNaverCalendar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html;charset=UTF-8")
	reply := func(status int, v any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/calendar/createSchedule.json" {
		reply(http.StatusNotFound, map[string]any{"result": "fail", "code": 404, "message": "not found"})
		return
	}
	user, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		reply(http.StatusUnauthorized, map[string]any{"resultcode": "024", "message": "Authentication failed"})
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("scheduleIcalString") == "" {
		reply(http.StatusInternalServerError, map[string]any{"result": "fail", "code": 1500, "message": "bad request"})
		return
	}
	if f.denied[user] {
		reply(http.StatusForbidden, map[string]any{"result": "fail", "code": 1403, "message": "calendar permission has not been granted"})
		return
	}
	if cal := r.PostForm.Get("calendarId"); cal != "defaultCalendarId" {
		reply(http.StatusNotFound, map[string]any{"result": "fail", "code": 1404, "message": "no such calendar: " + cal})
		return
	}
	f.mu.Lock()
	f.events[user] = append(f.events[user], r.PostForm)
	f.mu.Unlock()
	uid := ""
	for _, l := range strings.Split(r.PostForm.Get("scheduleIcalString"), "\r\n") {
		if v, ok := strings.CutPrefix(l, "UID:"); ok {
			uid = v
		}
	}
	reply(http.StatusOK, map[string]any{"result": "success", "code": 200,
		"returnValue": map[string]any{"calendarId": "cal-" + user, "processType": "create", "icalUid": uid}})
}

func TestNaverCalendarTwoUsers(t *testing.T) {
	fake := &fakeNaverCalendar{
		tokens: map[string]string{"token-alice": "naver-alice", "token-bob": "naver-bob", "token-carol": "naver-carol"},
		denied: map[string]bool{"naver-carol": true},
		events: map[string][]url.Values{},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var tokenCalls sync.Map
	c := connect(t, &Options{
		Calendar: CalendarOptions{Provider: "naver", NaverBaseURL: srv.URL},
		ProviderToken: func(ctx context.Context, userID, provider string) (string, error) {
			tokenCalls.Store(userID+"/"+provider, true)
			switch userID {
			case "alice", "bob", "carol":
				return "token-" + userID, nil
			}
			return "", fmt.Errorf("user %s: %w", userID, ErrNotAuthorized)
		},
	})
	if c.tools[ToolListSchedules] != nil {
		t.Error("list_calendar_schedules is listed for NAVER, which cannot list")
	}
	for _, user := range []string{"alice", "bob"} {
		var got ScheduleOutput
		res := c.call(user, ToolCreateSchedule, map[string]any{"title": user + "의 치과 예약", "start": "2026-11-20 10:00"}, &got)
		wantOK(t, res)
		if got.CalendarID != "cal-naver-"+user || !strings.HasSuffix(got.ID, "@switchboard") || got.Start != "2026-11-20T10:00:00+09:00" || got.End != "2026-11-20T11:00:00+09:00" {
			t.Errorf("%s: result %+v", user, got)
		}
		if !strings.Contains(text(res), got.ID) {
			t.Errorf("text lacks the event id: %s", text(res))
		}
	}
	for _, user := range []string{"alice", "bob"} {
		evs := fake.events["naver-"+user]
		if len(evs) != 1 || !strings.Contains(evs[0].Get("scheduleIcalString"), "SUMMARY:"+user+"의 치과 예약") {
			t.Errorf("%s's NAVER calendar holds %v", user, evs)
		}
		if _, ok := tokenCalls.Load(user + "/naver"); !ok {
			t.Errorf("no token asked for %s", user)
		}
	}

	t.Run("calendar not granted", func(t *testing.T) {
		wantError(t, c.call("carol", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil),
			"not granted", "sign in to Switchboard again with NAVER", "캘린더")
	})
	t.Run("never signed in with NAVER", func(t *testing.T) {
		wantError(t, c.call("dave", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), "sign in to Switchboard with NAVER")
	})
	t.Run("no user", func(t *testing.T) {
		wantError(t, c.call("", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), "signed-in user")
	})
	t.Run("end before start", func(t *testing.T) {
		wantError(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00", "end": "2026-11-20 09:00"}, nil), "before start")
	})
	if n := len(fake.events["naver-alice"]); n != 1 {
		t.Errorf("alice has %d events after the failures, want 1", n)
	}
}

func TestNaverCalendarErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   []string
	}{
		{"403 without code", http.StatusForbidden, `{"result":"fail","message":"forbidden"}`, []string{"not granted"}},
		{"1403 in a 200", http.StatusOK, `{"result":"fail","code":"1403","message":"no permission"}`, []string{"not granted"}},
		{"expired token", http.StatusUnauthorized, `{"resultcode":"024","message":"Authentication failed"}`, []string{"sign in", "again"}},
		{"no calendar", http.StatusNotFound, `{"result":"fail","code":1404}`, []string{"calendarId"}},
		{"server error", http.StatusInternalServerError, `{"result":"fail","code":1500,"message":"internal"}`, []string{"1500", "try again"}},
		{"not JSON", http.StatusBadGateway, `<html>Bad gateway</html>`, []string{"502", "not created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html;charset=UTF-8")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := connect(t, &Options{
				Calendar:      CalendarOptions{Provider: "naver", NaverBaseURL: srv.URL},
				ProviderToken: func(context.Context, string, string) (string, error) { return "tok", nil },
			})
			wantError(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-20 10:00"}, nil), tt.want...)
		})
	}
}

func TestCalendarUnavailable(t *testing.T) {
	got := Unavailable(&Options{Calendar: CalendarOptions{Provider: "naver"}})
	if !strings.Contains(got[ToolCreateSchedule], "sign") {
		t.Errorf("Unavailable = %v", got)
	}
	got = Unavailable(nil)
	for _, name := range []string{ToolWebSearch, ToolCreateSchedule} {
		if got[name] == "" {
			t.Errorf("Unavailable(nil) has no reason for %s: %v", name, got)
		}
	}
	if _, ok := got[ToolWebRead]; ok {
		t.Errorf("web_read is unavailable by default: %v", got)
	}
	c := connect(t, &Options{})
	if diff := cmp.Diff([]string{ToolCurrentTime, ToolWebRead}, c.names()); diff != "" {
		t.Errorf("default tools (-want +got):\n%s", diff)
	}
}
