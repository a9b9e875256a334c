package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type timeInput struct {
	Timezone string `json:"timezone,omitempty" jsonschema:"IANA time zone name such as Asia/Seoul, America/New_York or UTC. Leave empty for the configured default zone."`
}

// TimeOutput is get_current_time's structured result.
type TimeOutput struct {
	Timezone      string `json:"timezone" jsonschema:"IANA time zone used"`
	Datetime      string `json:"datetime" jsonschema:"ISO 8601 date and time with UTC offset"`
	Date          string `json:"date" jsonschema:"date as YYYY-MM-DD"`
	Time          string `json:"time" jsonschema:"time as HH:MM:SS (24-hour)"`
	UTCOffset     string `json:"utcOffset" jsonschema:"offset from UTC as +HH:MM"`
	Weekday       string `json:"weekday" jsonschema:"weekday in English"`
	WeekdayKorean string `json:"weekdayKo" jsonschema:"weekday in Korean"`
	Unix          int64  `json:"unix" jsonschema:"Unix timestamp in seconds"`
}

var koreanWeekdays = [...]string{"일요일", "월요일", "화요일", "수요일", "목요일", "금요일", "토요일"}

func addClock(s *mcp.Server, o Options) {
	addTool(s, o.Logger, &mcp.Tool{
		Name:  ToolCurrentTime,
		Title: "Current time",
		Description: "Returns the current date and time in a time zone (default " + o.Timezone + "): ISO 8601 datetime, date, time, " +
			"UTC offset, weekday in English and Korean, and Unix time. Call it before working out relative dates " +
			"such as 'tomorrow', 'in 3 days' or 'next Monday'. 현재 날짜와 시각을 알려 줍니다.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: false, OpenWorldHint: ptr(false)},
	}, func(s *jsonschema.Schema) {
		prop(s, "timezone").MaxLength = ptr(64)
	}, nil, func(ctx context.Context, req *mcp.CallToolRequest, in timeInput) (*TimeOutput, string, error) {
		zone := in.Timezone
		if zone == "" {
			zone = o.Timezone
		}
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "Local" {
			return nil, "", fail(nil, "unknown time zone %q: use an IANA name such as Asia/Seoul or UTC (알 수 없는 시간대입니다)", zone)
		}
		now := o.Now().In(loc)
		out := &TimeOutput{
			Timezone:      zone,
			Datetime:      now.Format(time.RFC3339),
			Date:          now.Format(time.DateOnly),
			Time:          now.Format(time.TimeOnly),
			UTCOffset:     now.Format("-07:00"),
			Weekday:       now.Weekday().String(),
			WeekdayKorean: koreanWeekdays[now.Weekday()],
			Unix:          now.Unix(),
		}
		return out, fmt.Sprintf("%s (%s, %s) in %s", out.Datetime, out.Weekday, out.WeekdayKorean, zone), nil
	})
}
