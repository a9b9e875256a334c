package tools

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// event is a calendar event to create.
type event struct {
	UID         string
	Summary     string
	Description string
	Location    string
	RRule       string    // without "RRULE:"; "" = none
	Start, End  time.Time // in Zone; for AllDay, midnight of the first day and of the day after the last
	AllDay      bool
	Zone        *time.Location
}

const icalProdID = "-//Switchboard//Built-in tools//EN"

// seoulTimezone is Asia/Seoul's VTIMEZONE: +0900 without daylight saving
// since 1988.
var seoulTimezone = []string{
	"BEGIN:VTIMEZONE",
	"TZID:Asia/Seoul",
	"BEGIN:STANDARD",
	"DTSTART:19700101T000000",
	"TZOFFSETFROM:+0900",
	"TZOFFSETTO:+0900",
	"TZNAME:KST",
	"END:STANDARD",
	"END:VTIMEZONE",
}

// icalendar renders ev as an iCalendar object (RFC 5545) with one VEVENT,
// stamped now. Times in Asia/Seoul are written with TZID and a VTIMEZONE,
// as NAVER Calendar expects; other zones are written in UTC, which needs no
// VTIMEZONE.
func icalendar(ev *event, now time.Time) string {
	var lines []string
	add := func(l ...string) { lines = append(lines, l...) }
	seoul := ev.Zone != nil && ev.Zone.String() == "Asia/Seoul"
	add("BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:"+icalProdID, "CALSCALE:GREGORIAN")
	if seoul && !ev.AllDay {
		add(seoulTimezone...)
	}
	stamp := now.UTC().Format("20060102T150405Z")
	add("BEGIN:VEVENT",
		"UID:"+escapeText(ev.UID),
		"DTSTAMP:"+stamp,
		"CREATED:"+stamp,
		"LAST-MODIFIED:"+stamp)
	switch {
	case ev.AllDay:
		add("DTSTART;VALUE=DATE:"+ev.Start.Format("20060102"), "DTEND;VALUE=DATE:"+ev.End.Format("20060102"))
	case seoul:
		add("DTSTART;TZID=Asia/Seoul:"+ev.Start.Format("20060102T150405"), "DTEND;TZID=Asia/Seoul:"+ev.End.Format("20060102T150405"))
	default:
		add("DTSTART:"+ev.Start.UTC().Format("20060102T150405Z"), "DTEND:"+ev.End.UTC().Format("20060102T150405Z"))
	}
	add("SUMMARY:" + escapeText(ev.Summary))
	if ev.Description != "" {
		add("DESCRIPTION:" + escapeText(ev.Description))
	}
	if ev.Location != "" {
		add("LOCATION:" + escapeText(ev.Location))
	}
	if ev.RRule != "" {
		add("RRULE:" + ev.RRule)
	}
	add("SEQUENCE:0", "STATUS:CONFIRMED", "TRANSP:OPAQUE", "END:VEVENT", "END:VCALENDAR")
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(foldLine(l))
	}
	return b.String()
}

// escapeText escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon,
// comma and line breaks.
func escapeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case ';':
			b.WriteString(`\;`)
		case ',':
			b.WriteString(`\,`)
		case '\n':
			b.WriteString(`\n`)
		default:
			// Other control characters are not allowed in TEXT.
			if r < 0x20 && r != '\t' || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// foldLine folds a content line to lines of at most 75 octets, never inside
// a UTF-8 sequence, and ends it with CRLF (RFC 5545 §3.1).
func foldLine(l string) string {
	const limit = 75
	var b strings.Builder
	first := true
	for {
		max := limit
		if !first {
			max = limit - 1 // the leading space counts
		}
		if len(l) <= max {
			if !first {
				b.WriteByte(' ')
			}
			b.WriteString(l)
			b.WriteString("\r\n")
			return b.String()
		}
		cut := max
		for cut > 0 && !utf8RuneStart(l[cut]) {
			cut--
		}
		if cut == 0 {
			// Not UTF-8 (no rune starts in reach): cut anywhere rather
			// than loop forever.
			cut = max
		}
		if !first {
			b.WriteByte(' ')
		}
		b.WriteString(l[:cut])
		b.WriteString("\r\n")
		l = l[cut:]
		first = false
	}
}

// rruleRE accepts an RRULE value: NAME=VALUE pairs separated by semicolons,
// starting with FREQ (RFC 5545 §3.3.10).
var rruleRE = regexp.MustCompile(`^FREQ=(SECONDLY|MINUTELY|HOURLY|DAILY|WEEKLY|MONTHLY|YEARLY)(;[A-Z]+=[A-Za-z0-9,+\-:]+)*$`)

// parseTime reads a calendar time: ISO 8601 with or without an offset
// ("2026-11-18T15:00:00+09:00", "2026-11-18T15:00"), "YYYY-MM-DD HH:MM[:SS]",
// or a date alone ("2026-11-18", dateOnly true). Times without an offset are
// in loc.
func parseTime(s string, loc *time.Location) (t time.Time, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.In(loc), false, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, false, nil
		}
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date and time: use ISO 8601 (2026-11-18T15:00:00+09:00) or \"YYYY-MM-DD HH:MM\" (2026-11-18 15:00)", s)
}
