package tools

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCurrentTime(t *testing.T) {
	c := connect(t, &Options{})
	tests := []struct {
		zone string
		want TimeOutput
	}{
		{"", TimeOutput{Timezone: "Asia/Seoul", Datetime: "2026-11-18T15:00:00+09:00", Date: "2026-11-18", Time: "15:00:00", UTCOffset: "+09:00", Weekday: "Wednesday", WeekdayKorean: "수요일", Unix: fixedNow.Unix()}},
		{"America/New_York", TimeOutput{Timezone: "America/New_York", Datetime: "2026-11-18T01:00:00-05:00", Date: "2026-11-18", Time: "01:00:00", UTCOffset: "-05:00", Weekday: "Wednesday", WeekdayKorean: "수요일", Unix: fixedNow.Unix()}},
		{"UTC", TimeOutput{Timezone: "UTC", Datetime: "2026-11-18T06:00:00Z", Date: "2026-11-18", Time: "06:00:00", UTCOffset: "+00:00", Weekday: "Wednesday", WeekdayKorean: "수요일", Unix: fixedNow.Unix()}},
	}
	for _, tt := range tests {
		var got TimeOutput
		wantOK(t, c.call("", ToolCurrentTime, map[string]any{"timezone": tt.zone}, &got))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.zone, diff)
		}
	}
	for _, zone := range []string{"Mars/Olympus", "Local"} {
		wantError(t, c.call("", ToolCurrentTime, map[string]any{"timezone": zone}, nil), zone, "IANA")
	}
}
