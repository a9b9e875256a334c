package toolstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// NaverWorksCalendar is the NAVER WORKS API 2.0 calendar
// (https://www.worksapis.com/v1.0, developers.worksmobile.com "Calendar
// API") for users' own OAuth tokens:
//
//   - POST /users/me/calendar/events (default calendar) and
//     /users/me/calendars/{calendarId}/events, JSON body
//     {"eventComponents":[{"summary","description","location","start":
//     {"dateTime":"2026-11-18T15:00:00","timeZone":"Asia/Seoul"} or
//     {"date":"2026-11-18"},"end":{…},"recurrence":["RRULE:…"]}],
//     "sendNotification":bool} → 201 with the stored eventComponents, each
//     with its assigned eventId.
//   - GET the same paths with fromDateTime / untilDateTime
//     (YYYY-MM-DDThh:mm:ss±hh:mm) → {"events":[{"eventComponents":[…]}],
//     "responseMetaData":{"nextCursor":"…"}}; cursor asks for the next
//     page (PageSize events per page, default 100).
//   - Errors {"code","description"}: 401 UNAUTHORIZED (unknown token), 403
//     FORBIDDEN (token without the calendar scope), 404 NOT_FOUND (not the
//     user's calendar), 429 TOO_MANY_REQUESTS, 400 INVALID_PARAMETER.
type NaverWorksCalendar struct {
	URL      string
	PageSize int

	mu       sync.Mutex                              // guards the fields below
	tokens   map[string]string                       // access token -> user id
	noScope  map[string]bool                         // users whose token lacks calendar
	events   map[string]map[string][]NaverWorksEvent // user -> calendar id ("" = default) -> events
	calendar map[string][]string                     // user -> extra calendar ids
	limited  bool
	nextID   int
}

// NaverWorksTime is a start or end.
type NaverWorksTime struct {
	DateTime string `json:"dateTime,omitempty"`
	TimeZone string `json:"timeZone,omitempty"`
	Date     string `json:"date,omitempty"`
}

// NaverWorksEvent is one event component.
type NaverWorksEvent struct {
	EventID     string          `json:"eventId"`
	Summary     string          `json:"summary"`
	Description string          `json:"description,omitempty"`
	Location    string          `json:"location,omitempty"`
	Start       NaverWorksTime  `json:"start"`
	End         *NaverWorksTime `json:"end,omitempty"`
	Recurrence  []string        `json:"recurrence,omitempty"`
}

// NewNaverWorksCalendar starts the fake; tokens maps access tokens to users.
func NewNaverWorksCalendar(t testing.TB, tokens map[string]string) *NaverWorksCalendar {
	f := &NaverWorksCalendar{PageSize: 100, tokens: tokens, noScope: map[string]bool{}, events: map[string]map[string][]NaverWorksEvent{}, calendar: map[string][]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/v1.0"
	return f
}

// DenyScope makes user's token lack the calendar scope (403).
func (f *NaverWorksCalendar) DenyScope(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noScope[user] = true
}

// AddCalendar gives user a calendar besides the default one.
func (f *NaverWorksCalendar) AddCalendar(user, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calendar[user] = append(f.calendar[user], id)
}

// RevokeToken makes token unknown (401), as after expiry.
func (f *NaverWorksCalendar) RevokeToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// SetRateLimited makes every call answer 429.
func (f *NaverWorksCalendar) SetRateLimited(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limited = on
}

// Events returns user's events in calendar ("" = the default calendar).
func (f *NaverWorksCalendar) Events(user, calendar string) []NaverWorksEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]NaverWorksEvent(nil), f.events[user][calendar]...)
}

func worksFail(w http.ResponseWriter, status int, code, desc string) {
	kakaoReply(w, status, map[string]any{"code": code, "description": desc})
}

// worksInstant is a start or end as an instant (dates at midnight in Seoul).
func worksInstant(t NaverWorksTime) (time.Time, bool) {
	if t.Date != "" {
		d, err := time.Parse(time.DateOnly, t.Date)
		return d, err == nil && t.DateTime == ""
	}
	loc, err := time.LoadLocation(t.TimeZone)
	if err != nil || t.TimeZone == "" {
		return time.Time{}, false
	}
	v, err := time.ParseInLocation("2006-01-02T15:04:05", t.DateTime, loc)
	return v, err == nil
}

func (f *NaverWorksCalendar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	user, known := f.tokens[tok]
	switch {
	case !ok || !known:
		worksFail(w, http.StatusUnauthorized, "UNAUTHORIZED", "Authentication failed")
		return
	case f.limited:
		w.Header().Set("Retry-After", "30")
		worksFail(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Too many requests")
		return
	case f.noScope[user]:
		worksFail(w, http.StatusForbidden, "FORBIDDEN", "Not allowed scope: calendar")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/users/me/")
	cal := ""
	switch {
	case ok && rest == "calendar/events":
	case ok && strings.HasPrefix(rest, "calendars/") && strings.HasSuffix(rest, "/events"):
		cal = strings.TrimSuffix(strings.TrimPrefix(rest, "calendars/"), "/events")
		found := false
		for _, c := range f.calendar[user] {
			found = found || c == cal
		}
		if !found {
			worksFail(w, http.StatusNotFound, "NOT_FOUND", "calendar not found")
			return
		}
	default:
		worksFail(w, http.StatusNotFound, "NOT_FOUND", "no such API")
		return
	}
	switch r.Method {
	case http.MethodPost:
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			worksFail(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "application/json expected")
			return
		}
		var body struct {
			EventComponents []NaverWorksEvent `json:"eventComponents"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.EventComponents) == 0 {
			worksFail(w, http.StatusBadRequest, "INVALID_PARAMETER", "eventComponents is required")
			return
		}
		ev := body.EventComponents[0]
		start, ok1 := worksInstant(ev.Start)
		ok2 := ev.End != nil
		var end time.Time
		if ok2 {
			end, ok2 = worksInstant(*ev.End)
		}
		if ev.Summary == "" || !ok1 || !ok2 || end.Before(start) || (ev.Start.Date != "") != (ev.End.Date != "") {
			worksFail(w, http.StatusBadRequest, "INVALID_PARAMETER", "summary, start and end are required; end must not be before start")
			return
		}
		f.nextID++
		ev.EventID = fmt.Sprintf("works-ev-%d", f.nextID)
		if f.events[user] == nil {
			f.events[user] = map[string][]NaverWorksEvent{}
		}
		f.events[user][cal] = append(f.events[user][cal], ev)
		kakaoReply(w, http.StatusCreated, map[string]any{"eventComponents": []NaverWorksEvent{ev}})
	case http.MethodGet:
		q := r.URL.Query()
		from, err1 := time.Parse(time.RFC3339, q.Get("fromDateTime"))
		until, err2 := time.Parse(time.RFC3339, q.Get("untilDateTime"))
		if err1 != nil || err2 != nil || !until.After(from) {
			worksFail(w, http.StatusBadRequest, "INVALID_PARAMETER", "fromDateTime and untilDateTime are required")
			return
		}
		var match []NaverWorksEvent
		for _, e := range f.events[user][cal] {
			s, _ := worksInstant(e.Start)
			en, _ := worksInstant(*e.End)
			if s.Before(until) && en.After(from) {
				match = append(match, e)
			}
		}
		sort.SliceStable(match, func(i, j int) bool { return match[i].EventID < match[j].EventID })
		offset, _ := strconv.Atoi(q.Get("cursor"))
		page := match[min(offset, len(match)):]
		meta := map[string]any{}
		if len(page) > f.PageSize {
			page = page[:f.PageSize]
			meta["nextCursor"] = strconv.Itoa(offset + f.PageSize)
		}
		events := []map[string]any{}
		for _, e := range page {
			events = append(events, map[string]any{"eventComponents": []NaverWorksEvent{e}})
		}
		kakaoReply(w, http.StatusOK, map[string]any{"events": events, "responseMetaData": meta})
	default:
		worksFail(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method)
	}
}
