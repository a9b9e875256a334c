package tools

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
)

type ctxUser struct{}

// memCalDAV is an in-memory caldav.Backend: each basic-auth user has one
// calendar at /dav/<user>/calendars/default/. go-webdav's caldav.Handler
// speaks the protocol.
type memCalDAV struct {
	mu      sync.Mutex                           // guards objects
	objects map[string]map[string]*ical.Calendar // user -> path -> object
}

var _ caldav.Backend = (*memCalDAV)(nil)

func (b *memCalDAV) user(ctx context.Context) string { return ctx.Value(ctxUser{}).(string) }
func (b *memCalDAV) home(ctx context.Context) string { return "/dav/" + b.user(ctx) + "/calendars/" }
func (b *memCalDAV) cal(ctx context.Context) caldav.Calendar {
	return caldav.Calendar{Path: b.home(ctx) + "default/", Name: "Default", SupportedComponentSet: []string{"VEVENT"}}
}

func (b *memCalDAV) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return "/dav/" + b.user(ctx) + "/", nil
}
func (b *memCalDAV) CalendarHomeSetPath(ctx context.Context) (string, error) { return b.home(ctx), nil }
func (b *memCalDAV) CreateCalendar(context.Context, *caldav.Calendar) error {
	return webdav.NewHTTPError(http.StatusForbidden, nil)
}
func (b *memCalDAV) ListCalendars(ctx context.Context) ([]caldav.Calendar, error) {
	return []caldav.Calendar{b.cal(ctx)}, nil
}
func (b *memCalDAV) GetCalendar(ctx context.Context, p string) (*caldav.Calendar, error) {
	if c := b.cal(ctx); c.Path == p {
		return &c, nil
	}
	return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no calendar %s", p))
}
func (b *memCalDAV) GetCalendarObject(ctx context.Context, p string, _ *caldav.CalendarCompRequest) (*caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cal, ok := b.objects[b.user(ctx)][p]; ok {
		return &caldav.CalendarObject{Path: p, Data: cal, ETag: "e"}, nil
	}
	return nil, webdav.NewHTTPError(http.StatusNotFound, nil)
}
func (b *memCalDAV) ListCalendarObjects(ctx context.Context, p string, _ *caldav.CalendarCompRequest) ([]caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []caldav.CalendarObject
	for op, cal := range b.objects[b.user(ctx)] {
		if path.Dir(op)+"/" == p {
			out = append(out, caldav.CalendarObject{Path: op, Data: cal, ETag: "e", ModTime: fixedNow})
		}
	}
	return out, nil
}
func (b *memCalDAV) QueryCalendarObjects(ctx context.Context, p string, q *caldav.CalendarQuery) ([]caldav.CalendarObject, error) {
	all, err := b.ListCalendarObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return caldav.Filter(q, all)
}
func (b *memCalDAV) PutCalendarObject(ctx context.Context, p string, cal *ical.Calendar, _ *caldav.PutCalendarObjectOptions) (*caldav.CalendarObject, error) {
	if !strings.HasPrefix(p, b.cal(ctx).Path) {
		return nil, webdav.NewHTTPError(http.StatusForbidden, fmt.Errorf("not your calendar: %s", p))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objects[b.user(ctx)] == nil {
		b.objects[b.user(ctx)] = map[string]*ical.Calendar{}
	}
	b.objects[b.user(ctx)][p] = cal
	return &caldav.CalendarObject{Path: p, Data: cal, ETag: "e", ModTime: fixedNow}, nil
}
func (b *memCalDAV) DeleteCalendarObject(ctx context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects[b.user(ctx)], p)
	return nil
}

func (b *memCalDAV) summaries(user string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, cal := range b.objects[user] {
		for _, e := range cal.Events() {
			s, _ := e.Props.Text(ical.PropSummary)
			out = append(out, s)
		}
	}
	return out
}

func newCalDAVServer(t *testing.T, passwords map[string]string) (*httptest.Server, *memCalDAV) {
	b := &memCalDAV{objects: map[string]map[string]*ical.Calendar{}}
	h := &caldav.Handler{Backend: b, Prefix: "/dav"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || passwords[user] == "" || passwords[user] != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="caldav"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/.well-known/caldav" || r.URL.Path == "/" {
			// Server root: the principal is discovered from here.
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxUser{}, user)))
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/dav/"+user+"/") {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxUser{}, user)))
	}))
	t.Cleanup(srv.Close)
	return srv, b
}

func TestCalDAV(t *testing.T) {
	srv, backend := newCalDAVServer(t, map[string]string{"alice": "pw-a", "bob": "pw-b"})
	creds := map[string]map[string]string{
		// Alice names her calendar; Bob relies on the server default and discovery.
		"alice": {CredCalDAVURL: srv.URL + "/dav/alice/calendars/default/", CredCalDAVUsername: "alice", CredCalDAVPassword: "pw-a"},
		"bob":   {CredCalDAVUsername: "bob", CredCalDAVPassword: "pw-b"},
		"eve":   {CredCalDAVUsername: "eve", CredCalDAVPassword: "guess"},
	}
	opts := &Options{
		AllowedAddresses: []string{"127.0.0.1/32"},
		Calendar:         CalendarOptions{Provider: "caldav", CalDAVURL: srv.URL + "/"},
		UserCredential: func(ctx context.Context, userID, name string) (string, error) {
			v, ok := creds[userID][name]
			if !ok {
				return "", fmt.Errorf("%s of %s: %w", name, userID, ErrNotAuthorized)
			}
			return v, nil
		},
	}
	c := connect(t, opts)
	for _, user := range []string{"alice", "bob"} {
		var got ScheduleOutput
		wantOK(t, c.call(user, ToolCreateSchedule, map[string]any{"title": user + " lunch, with team", "start": "2026-11-19T12:00:00+09:00", "location": "Cafe; 2F"}, &got))
		if got.Provider != "caldav" || got.CalendarID != "/dav/"+user+"/calendars/default/" || got.ID == "" {
			t.Errorf("%s: %+v", user, got)
		}
		if s := backend.summaries(user); len(s) != 1 || s[0] != user+" lunch, with team" {
			t.Errorf("%s's calendar holds %v", user, s)
		}
	}
	wantOK(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "Holiday", "start": "2026-11-25"}, nil))
	wantOK(t, c.call("alice", ToolCreateSchedule, map[string]any{"title": "Far future", "start": "2027-05-01 09:00"}, nil))

	var list ScheduleList
	wantOK(t, c.call("alice", ToolListSchedules, map[string]any{"from": "2026-11-18", "to": "2026-11-30"}, &list))
	var titles []string
	for _, e := range list.Events {
		titles = append(titles, e.Title+"@"+e.Start)
	}
	if want := []string{"alice lunch, with team@2026-11-19T12:00:00+09:00", "Holiday@2026-11-25"}; strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Errorf("alice's events = %v, want %v", titles, want)
	}
	if list.Events[0].Location != "Cafe; 2F" || !list.Events[1].AllDay || list.Events[1].End != "2026-11-25" {
		t.Errorf("events = %+v", list.Events)
	}

	t.Run("wrong password", func(t *testing.T) {
		wantError(t, c.call("eve", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-19 12:00"}, nil), "username or password")
	})
	t.Run("no credentials", func(t *testing.T) {
		wantError(t, c.call("mallory", ToolCreateSchedule, map[string]any{"title": "x", "start": "2026-11-19 12:00"}, nil), "CALDAV_USERNAME")
	})
	t.Run("private address refused", func(t *testing.T) {
		o := *opts
		o.AllowedAddresses = nil
		c := connect(t, &o)
		wantError(t, c.call("alice", ToolListSchedules, map[string]any{}, nil), "allowedAddresses")
	})
}
