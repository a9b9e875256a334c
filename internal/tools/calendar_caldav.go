package tools

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// calDAV writes to and reads from a CalDAV server (RFC 4791) with each
// user's own URL and credentials. The URL is the user's choice, so it is
// reached through the SSRF-safe client.
type calDAV struct {
	defaultURL                       string
	cred                             func(ctx context.Context, userID, name string) (string, error)
	allowedDomains, allowedAddresses []string
}

var (
	_ calendarProvider = (*calDAV)(nil)
	_ eventLister      = (*calDAV)(nil)
)

const calDAVHelp = "set your CalDAV calendar URL, username and password (CALDAV_URL, CALDAV_USERNAME, CALDAV_PASSWORD) in Switchboard's settings"

// statusClient records the status of the last response, so that failures
// can be explained without parsing go-webdav's error strings.
type statusClient struct {
	c      webdav.HTTPClient
	mu     sync.Mutex // guards status
	status int
}

func (s *statusClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := s.c.Do(req)
	if err == nil {
		s.mu.Lock()
		s.status = resp.StatusCode
		s.mu.Unlock()
	}
	return resp, err
}

func (s *statusClient) lastStatus() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// session is one user's connection to their CalDAV server.
type session struct {
	client   *caldav.Client
	status   *statusClient
	http     *http.Client
	calendar string // path of the calendar collection
}

func (c *calDAV) connect(ctx context.Context, userID string) (*session, error) {
	get := func(name string) (string, error) {
		v, err := c.cred(ctx, userID, name)
		if err != nil && !notAuthorized(err) {
			return "", fail(err, "your CalDAV settings could not be read; try again")
		}
		return v, nil
	}
	raw, err := get(CredCalDAVURL)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		raw = c.defaultURL
	}
	if raw == "" {
		return nil, fail(ErrNotAuthorized, "your calendar is not set up: %s", calDAVHelp)
	}
	user, err := get(CredCalDAVUsername)
	if err != nil {
		return nil, err
	}
	pass, err := get(CredCalDAVPassword)
	if err != nil {
		return nil, err
	}
	if user == "" || pass == "" {
		return nil, fail(ErrNotAuthorized, "your CalDAV username or password is not set: %s", calDAVHelp)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail(err, "your CalDAV URL is not an http or https URL: %s", calDAVHelp)
	}
	hc := ssrf.NewClient(&ssrf.Policy{
		AllowedHosts:     matchDomains(u.Hostname(), c.allowedDomains),
		AllowedAddresses: c.allowedAddresses,
		Timeout:          30 * time.Second,
		MaxBytes:         8 << 20,
	})
	sc := &statusClient{c: webdav.HTTPClientWithBasicAuth(hc, user, pass)}
	client, err := caldav.NewClient(sc, raw)
	if err != nil {
		return nil, fail(err, "your CalDAV URL could not be used: %s", calDAVHelp)
	}
	s := &session{client: client, status: sc, http: hc}
	if s.calendar, err = s.findCalendar(ctx, u.Path); err != nil {
		hc.CloseIdleConnections()
		return nil, s.explain(err, "find your calendar")
	}
	return s, nil
}

func (s *session) close() { s.http.CloseIdleConnections() }

// findCalendar returns the calendar collection at p, the first event
// calendar under p (a calendar home), or the first one found through the
// current user principal (RFC 5397) and its calendar home set.
func (s *session) findCalendar(ctx context.Context, p string) (string, error) {
	if p == "" {
		p = "/"
	}
	pick := func(cals []caldav.Calendar) string {
		for _, cal := range cals {
			if strings.TrimSuffix(cal.Path, "/") == strings.TrimSuffix(p, "/") {
				return cal.Path
			}
		}
		for _, cal := range cals {
			if len(cal.SupportedComponentSet) == 0 || slices.Contains(cal.SupportedComponentSet, "VEVENT") {
				return cal.Path
			}
		}
		return ""
	}
	if cals, err := s.client.FindCalendars(ctx, p); err == nil {
		if found := pick(cals); found != "" {
			return found, nil
		}
	}
	principal, err := s.client.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return "", err
	}
	home, err := s.client.FindCalendarHomeSet(ctx, principal)
	if err != nil {
		return "", err
	}
	cals, err := s.client.FindCalendars(ctx, home)
	if err != nil {
		return "", err
	}
	if found := pick(cals); found != "" {
		return found, nil
	}
	return "", errNoCalendar
}

var errNoCalendar = errors.New("caldav: no calendar for events found")

func (s *session) explain(err error, doing string) error {
	switch st := s.status.lastStatus(); {
	case errors.Is(err, errNoCalendar):
		return fail(err, "your CalDAV account has no calendar for events; create one, or set CALDAV_URL to a calendar's URL")
	case st == http.StatusUnauthorized:
		return fail(err, "the CalDAV server refused your username or password: %s", calDAVHelp)
	case st == http.StatusForbidden:
		return fail(err, "the CalDAV server does not let your account %s (HTTP 403)", doing)
	case st == http.StatusNotFound:
		return fail(err, "the CalDAV server has nothing at your CALDAV_URL (HTTP 404): %s", calDAVHelp)
	}
	var refused *ssrf.RefusedError
	if errors.As(err, &refused) {
		return fail(err, "your CalDAV server is at %s (%s), which Switchboard may not reach unless an administrator allows it in mcpSettings.allowedDomains or allowedAddresses", refused.Addr, refused.Rule)
	}
	return fail(err, "could not %s on your CalDAV server; try again later", doing)
}

func (c *calDAV) create(ctx context.Context, userID string, ev *event, ics string) (*ScheduleOutput, error) {
	s, err := c.connect(ctx, userID)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cal, err := ical.NewDecoder(strings.NewReader(ics)).Decode()
	if err != nil {
		return nil, fail(err, "the event could not be encoded")
	}
	objPath := path.Join(s.calendar, url.PathEscape(ev.UID)+".ics")
	if _, err := s.client.PutCalendarObject(ctx, objPath, cal); err != nil {
		return nil, s.explain(err, "create the event")
	}
	return &ScheduleOutput{ID: ev.UID, CalendarID: s.calendar}, nil
}

func (c *calDAV) list(ctx context.Context, userID string, from, to time.Time, limit int) ([]ScheduleItem, error) {
	s, err := c.connect(ctx, userID)
	if err != nil {
		return nil, err
	}
	defer s.close()
	objs, err := s.client.QueryCalendar(ctx, s.calendar, &caldav.CalendarQuery{
		CompRequest: caldav.CalendarCompRequest{
			Name:  "VCALENDAR",
			Comps: []caldav.CalendarCompRequest{{Name: "VEVENT", AllProps: true}},
		},
		CompFilter: caldav.CompFilter{
			Name:  "VCALENDAR",
			Comps: []caldav.CompFilter{{Name: "VEVENT", Start: from.UTC(), End: to.UTC()}},
		},
	})
	if err != nil {
		return nil, s.explain(err, "list your events")
	}
	loc := from.Location()
	var items []ScheduleItem
	for _, o := range objs {
		if o.Data == nil {
			continue
		}
		for _, e := range o.Data.Events() {
			items = append(items, scheduleItem(&e, loc))
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Start < items[j].Start })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, nil
}

func scheduleItem(e *ical.Event, loc *time.Location) ScheduleItem {
	text := func(name string) string {
		v, _ := e.Props.Text(name)
		return v
	}
	it := ScheduleItem{
		ID:          text(ical.PropUID),
		Title:       text(ical.PropSummary),
		Location:    text(ical.PropLocation),
		Description: text(ical.PropDescription),
	}
	if p := e.Props.Get(ical.PropRecurrenceRule); p != nil {
		it.Recurrence = p.Value
	}
	start := e.Props.Get(ical.PropDateTimeStart)
	it.AllDay = start != nil && start.ValueType() == ical.ValueDate
	format := time.RFC3339
	if it.AllDay {
		format = time.DateOnly
	}
	if t, err := e.DateTimeStart(loc); err == nil {
		it.Start = t.In(loc).Format(format)
	}
	if t, err := e.DateTimeEnd(loc); err == nil && !t.IsZero() {
		if it.AllDay {
			t = t.AddDate(0, 0, -1) // DTEND is exclusive
		}
		it.End = t.In(loc).Format(format)
	}
	return it
}
