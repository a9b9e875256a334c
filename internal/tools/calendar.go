package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// CalendarOptions configure create_calendar_schedule and
// list_calendar_schedules.
type CalendarOptions struct {
	// Provider is "naver" (NAVER Calendar with the user's NAVER login
	// token; needs Options.ProviderToken), "kakao" (Kakao Talk Calendar with
	// the user's Kakao Login token), "naverworks" (the NAVER WORKS calendar
	// with the user's NAVER WORKS token) or "caldav" (any CalDAV server with
	// per-user URL and credentials; needs Options.UserCredential). Empty:
	// the calendar tools are not listed.
	Provider string
	// NaverBaseURL is NAVER's Open API root. Empty: https://openapi.naver.com.
	NaverBaseURL string
	// NaverCalendarID is the calendar events go to. Empty: "defaultCalendarId"
	// (each user's default calendar).
	NaverCalendarID string
	// CalDAVURL is used for users who have not set their own CALDAV_URL:
	// a calendar collection, a calendar home or the server root (the
	// calendar is discovered, RFC 6764 / RFC 4791). Empty: each user must
	// set CALDAV_URL.
	CalDAVURL string
	// KakaoBaseURL is Kakao's API root. Empty: https://kapi.kakao.com.
	KakaoBaseURL string
	// KakaoCalendarID is the Talk Calendar events go to and are listed
	// from. Empty: events go to "primary" (each user's default calendar)
	// and are listed from all of the user's own calendars.
	KakaoCalendarID string
	// NaverWorksBaseURL is the NAVER WORKS API root. Empty:
	// https://www.worksapis.com/v1.0.
	NaverWorksBaseURL string
	// NaverWorksCalendarID is the calendar used. Empty: each user's
	// default calendar.
	NaverWorksCalendarID string
}

// calendarProvider creates events in a user's calendar.
type calendarProvider interface {
	create(ctx context.Context, userID string, ev *event, ics string) (*ScheduleOutput, error)
}

// eventLister is a calendarProvider that can also list events.
type eventLister interface {
	list(ctx context.Context, userID string, from, to time.Time, limit int) ([]ScheduleItem, error)
}

type scheduleInput struct {
	Title       string `json:"title" jsonschema:"short title of the event, e.g. 'Dentist' or '팀 회의'"`
	Start       string `json:"start" jsonschema:"start as ISO 8601 (2026-11-18T15:00:00+09:00) or 'YYYY-MM-DD HH:MM' in the server's time zone; a date alone (2026-11-18) makes an all-day event"`
	End         string `json:"end,omitempty" jsonschema:"end in the same format as start; default one hour after start (all-day events: the same day); must not be before start"`
	Description string `json:"description,omitempty" jsonschema:"notes for the event"`
	Location    string `json:"location,omitempty" jsonschema:"where the event takes place"`
	Recurrence  string `json:"recurrence,omitempty" jsonschema:"RFC 5545 RRULE value for repeating events, e.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10; leave empty for a single event"`
}

// ScheduleOutput is create_calendar_schedule's structured result.
type ScheduleOutput struct {
	ID         string `json:"id" jsonschema:"the created event's id (its iCalendar UID, or the id the provider assigned)"`
	CalendarID string `json:"calendarId,omitempty" jsonschema:"calendar the event was written to"`
	Provider   string `json:"provider" jsonschema:"naver, caldav, kakao or naverworks"`
	Title      string `json:"title" jsonschema:"event title"`
	Start      string `json:"start" jsonschema:"start (RFC 3339, or YYYY-MM-DD for all-day events)"`
	End        string `json:"end" jsonschema:"end (RFC 3339, or the last day YYYY-MM-DD for all-day events)"`
	AllDay     bool   `json:"allDay" jsonschema:"true for an all-day event"`
	Timezone   string `json:"timezone" jsonschema:"IANA zone of start and end"`
	Location   string `json:"location,omitempty" jsonschema:"event location"`
	Recurrence string `json:"recurrence,omitempty" jsonschema:"RRULE, when repeating"`
}

type listInput struct {
	From  string `json:"from,omitempty" jsonschema:"start of the period, same formats as create_calendar_schedule (default: now)"`
	To    string `json:"to,omitempty" jsonschema:"end of the period (default: 7 days after from)"`
	Limit int    `json:"limit,omitempty" jsonschema:"maximum number of events, 1 to 200 (default 50)"`
}

// ScheduleList is list_calendar_schedules' structured result.
type ScheduleList struct {
	Provider string         `json:"provider" jsonschema:"calendar provider"`
	From     string         `json:"from" jsonschema:"start of the period (RFC 3339)"`
	To       string         `json:"to" jsonschema:"end of the period (RFC 3339)"`
	Events   []ScheduleItem `json:"events" jsonschema:"events overlapping the period, by start time"`
}

// ScheduleItem is one listed event.
type ScheduleItem struct {
	ID          string `json:"id" jsonschema:"event UID"`
	Title       string `json:"title" jsonschema:"event title"`
	Start       string `json:"start" jsonschema:"start (RFC 3339, or YYYY-MM-DD for all-day events)"`
	End         string `json:"end,omitempty" jsonschema:"end (RFC 3339, or YYYY-MM-DD)"`
	AllDay      bool   `json:"allDay" jsonschema:"true for an all-day event"`
	Location    string `json:"location,omitempty" jsonschema:"event location"`
	Description string `json:"description,omitempty" jsonschema:"notes"`
	Recurrence  string `json:"recurrence,omitempty" jsonschema:"RRULE of a repeating event"`
}

func newCalendarProvider(o Options) (calendarProvider, string) {
	c := o.Calendar
	switch c.Provider {
	case "":
		return nil, "tools.calendar is not configured (provider naver, caldav, kakao or naverworks)"
	case "naver":
		if o.ProviderToken == nil {
			return nil, "the NAVER calendar needs users signed in with NAVER, and sign-in is not wired to the built-in tools"
		}
		return &naverCalendar{base: orDefault(c.NaverBaseURL, naverOpenAPI), calendarID: orDefault(c.NaverCalendarID, "defaultCalendarId"), client: o.HTTPClient, token: o.ProviderToken}, ""
	case ProviderKakao:
		if o.ProviderToken == nil {
			return nil, "the Kakao Talk Calendar needs users signed in with Kakao, and sign-in is not wired to the built-in tools"
		}
		return &kakaoCalendar{base: orDefault(c.KakaoBaseURL, kakaoAPI), calendarID: c.KakaoCalendarID, client: o.HTTPClient, token: o.ProviderToken}, ""
	case ProviderNaverWorks:
		if o.ProviderToken == nil {
			return nil, "the NAVER WORKS calendar needs users signed in with NAVER WORKS, and sign-in is not wired to the built-in tools"
		}
		return &naverWorksCalendar{base: orDefault(c.NaverWorksBaseURL, naverWorksAPI), calendarID: c.NaverWorksCalendarID, client: o.HTTPClient, token: o.ProviderToken}, ""
	case "caldav":
		if o.UserCredential == nil {
			return nil, "the CalDAV calendar needs per-user credentials (CALDAV_URL, CALDAV_USERNAME, CALDAV_PASSWORD), and user credentials are not wired to the built-in tools"
		}
		return &calDAV{defaultURL: c.CalDAVURL, cred: o.UserCredential, allowedDomains: o.AllowedDomains, allowedAddresses: o.AllowedAddresses}, ""
	default:
		return nil, fmt.Sprintf("unknown calendar provider %q (want naver, caldav, kakao or naverworks)", c.Provider)
	}
}

func addCalendar(b *builder, o Options) {
	p, reason := newCalendarProvider(o)
	if p == nil {
		b.skip(ToolCreateSchedule, reason)
		if o.Calendar.Provider != "" {
			b.skip(ToolListSchedules, reason)
		}
		return
	}
	loc, err := time.LoadLocation(o.Timezone)
	if err != nil {
		b.skip(ToolCreateSchedule, fmt.Sprintf("time zone %q: %v", o.Timezone, err))
		return
	}
	if o.Calendar.Provider == "naver" {
		// NAVER Calendar keeps events in Korean time. (Kakao and NAVER
		// WORKS take a time zone with each event.)
		loc, _ = time.LoadLocation("Asia/Seoul")
	}
	provider := o.Calendar.Provider
	b.add = append(b.add, func(s *mcp.Server) {
		addTool(s, o.Logger, &mcp.Tool{
			Name:  ToolCreateSchedule,
			Title: "Create calendar event",
			Description: "Creates an event in the signed-in user's own calendar (" + provider + "). Give a title and a start; the end defaults to one hour later. " +
				"Times without a UTC offset are in " + loc.String() + "; call get_current_time first to resolve words like 'tomorrow' or 'next Friday'. " +
				"Only call it when the user asked to add or schedule something. Returns the new event's id. " +
				"사용자의 캘린더에 일정을 등록합니다.",
			Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
		}, func(s *jsonschema.Schema) {
			t := prop(s, "title")
			t.MinLength, t.MaxLength = ptr(1), ptr(255)
			prop(s, "start").MaxLength = ptr(40)
			prop(s, "end").MaxLength = ptr(40)
			prop(s, "description").MaxLength = ptr(4000)
			prop(s, "location").MaxLength = ptr(500)
			r := prop(s, "recurrence")
			r.MaxLength, r.Pattern = ptr(300), rruleRE.String()
		}, nil, func(ctx context.Context, req *mcp.CallToolRequest, in scheduleInput) (*ScheduleOutput, string, error) {
			user := userID(req)
			if user == "" {
				return nil, "", fail(nil, "creating a calendar event needs a signed-in user: sign in to Switchboard first (로그인이 필요합니다)")
			}
			ev, err := newEvent(in, loc)
			if err != nil {
				return nil, "", err
			}
			out, err := p.create(ctx, user, ev, icalendar(ev, o.Now()))
			if err != nil {
				return nil, "", err
			}
			out.Provider, out.Title, out.AllDay, out.Timezone = provider, ev.Summary, ev.AllDay, loc.String()
			out.Location, out.Recurrence = ev.Location, ev.RRule
			if ev.AllDay {
				out.Start, out.End = ev.Start.Format(time.DateOnly), ev.End.AddDate(0, 0, -1).Format(time.DateOnly)
			} else {
				out.Start, out.End = ev.Start.Format(time.RFC3339), ev.End.Format(time.RFC3339)
			}
			text := fmt.Sprintf("Created %q from %s to %s (%s) in the user's %s calendar; event id %s.", out.Title, out.Start, out.End, out.Timezone, provider, out.ID)
			return out, text, nil
		})
	})
	lister, ok := p.(eventLister)
	if !ok {
		b.skip(ToolListSchedules, "the "+provider+" calendar API cannot list events")
		return
	}
	b.add = append(b.add, func(s *mcp.Server) {
		addTool(s, o.Logger, &mcp.Tool{
			Name:  ToolListSchedules,
			Title: "List calendar events",
			Description: "Lists the events in the signed-in user's own calendar (" + provider + ") that overlap a period (default: the next 7 days), by start time. " +
				"Use it to answer 'what is on my calendar' or to check for conflicts before creating an event. " +
				"사용자의 캘린더 일정을 조회합니다.",
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)},
		}, func(s *jsonschema.Schema) {
			prop(s, "from").MaxLength = ptr(40)
			prop(s, "to").MaxLength = ptr(40)
			l := prop(s, "limit")
			l.Minimum, l.Maximum, l.Default = ptr(1.0), ptr(200.0), []byte("50")
		}, nil, func(ctx context.Context, req *mcp.CallToolRequest, in listInput) (*ScheduleList, string, error) {
			user := userID(req)
			if user == "" {
				return nil, "", fail(nil, "listing calendar events needs a signed-in user: sign in to Switchboard first (로그인이 필요합니다)")
			}
			from, to := o.Now().In(loc), time.Time{}
			if in.From != "" {
				t, _, err := parseTime(in.From, loc)
				if err != nil {
					return nil, "", fail(err, "from: %v", err)
				}
				from = t
			}
			to = from.AddDate(0, 0, 7)
			if in.To != "" {
				t, dateOnly, err := parseTime(in.To, loc)
				if err != nil {
					return nil, "", fail(err, "to: %v", err)
				}
				if dateOnly {
					t = t.AddDate(0, 0, 1) // the whole last day
				}
				to = t
			}
			if !to.After(from) {
				return nil, "", fail(nil, "to (%s) must be after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
			}
			limit := in.Limit
			if limit == 0 {
				limit = 50
			}
			items, err := lister.list(ctx, user, from, to, limit)
			if err != nil {
				return nil, "", err
			}
			out := &ScheduleList{Provider: provider, From: from.Format(time.RFC3339), To: to.Format(time.RFC3339), Events: items}
			if out.Events == nil {
				out.Events = []ScheduleItem{}
			}
			return out, renderList(out), nil
		})
	})
}

// newEvent checks a create_calendar_schedule call and builds its event.
func newEvent(in scheduleInput, loc *time.Location) (*event, error) {
	title := strings.TrimSpace(in.Title)
	if title == "" {
		return nil, fail(nil, "title is empty: give the event a short title")
	}
	start, startDate, err := parseTime(in.Start, loc)
	if err != nil {
		return nil, fail(err, "start: %v", err)
	}
	ev := &event{UID: newUID(), Summary: title, Description: in.Description, Location: in.Location, Zone: loc, Start: start, AllDay: startDate}
	switch {
	case in.End == "" && startDate:
		ev.End = start.AddDate(0, 0, 1)
	case in.End == "":
		ev.End = start.Add(time.Hour)
	default:
		end, endDate, err := parseTime(in.End, loc)
		if err != nil {
			return nil, fail(err, "end: %v", err)
		}
		if endDate != startDate {
			return nil, fail(nil, "start and end must both be dates (all-day event) or both be date and time")
		}
		if end.Before(start) {
			return nil, fail(nil, "end (%s) is before start (%s): give an end after the start, or leave it out for one hour", in.End, in.Start)
		}
		if endDate {
			end = end.AddDate(0, 0, 1) // DTEND of an all-day event is exclusive
		}
		ev.End = end
	}
	// iCalendar dates have four-digit years (RFC 5545 §3.3.4), in UTC too.
	for _, t := range []time.Time{ev.Start, ev.End, ev.Start.UTC(), ev.End.UTC()} {
		if t.Year() < 1 || t.Year() > 9999 {
			return nil, fail(nil, "the event must fall between the years 1 and 9999")
		}
	}
	if r := strings.TrimPrefix(strings.TrimSpace(in.Recurrence), "RRULE:"); r != "" {
		if !rruleRE.MatchString(r) {
			return nil, fail(nil, "recurrence %q is not an RRULE value such as FREQ=WEEKLY;BYDAY=MO;COUNT=10", in.Recurrence)
		}
		ev.RRule = r
	}
	return ev, nil
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@switchboard"
}

func renderList(out *ScheduleList) string {
	var b strings.Builder
	if len(out.Events) == 0 {
		fmt.Fprintf(&b, "No events between %s and %s.", out.From, out.To)
		return b.String()
	}
	fmt.Fprintf(&b, "%d events between %s and %s:\n", len(out.Events), out.From, out.To)
	for _, e := range out.Events {
		fmt.Fprintf(&b, "- %s – %s: %s", e.Start, e.End, e.Title)
		if e.Location != "" {
			fmt.Fprintf(&b, " @ %s", e.Location)
		}
		fmt.Fprintf(&b, " (id %s)\n", e.ID)
	}
	return b.String()
}

// notAuthorized reports whether err means the user has not granted access.
func notAuthorized(err error) bool { return errors.Is(err, ErrNotAuthorized) }
