package tools

import (
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

// kakaoCalendar is Kakao Talk Calendar (톡캘린더) on kapi.kakao.com, called
// with each user's own Kakao Login token. What it relies on (Kakao
// Developers, "Talk Calendar" REST API):
//
//   - GET /v2/api/calendar/calendars → {"calendars":[{"id":"primary",
//     "name":"내 캘린더",…}],"subscribe_calendars":[…]}: the user's own
//     calendars; "primary" is the default calendar.
//   - POST /v2/api/calendar/create/event, form body calendar_id (optional,
//     default primary) and event = JSON {"title","time":{"start_at",
//     "end_at","time_zone","all_day","lunar"},"rrule","description",
//     "location":{"name"}} → {"event_id":"…"}. start_at / end_at are UTC
//     RFC 3339 on five-minute steps; an all-day event runs from 00:00Z of
//     its first day to 00:00Z of the day after its last.
//   - GET /v2/api/calendar/events?calendar_id&from&to&limit (from / to UTC
//     RFC 3339, at most 31 days apart; limit at most 100) →
//     {"events":[{"id","title","calendar_id","time":{…},"rrule",
//     "description","location":{"name"}}],"has_next":bool,"next":"<URL of
//     the next page>"}.
//   - Errors: {"msg","code"} with code -401 (HTTP 401: token invalid or
//     expired), -402 (HTTP 403: the user has not agreed to a consent item;
//     the body adds "required_scopes":["talk_calendar"]), -3 (HTTP 403: the
//     app has not been granted the Talk Calendar API), -2 (HTTP 400: bad
//     parameter), -10 (quota exceeded), -501 (not a Kakao Talk user), -9798
//     (maintenance).
type kakaoCalendar struct {
	base, calendarID string // calendarID "" = every own calendar when listing, primary when creating
	client           *http.Client
	token            func(ctx context.Context, userID, provider string) (string, error)
}

var (
	_ calendarProvider = (*kakaoCalendar)(nil)
	_ eventLister      = (*kakaoCalendar)(nil)
)

const kakaoAPI = "https://kapi.kakao.com"

// kakaoConsentHelp tells a user how to grant the talk_calendar consent item.
const kakaoConsentHelp = "To fix it, sign in to Switchboard again with Kakao (카카오 로그인) and agree to \"Create, retrieve, update/delete Talk Calendar and events\" (talk_calendar) on Kakao's consent screen. " +
	"If Kakao does not ask, disconnect Switchboard under Kakao account settings > Connected services and sign in again. " +
	"If the item is not offered at all, the administrator must enable the talk_calendar consent item in the Kakao Developers app ([카카오 로그인] > [동의항목]). " +
	"(카카오 톡캘린더 접근 동의(talk_calendar)가 없습니다: 카카오로 다시 로그인하여 '톡캘린더 및 일정 생성, 조회, 편집/삭제' 항목에 동의해 주세요.)"

type kakaoTime struct {
	StartAt  string `json:"start_at"`
	EndAt    string `json:"end_at"`
	TimeZone string `json:"time_zone,omitempty"`
	AllDay   bool   `json:"all_day"`
	Lunar    bool   `json:"lunar"`
}

type kakaoEvent struct {
	ID          string    `json:"id,omitempty"`
	Title       string    `json:"title"`
	CalendarID  string    `json:"calendar_id,omitempty"`
	Time        kakaoTime `json:"time"`
	RRule       string    `json:"rrule,omitempty"`
	Description string    `json:"description,omitempty"`
	Location    *struct {
		Name string `json:"name,omitempty"`
	} `json:"location,omitempty"`
}

type kakaoError struct {
	Msg            string   `json:"msg"`
	Code           int      `json:"code"`
	RequiredScopes []string `json:"required_scopes"`
}

func (k *kakaoCalendar) userToken(ctx context.Context, userID string) (string, error) {
	token, err := k.token(ctx, userID, ProviderKakao)
	if err == nil {
		return token, nil
	}
	if notAuthorized(err) {
		return "", fail(err, "your Kakao Talk Calendar needs your Kakao account: sign in to Switchboard with Kakao (카카오 로그인) and agree to Talk Calendar access (talk_calendar) when Kakao asks. (카카오 계정으로 로그인해 주세요.)")
	}
	return "", fail(err, "your Kakao sign-in could not be used (it may have expired): sign in to Switchboard with Kakao again (카카오로 다시 로그인해 주세요)")
}

// do sends req with the user's token and decodes a 200 answer into out; any
// other answer becomes an error for people.
func (k *kakaoCalendar) do(req *http.Request, token string, out any) error {
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := k.client.Do(req)
	if err != nil {
		return fail(err, "Kakao Talk Calendar could not be reached; try again later")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fail(err, "Kakao Talk Calendar's answer could not be read; try again")
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return fail(fmt.Errorf("kakao calendar: %w; body: %s", err, excerpt(string(body), 200)), "Kakao Talk Calendar answered with something other than JSON")
		}
		return nil
	}
	var e kakaoError
	_ = json.Unmarshal(body, &e)
	cause := fmt.Errorf("kakao calendar: HTTP %d, code %d: %s", resp.StatusCode, e.Code, excerpt(e.Msg, 200))
	switch {
	case e.Code == -402 || (resp.StatusCode == http.StatusForbidden && e.Code == 0):
		return fail(cause, "Kakao Talk Calendar refused: you have not agreed to let Switchboard use your Talk Calendar (consent item %s). %s", strings.Join(orDefaultSlice(e.RequiredScopes, []string{"talk_calendar"}), ", "), kakaoConsentHelp)
	case e.Code == -3:
		return fail(cause, "Kakao Talk Calendar refused: this Switchboard's Kakao app has not been granted the Talk Calendar API. The administrator must request it in the Kakao Developers console ([앱] > [추가 기능 신청]); until then only the app's members can use it. (관리자가 카카오 디벨로퍼스에서 톡캘린더 API 사용 권한을 신청해야 합니다.)")
	case e.Code == -401 || resp.StatusCode == http.StatusUnauthorized:
		return fail(cause, "Kakao did not accept your sign-in (it may have expired or been revoked): sign in to Switchboard with Kakao again (카카오로 다시 로그인해 주세요)")
	case e.Code == -501:
		return fail(cause, "Kakao Talk Calendar needs a Kakao Talk user: your Kakao account is not signed up to Kakao Talk (카카오톡 사용자만 톡캘린더를 쓸 수 있습니다)")
	case e.Code == -10 || resp.StatusCode == http.StatusTooManyRequests:
		return fail(cause, "Kakao Talk Calendar is rate limiting requests (quota exceeded); try again later%s", retryAfter(resp))
	case e.Code == -2 || resp.StatusCode == http.StatusBadRequest:
		return fail(cause, "Kakao Talk Calendar rejected the request: %s", orDefault(excerpt(e.Msg, 200), "invalid parameter"))
	case e.Code == -9798:
		return fail(cause, "Kakao Talk Calendar is under maintenance; try again later")
	default:
		return fail(cause, "Kakao Talk Calendar failed (HTTP %d, code %d); try again later", resp.StatusCode, e.Code)
	}
}

// kakaoEventJSON is the create/event "event" field for ev.
func kakaoEventJSON(ev *event) ([]byte, error) {
	kt := kakaoTime{TimeZone: ev.Zone.String(), AllDay: ev.AllDay}
	if ev.AllDay {
		// All-day events are dates: midnight UTC of the first day to
		// midnight UTC of the day after the last.
		kt.StartAt = ev.Start.Format(time.DateOnly) + "T00:00:00Z"
		kt.EndAt = ev.End.Format(time.DateOnly) + "T00:00:00Z"
	} else {
		if ev.Start.Minute()%5 != 0 || ev.End.Minute()%5 != 0 || ev.Start.Second() != 0 || ev.End.Second() != 0 {
			return nil, fail(nil, "Kakao Talk Calendar only takes times on five-minute steps (e.g. 15:00, 15:05): round start and end to a multiple of five minutes (톡캘린더는 5분 단위 시간만 등록할 수 있습니다)")
		}
		kt.StartAt = ev.Start.UTC().Format(time.RFC3339)
		kt.EndAt = ev.End.UTC().Format(time.RFC3339)
	}
	ke := kakaoEvent{Title: ev.Summary, Time: kt, RRule: ev.RRule, Description: ev.Description}
	if ev.Location != "" {
		ke.Location = &struct {
			Name string `json:"name,omitempty"`
		}{ev.Location}
	}
	b, err := json.Marshal(ke)
	if err != nil {
		return nil, fail(err, "the event could not be encoded")
	}
	return b, nil
}

func (k *kakaoCalendar) create(ctx context.Context, userID string, ev *event, _ string) (*ScheduleOutput, error) {
	evJSON, err := kakaoEventJSON(ev)
	if err != nil {
		return nil, err
	}
	token, err := k.userToken(ctx, userID)
	if err != nil {
		return nil, err
	}
	calID := orDefault(k.calendarID, "primary")
	form := url.Values{"calendar_id": {calID}, "event": {string(evJSON)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(k.base, "/")+"/v2/api/calendar/create/event", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fail(err, "the calendar is misconfigured: bad Kakao base URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	var r struct {
		EventID string `json:"event_id"`
	}
	if err := k.do(req, token, &r); err != nil {
		return nil, err
	}
	if r.EventID == "" {
		return nil, fail(nil, "Kakao Talk Calendar answered without an event id; the event may or may not have been created")
	}
	return &ScheduleOutput{ID: r.EventID, CalendarID: calID}, nil
}

// kakaoMaxSpan is the longest from–to period one events request may ask for.
const kakaoMaxSpan = 31 * 24 * time.Hour

func (k *kakaoCalendar) list(ctx context.Context, userID string, from, to time.Time, limit int) ([]ScheduleItem, error) {
	token, err := k.userToken(ctx, userID)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(k.base, "/")
	calendars := []string{k.calendarID}
	if k.calendarID == "" {
		// Every calendar the user keeps (the default and sub-calendars).
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/api/calendar/calendars", nil)
		if err != nil {
			return nil, fail(err, "the calendar is misconfigured: bad Kakao base URL")
		}
		var r struct {
			Calendars []struct {
				ID string `json:"id"`
			} `json:"calendars"`
		}
		if err := k.do(req, token, &r); err != nil {
			return nil, err
		}
		calendars = calendars[:0]
		for _, c := range r.Calendars {
			calendars = append(calendars, c.ID)
		}
		if len(calendars) == 0 {
			calendars = []string{"primary"}
		}
	}
	baseURL, _ := url.Parse(base)
	var items []ScheduleItem
	for _, cal := range calendars {
		for start := from; start.Before(to); start = start.Add(kakaoMaxSpan) {
			end := start.Add(kakaoMaxSpan)
			if end.After(to) {
				end = to
			}
			q := url.Values{"calendar_id": {cal}, "from": {start.UTC().Format(time.RFC3339)}, "to": {end.UTC().Format(time.RFC3339)}, "limit": {"100"}}
			next := base + "/v2/api/calendar/events?" + q.Encode()
			for pages := 0; next != "" && pages < 50; pages++ {
				u, err := url.Parse(next)
				if err != nil || baseURL == nil || u.Host != baseURL.Host || u.Scheme != baseURL.Scheme {
					// The user's token goes only to Kakao's API host.
					return nil, fail(err, "Kakao Talk Calendar sent a next-page link to another host (%s); stopped listing", excerpt(next, 100))
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
				if err != nil {
					return nil, fail(err, "the calendar is misconfigured: bad Kakao base URL")
				}
				var r struct {
					Events  []kakaoEvent `json:"events"`
					HasNext bool         `json:"has_next"`
					Next    string       `json:"next"`
				}
				if err := k.do(req, token, &r); err != nil {
					return nil, err
				}
				for _, e := range r.Events {
					items = append(items, e.item())
				}
				next = ""
				if r.HasNext {
					next = r.Next
				}
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Start < items[j].Start })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

func (e kakaoEvent) item() ScheduleItem {
	it := ScheduleItem{ID: e.ID, Title: e.Title, AllDay: e.Time.AllDay, Description: e.Description, Recurrence: e.RRule}
	if e.Location != nil {
		it.Location = e.Location.Name
	}
	loc, err := time.LoadLocation(orDefault(e.Time.TimeZone, "Asia/Seoul"))
	if err != nil {
		loc = time.UTC
	}
	start, err1 := time.Parse(time.RFC3339, e.Time.StartAt)
	end, err2 := time.Parse(time.RFC3339, e.Time.EndAt)
	switch {
	case err1 != nil:
		it.Start, it.End = e.Time.StartAt, e.Time.EndAt
	case e.Time.AllDay:
		it.Start = start.UTC().Format(time.DateOnly)
		if err2 == nil {
			it.End = end.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
		}
	default:
		it.Start = start.In(loc).Format(time.RFC3339)
		if err2 == nil {
			it.End = end.In(loc).Format(time.RFC3339)
		}
	}
	return it
}

// retryAfter renders a Retry-After header for a message.
func retryAfter(resp *http.Response) string {
	if v := resp.Header.Get("Retry-After"); v != "" {
		return " (Retry-After: " + excerpt(v, 40) + ")"
	}
	return ""
}

func orDefaultSlice[T any](s, def []T) []T {
	if len(s) == 0 {
		return def
	}
	return s
}
