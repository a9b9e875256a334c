package tools

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

func TestCalDAV(t *testing.T) {
	srv, backend := toolstest.NewCalDAV(t, map[string]string{"alice": "pw-a", "bob": "pw-b"}, fixedNow)
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
		if s := backend.Summaries(user); len(s) != 1 || s[0] != user+" lunch, with team" {
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
