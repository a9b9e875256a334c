package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// naverCalendar is NAVER Calendar's createSchedule API (WIRE.md "NAVER
// Calendar"), called with each user's own NAVER login token.
type naverCalendar struct {
	base, calendarID string
	client           *http.Client
	token            func(ctx context.Context, userID, provider string) (string, error)
}

var _ calendarProvider = (*naverCalendar)(nil)

// naverCalendarGrantHelp tells a user how to grant calendar access.
const naverCalendarGrantHelp = "To fix it, sign in to Switchboard again with NAVER (네이버 로그인) and allow calendar (캘린더) access on NAVER's consent screen. " +
	"If NAVER does not ask, remove Switchboard from the connected services in your NAVER account settings and sign in again. " +
	"If it still fails, the administrator must add the Calendar API to the NAVER application at developers.naver.com. " +
	"(네이버 캘린더 접근 권한이 없습니다: 네이버로 다시 로그인하여 캘린더 접근에 동의해 주세요.)"

type naverCalendarResponse struct {
	Result      string          `json:"result"`
	Code        json.RawMessage `json:"code"` // a number, sometimes a string
	Message     string          `json:"message"`
	ReturnValue struct {
		CalendarID  string `json:"calendarId"`
		ProcessType string `json:"processType"`
		ICalUID     string `json:"icalUid"`
	} `json:"returnValue"`
	// The profile API's failure shape, which the gateway in front of the
	// calendar API uses for token errors.
	ResultCode string `json:"resultcode"`
}

func (n *naverCalendar) create(ctx context.Context, userID string, ev *event, ics string) (*ScheduleOutput, error) {
	token, err := n.token(ctx, userID, ProviderNaver)
	if err != nil {
		if notAuthorized(err) {
			return nil, fail(err, "adding to your NAVER Calendar needs your NAVER account: sign in to Switchboard with NAVER (네이버 로그인) and allow calendar access when NAVER asks")
		}
		return nil, fail(err, "your NAVER sign-in could not be used (it may have expired): sign in to Switchboard with NAVER again")
	}
	form := url.Values{}
	form.Set("calendarId", n.calendarID)
	form.Set("scheduleIcalString", ics)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.base, "/")+"/calendar/createSchedule.json", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fail(err, "the calendar is misconfigured: bad NAVER base URL")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, fail(err, "NAVER Calendar could not be reached; try again later")
	}
	defer resp.Body.Close()
	// The answer is JSON served as text/html: parse it whatever its
	// Content-Type says.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fail(err, "NAVER Calendar's answer could not be read; the event may or may not have been created")
	}
	var r naverCalendarResponse
	jsonErr := json.Unmarshal(body, &r)
	code := strings.Trim(string(r.Code), `" `)
	cause := fmt.Errorf("naver calendar: HTTP %d, code %s, result %q: %s", resp.StatusCode, code, r.Result, excerpt(r.Message, 200))
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil && r.Result == "success":
		id := r.ReturnValue.ICalUID
		if id == "" {
			id = ev.UID
		}
		calID := r.ReturnValue.CalendarID
		if calID == "" {
			calID = n.calendarID
		}
		return &ScheduleOutput{ID: id, CalendarID: calID}, nil
	case resp.StatusCode == http.StatusForbidden || code == "1403" || code == "403":
		return nil, fail(cause, "NAVER Calendar refused: you have not granted Switchboard access to your NAVER Calendar. %s", naverCalendarGrantHelp)
	case resp.StatusCode == http.StatusUnauthorized || code == "024" || code == "028" || code == "401":
		return nil, fail(cause, "NAVER did not accept your sign-in (it may have expired or been revoked): sign in to Switchboard with NAVER again")
	case resp.StatusCode == http.StatusNotFound || code == "1404":
		return nil, fail(cause, "NAVER Calendar has no calendar %q for you: the administrator should check tools.calendar.naver.calendarId (default: defaultCalendarId)", n.calendarID)
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, fail(cause, "NAVER Calendar is rate limiting requests; try again later")
	case jsonErr != nil:
		return nil, fail(fmt.Errorf("%w; body: %s", cause, excerpt(string(body), 200)), "NAVER Calendar answered HTTP %d with something other than JSON; the event was probably not created", resp.StatusCode)
	default:
		msg := fmt.Sprintf("NAVER Calendar failed (HTTP %d, code %s)", resp.StatusCode, orDefault(code, "none"))
		if r.Message != "" {
			msg += ": " + excerpt(r.Message, 200)
		}
		return nil, fail(cause, "%s; try again later", msg)
	}
}
