// Package toolstest fakes the outside services the built-in tools reach,
// for tests of this and other packages.
package toolstest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
)

type ctxUser struct{}

// CalDAV is an in-memory CalDAV server (RFC 4791): each basic-auth user
// has one calendar at /dav/<user>/calendars/default/. go-webdav's
// caldav.Handler speaks the protocol.
type CalDAV struct {
	modTime time.Time // of every object

	mu      sync.Mutex                           // guards objects
	objects map[string]map[string]*ical.Calendar // user -> path -> object
}

var _ caldav.Backend = (*CalDAV)(nil)

func (b *CalDAV) user(ctx context.Context) string { return ctx.Value(ctxUser{}).(string) }
func (b *CalDAV) home(ctx context.Context) string { return "/dav/" + b.user(ctx) + "/calendars/" }
func (b *CalDAV) cal(ctx context.Context) caldav.Calendar {
	return caldav.Calendar{Path: b.home(ctx) + "default/", Name: "Default", SupportedComponentSet: []string{"VEVENT"}}
}

func (b *CalDAV) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return "/dav/" + b.user(ctx) + "/", nil
}
func (b *CalDAV) CalendarHomeSetPath(ctx context.Context) (string, error) { return b.home(ctx), nil }
func (b *CalDAV) CreateCalendar(context.Context, *caldav.Calendar) error {
	return webdav.NewHTTPError(http.StatusForbidden, nil)
}
func (b *CalDAV) ListCalendars(ctx context.Context) ([]caldav.Calendar, error) {
	return []caldav.Calendar{b.cal(ctx)}, nil
}
func (b *CalDAV) GetCalendar(ctx context.Context, p string) (*caldav.Calendar, error) {
	if c := b.cal(ctx); c.Path == p {
		return &c, nil
	}
	return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no calendar %s", p))
}
func (b *CalDAV) GetCalendarObject(ctx context.Context, p string, _ *caldav.CalendarCompRequest) (*caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cal, ok := b.objects[b.user(ctx)][p]; ok {
		return &caldav.CalendarObject{Path: p, Data: cal, ETag: "e"}, nil
	}
	return nil, webdav.NewHTTPError(http.StatusNotFound, nil)
}
func (b *CalDAV) ListCalendarObjects(ctx context.Context, p string, _ *caldav.CalendarCompRequest) ([]caldav.CalendarObject, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []caldav.CalendarObject
	for op, cal := range b.objects[b.user(ctx)] {
		if path.Dir(op)+"/" == p {
			out = append(out, caldav.CalendarObject{Path: op, Data: cal, ETag: "e", ModTime: b.modTime})
		}
	}
	return out, nil
}
func (b *CalDAV) QueryCalendarObjects(ctx context.Context, p string, q *caldav.CalendarQuery) ([]caldav.CalendarObject, error) {
	all, err := b.ListCalendarObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return caldav.Filter(q, all)
}
func (b *CalDAV) PutCalendarObject(ctx context.Context, p string, cal *ical.Calendar, _ *caldav.PutCalendarObjectOptions) (*caldav.CalendarObject, error) {
	if !strings.HasPrefix(p, b.cal(ctx).Path) {
		return nil, webdav.NewHTTPError(http.StatusForbidden, fmt.Errorf("not your calendar: %s", p))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.objects[b.user(ctx)] == nil {
		b.objects[b.user(ctx)] = map[string]*ical.Calendar{}
	}
	b.objects[b.user(ctx)][p] = cal
	return &caldav.CalendarObject{Path: p, Data: cal, ETag: "e", ModTime: b.modTime}, nil
}
func (b *CalDAV) DeleteCalendarObject(ctx context.Context, p string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects[b.user(ctx)], p)
	return nil
}

// Summaries returns the SUMMARY of every event in user's calendar.
func (b *CalDAV) Summaries(user string) []string {
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

// NewCalDAV serves a CalDAV server until the test ends; passwords holds
// each user's basic-auth password, and every object reports modTime as its
// last change.
func NewCalDAV(t testing.TB, passwords map[string]string, modTime time.Time) (*httptest.Server, *CalDAV) {
	b := &CalDAV{modTime: modTime, objects: map[string]map[string]*ical.Calendar{}}
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
