package toolstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// KakaoCalendar is Kakao Talk Calendar's REST API on kapi.kakao.com, as
// Kakao Developers documents it ("Talk Calendar" REST API), with each
// user's Kakao Login access token:
//
//   - GET /v2/api/calendar/calendars → {"calendars":[{"id":"primary",
//     "name":"내 캘린더","color":"LAVENDER"},…],"subscribe_calendars":[]}.
//   - POST /v2/api/calendar/create/event, form fields calendar_id (default
//     primary) and event (JSON: title, time{start_at, end_at, time_zone,
//     all_day, lunar}, rrule, description, location{name}) → 200
//     {"event_id":"…"}. start_at / end_at must be UTC ("…Z") on five-minute
//     steps; all-day events run from 00:00Z to 00:00Z of a later day.
//   - GET /v2/api/calendar/events?calendar_id&from&to&limit: from / to UTC
//     RFC 3339 at most 31 days apart, limit 1..100 (default 100) →
//     {"events":[…],"has_next":bool,"next":"<absolute URL of the next page>"}.
//   - Errors are {"msg","code"}: -401 with HTTP 401 (no or invalid token),
//     -402 with HTTP 403 and "required_scopes":["talk_calendar"] (consent
//     item not agreed), -2 with HTTP 400 (bad parameter), -10 with HTTP 429
//     here (quota; Kakao's HTTP status for it is not documented in what the
//     client relies on, which branches on the code).
//
// Tokens name users; PageSize (default 100) caps events per page so tests
// can exercise paging.
type KakaoCalendar struct {
	URL      string
	PageSize int

	mu        sync.Mutex                        // guards the fields below
	tokens    map[string]string                 // access token -> Kakao user id
	noConsent map[string]bool                   // users without talk_calendar
	calendars map[string][]string               // user -> own calendar ids (primary first)
	events    map[string]map[string][]KakaoItem // user -> calendar id -> events
	limited   bool                              // answer -10 to everything
	nextID    int
}

// KakaoItem is one stored event, in Kakao's JSON shape.
type KakaoItem struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	CalendarID string `json:"calendar_id"`
	Type       string `json:"type"`
	Time       struct {
		StartAt  string `json:"start_at"`
		EndAt    string `json:"end_at"`
		TimeZone string `json:"time_zone"`
		AllDay   bool   `json:"all_day"`
		Lunar    bool   `json:"lunar"`
	} `json:"time"`
	RRule       string `json:"rrule,omitempty"`
	Description string `json:"description,omitempty"`
	Location    *struct {
		Name string `json:"name"`
	} `json:"location,omitempty"`
}

// NewKakaoCalendar starts the fake. tokens maps access tokens to user ids;
// every user has the "primary" calendar.
func NewKakaoCalendar(t testing.TB, tokens map[string]string) *KakaoCalendar {
	f := &KakaoCalendar{PageSize: 100, tokens: tokens, noConsent: map[string]bool{}, calendars: map[string][]string{}, events: map[string]map[string][]KakaoItem{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// DenyConsent makes user's calls fail with -402 (talk_calendar not agreed).
func (f *KakaoCalendar) DenyConsent(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noConsent[user] = true
}

// AddCalendar gives user a sub-calendar.
func (f *KakaoCalendar) AddCalendar(user, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calendars[user] = append(f.calendarsLocked(user), id)
}

// RevokeToken makes token invalid (-401), as after expiry.
func (f *KakaoCalendar) RevokeToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// SetRateLimited makes every call fail with -10 until called with false.
func (f *KakaoCalendar) SetRateLimited(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limited = on
}

// Events returns user's events in calendar.
func (f *KakaoCalendar) Events(user, calendar string) []KakaoItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]KakaoItem(nil), f.events[user][calendar]...)
}

func (f *KakaoCalendar) calendarsLocked(user string) []string {
	if c, ok := f.calendars[user]; ok {
		return c
	}
	return []string{"primary"}
}

func kakaoReply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func kakaoFail(w http.ResponseWriter, status, code int, msg string) {
	kakaoReply(w, status, map[string]any{"msg": msg, "code": code})
}

func (f *KakaoCalendar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, known := f.tokens[tok]
	switch {
	case !ok || !known:
		kakaoFail(w, http.StatusUnauthorized, -401, "this access token does not exist")
		return
	case f.limited:
		kakaoFail(w, http.StatusTooManyRequests, -10, "API limit has been exceeded")
		return
	case f.noConsent[user]:
		kakaoReply(w, http.StatusForbidden, map[string]any{"msg": "[talk_calendar] insufficient scopes.", "code": -402,
			"api_type": "CALENDAR", "required_scopes": []string{"talk_calendar"}, "allowed_scopes": []string{"profile_nickname", "account_email"}})
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/api/calendar/calendars":
		var cals []map[string]any
		for _, id := range f.calendarsLocked(user) {
			name := id
			if id == "primary" {
				name = "내 캘린더"
			}
			cals = append(cals, map[string]any{"id": id, "name": name, "color": "LAVENDER", "reminder": 15, "reminder_all_day": 540})
		}
		kakaoReply(w, http.StatusOK, map[string]any{"calendars": cals, "subscribe_calendars": []any{}})
	case r.Method == http.MethodPost && r.URL.Path == "/v2/api/calendar/create/event":
		f.createLocked(w, r, user)
	case r.Method == http.MethodGet && r.URL.Path == "/v2/api/calendar/events":
		f.listLocked(w, r, user)
	default:
		kakaoFail(w, http.StatusNotFound, -1, "unknown API "+r.URL.Path)
	}
}

func (f *KakaoCalendar) hasCalendarLocked(user, id string) bool {
	for _, c := range f.calendarsLocked(user) {
		if c == id {
			return true
		}
	}
	return false
}

// kakaoUTC parses a UTC RFC 3339 time on a five-minute step.
func kakaoUTC(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil && strings.HasSuffix(s, "Z") && t.Minute()%5 == 0 && t.Second() == 0
}

func (f *KakaoCalendar) createLocked(w http.ResponseWriter, r *http.Request, user string) {
	if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		kakaoFail(w, http.StatusBadRequest, -2, "form body expected")
		return
	}
	cal := r.PostForm.Get("calendar_id")
	if cal == "" {
		cal = "primary"
	}
	if !f.hasCalendarLocked(user, cal) {
		kakaoFail(w, http.StatusBadRequest, -2, "invalid calendar_id: "+cal)
		return
	}
	var ev KakaoItem
	if err := json.Unmarshal([]byte(r.PostForm.Get("event")), &ev); err != nil || ev.Title == "" {
		kakaoFail(w, http.StatusBadRequest, -2, "event is not valid JSON with a title")
		return
	}
	start, ok1 := kakaoUTC(ev.Time.StartAt)
	end, ok2 := kakaoUTC(ev.Time.EndAt)
	if !ok1 || !ok2 || end.Before(start) {
		kakaoFail(w, http.StatusBadRequest, -2, "start_at and end_at must be UTC on five-minute steps, end after start")
		return
	}
	if ev.Time.AllDay && (start.Hour() != 0 || start.Minute() != 0 || end.Hour() != 0 || end.Minute() != 0 || !end.After(start)) {
		kakaoFail(w, http.StatusBadRequest, -2, "all-day events run from 00:00Z to 00:00Z")
		return
	}
	f.nextID++
	ev.ID = fmt.Sprintf("kev-%d", f.nextID)
	ev.CalendarID, ev.Type = cal, "USER"
	if f.events[user] == nil {
		f.events[user] = map[string][]KakaoItem{}
	}
	f.events[user][cal] = append(f.events[user][cal], ev)
	kakaoReply(w, http.StatusOK, map[string]any{"event_id": ev.ID})
}

func (f *KakaoCalendar) listLocked(w http.ResponseWriter, r *http.Request, user string) {
	q := r.URL.Query()
	cal := q.Get("calendar_id")
	if cal == "" {
		cal = "primary"
	}
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	if err1 != nil || err2 != nil || !strings.HasSuffix(q.Get("from"), "Z") || !strings.HasSuffix(q.Get("to"), "Z") || !to.After(from) || to.Sub(from) > 31*24*time.Hour {
		kakaoFail(w, http.StatusBadRequest, -2, "from and to must be UTC, at most 31 days apart")
		return
	}
	if !f.hasCalendarLocked(user, cal) {
		kakaoFail(w, http.StatusBadRequest, -2, "invalid calendar_id: "+cal)
		return
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			kakaoFail(w, http.StatusBadRequest, -2, "limit must be 1..100")
			return
		}
		limit = n
	}
	limit = min(limit, f.PageSize)
	var match []KakaoItem
	for _, e := range f.events[user][cal] {
		s, _ := time.Parse(time.RFC3339, e.Time.StartAt)
		en, _ := time.Parse(time.RFC3339, e.Time.EndAt)
		if s.Before(to) && en.After(from) {
			match = append(match, e)
		}
	}
	sort.SliceStable(match, func(i, j int) bool { return match[i].Time.StartAt < match[j].Time.StartAt })
	offset, _ := strconv.Atoi(q.Get("offset"))
	page := match[min(offset, len(match)):]
	resp := map[string]any{"has_next": false}
	if len(page) > limit {
		page = page[:limit]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("offset", strconv.Itoa(offset+limit))
		resp["has_next"] = true
		resp["next"] = f.URL + r.URL.Path + "?" + next.Encode()
	}
	resp["events"] = append([]KakaoItem{}, page...)
	kakaoReply(w, http.StatusOK, resp)
}
