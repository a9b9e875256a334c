package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// naverWorksCalendar is the NAVER WORKS API 2.0 calendar, called with each
// user's own NAVER WORKS sign-in token (scope calendar; calendar.read for
// listing). What it relies on (developers.worksmobile.com, Calendar API):
//
//   - POST {base}/users/me/calendar/events (the default calendar) or
//     /users/me/calendars/{calendarId}/events, Content-Type
//     application/json, body {"eventComponents":[{"summary","description",
//     "location","start":{"dateTime":"2026-11-18T15:00:00","timeZone":
//     "Asia/Seoul"} or {"date":"2026-11-18"},"end":{…},"recurrence":
//     ["RRULE:…"]}],"sendNotification":false}; the answer (201) carries
//     the stored eventComponents with the assigned eventId. All-day end dates
//     are exclusive, as in iCalendar (unverified; Switchboard sends the day
//     after the last).
//   - GET the same paths with fromDateTime / untilDateTime
//     (YYYY-MM-DDThh:mm:ss±hh:mm) → {"events":[{"eventComponents":[…]}],
//     "responseMetaData":{"nextCursor":"…"}}; a nextCursor is sent back as
//     cursor (NAVER WORKS' common paging; unverified for events, handled
//     when present).
//   - Errors: {"code":"UNAUTHORIZED","description"} with 401 (expired or
//     revoked token), 403 ("FORBIDDEN" / "ACCESS_DENIED": the token lacks the
//     calendar scope, or the calendar is not the user's), 404 (no such
//     calendar), 429 (rate limit), 5xx.
type naverWorksCalendar struct {
	base, calendarID string // calendarID "" = the user's default calendar
	client           *http.Client
	token            func(ctx context.Context, userID, provider string) (string, error)
}

var (
	_ calendarProvider = (*naverWorksCalendar)(nil)
	_ eventLister      = (*naverWorksCalendar)(nil)
)

const naverWorksAPI = "https://www.worksapis.com/v1.0"

// naverWorksScopeHelp tells a user how to grant the calendar scope.
const naverWorksScopeHelp = "To fix it, sign in to Switchboard again with NAVER WORKS and allow calendar access when asked. " +
	"If it still fails, the administrator must add the calendar and calendar.read scopes to the Switchboard app in the NAVER WORKS Developer Console and to the sign-in's scopes. " +
	"(NAVER WORKS 캘린더 권한(calendar)이 없습니다: NAVER WORKS로 다시 로그인하여 캘린더 접근을 허용해 주세요.)"

type worksTime struct {
	DateTime string `json:"dateTime,omitempty"`
	TimeZone string `json:"timeZone,omitempty"`
	Date     string `json:"date,omitempty"`
}

type worksEvent struct {
	EventID     string     `json:"eventId,omitempty"`
	Summary     string     `json:"summary"`
	Description string     `json:"description,omitempty"`
	Location    string     `json:"location,omitempty"`
	Start       worksTime  `json:"start"`
	End         *worksTime `json:"end,omitempty"`
	Recurrence  []string   `json:"recurrence,omitempty"`
}

func (n *naverWorksCalendar) eventsURL() string {
	base := strings.TrimRight(n.base, "/") + "/users/me"
	if n.calendarID == "" {
		return base + "/calendar/events"
	}
	return base + "/calendars/" + url.PathEscape(n.calendarID) + "/events"
}

func (n *naverWorksCalendar) do(ctx context.Context, userID, method, u string, body []byte, out any) error {
	token, err := n.token(ctx, userID, ProviderNaverWorks)
	if err != nil {
		if notAuthorized(err) {
			return fail(err, "your NAVER WORKS calendar needs your NAVER WORKS account: sign in to Switchboard with NAVER WORKS and allow calendar access. (NAVER WORKS 계정으로 로그인해 주세요.)")
		}
		return fail(err, "your NAVER WORKS sign-in could not be used (it may have expired): sign in to Switchboard with NAVER WORKS again")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fail(err, "the calendar is misconfigured: bad NAVER WORKS base URL")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fail(err, "NAVER WORKS could not be reached; try again later")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fail(err, "NAVER WORKS' answer could not be read; try again")
	}
	if resp.StatusCode/100 == 2 {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fail(fmt.Errorf("naverworks calendar: %w; body: %s", err, excerpt(string(b), 200)), "NAVER WORKS answered with something other than JSON")
		}
		return nil
	}
	var e struct {
		Code        string `json:"code"`
		Description string `json:"description"`
	}
	_ = json.Unmarshal(b, &e)
	cause := fmt.Errorf("naverworks calendar: HTTP %d, code %s: %s", resp.StatusCode, e.Code, excerpt(e.Description, 200))
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fail(cause, "NAVER WORKS did not accept your sign-in (it may have expired or been revoked): sign in to Switchboard with NAVER WORKS again")
	case http.StatusForbidden:
		return fail(cause, "NAVER WORKS refused: Switchboard has no access to your NAVER WORKS calendar (scope calendar). %s", naverWorksScopeHelp)
	case http.StatusNotFound:
		if n.calendarID != "" {
			return fail(cause, "NAVER WORKS has no calendar %q for you: the administrator should check tools.calendar.naverworks.calendarId (leave it out for each user's default calendar)", n.calendarID)
		}
		return fail(cause, "NAVER WORKS found no default calendar for you (HTTP 404)")
	case http.StatusTooManyRequests:
		return fail(cause, "NAVER WORKS is rate limiting requests; try again later%s", retryAfter(resp))
	case http.StatusBadRequest:
		return fail(cause, "NAVER WORKS rejected the request: %s", orDefault(excerpt(e.Description, 200), e.Code))
	default:
		return fail(cause, "NAVER WORKS calendar failed (HTTP %d, %s); try again later", resp.StatusCode, orDefault(e.Code, "no code"))
	}
}

func worksTimes(ev *event) (worksTime, worksTime) {
	if ev.AllDay {
		return worksTime{Date: ev.Start.Format(time.DateOnly)}, worksTime{Date: ev.End.Format(time.DateOnly)}
	}
	const local = "2006-01-02T15:04:05"
	zone := ev.Zone.String()
	return worksTime{DateTime: ev.Start.Format(local), TimeZone: zone}, worksTime{DateTime: ev.End.Format(local), TimeZone: zone}
}

// worksEventJSON is the create request body for ev.
func worksEventJSON(ev *event) ([]byte, error) {
	start, end := worksTimes(ev)
	we := worksEvent{Summary: ev.Summary, Description: ev.Description, Location: ev.Location, Start: start, End: &end}
	if ev.RRule != "" {
		we.Recurrence = []string{"RRULE:" + ev.RRule}
	}
	body, err := json.Marshal(map[string]any{"eventComponents": []worksEvent{we}, "sendNotification": false})
	if err != nil {
		return nil, fail(err, "the event could not be encoded")
	}
	return body, nil
}

func (n *naverWorksCalendar) create(ctx context.Context, userID string, ev *event, _ string) (*ScheduleOutput, error) {
	body, err := worksEventJSON(ev)
	if err != nil {
		return nil, err
	}
	var r struct {
		EventComponents []worksEvent `json:"eventComponents"`
	}
	if err := n.do(ctx, userID, http.MethodPost, n.eventsURL(), body, &r); err != nil {
		return nil, err
	}
	if len(r.EventComponents) == 0 || r.EventComponents[0].EventID == "" {
		return nil, fail(nil, "NAVER WORKS answered without an event id; the event may or may not have been created")
	}
	return &ScheduleOutput{ID: r.EventComponents[0].EventID, CalendarID: orDefault(n.calendarID, "default")}, nil
}

func (n *naverWorksCalendar) list(ctx context.Context, userID string, from, to time.Time, limit int) ([]ScheduleItem, error) {
	var items []ScheduleItem
	for start := from; start.Before(to); start = start.Add(kakaoMaxSpan) {
		end := start.Add(kakaoMaxSpan)
		if end.After(to) {
			end = to
		}
		q := url.Values{"fromDateTime": {start.Format(time.RFC3339)}, "untilDateTime": {end.Format(time.RFC3339)}}
		for pages := 0; pages < 50; pages++ {
			var r struct {
				Events []struct {
					EventComponents []worksEvent `json:"eventComponents"`
				} `json:"events"`
				ResponseMetaData struct {
					NextCursor string `json:"nextCursor"`
				} `json:"responseMetaData"`
			}
			if err := n.do(ctx, userID, http.MethodGet, n.eventsURL()+"?"+q.Encode(), nil, &r); err != nil {
				return nil, err
			}
			for _, e := range r.Events {
				// The first component is the event; further ones are
				// exceptions of a recurring event.
				if len(e.EventComponents) > 0 {
					items = append(items, e.EventComponents[0].item())
				}
			}
			if r.ResponseMetaData.NextCursor == "" {
				break
			}
			q.Set("cursor", r.ResponseMetaData.NextCursor)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Start < items[j].Start })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

func (e worksEvent) item() ScheduleItem {
	it := ScheduleItem{ID: e.EventID, Title: e.Summary, Description: e.Description, Location: e.Location}
	for _, r := range e.Recurrence {
		if v, ok := strings.CutPrefix(r, "RRULE:"); ok {
			it.Recurrence = v
		}
	}
	render := func(t worksTime, allDayEnd bool) string {
		if t.Date != "" {
			if d, err := time.Parse(time.DateOnly, t.Date); err == nil && allDayEnd {
				return d.AddDate(0, 0, -1).Format(time.DateOnly)
			}
			return t.Date
		}
		loc, err := time.LoadLocation(orDefault(t.TimeZone, "Asia/Seoul"))
		if err != nil {
			loc = time.UTC
		}
		if v, err := time.ParseInLocation("2006-01-02T15:04:05", t.DateTime, loc); err == nil {
			return v.Format(time.RFC3339)
		}
		if v, err := time.Parse(time.RFC3339, t.DateTime); err == nil {
			return v.In(loc).Format(time.RFC3339)
		}
		return t.DateTime
	}
	it.AllDay = e.Start.Date != ""
	it.Start = render(e.Start, false)
	if e.End != nil {
		it.End = render(*e.End, it.AllDay)
	}
	return it
}
