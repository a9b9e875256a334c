package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Explain returns a human-readable summary of c for "switchboard config
// check". Header and env values, secrets and URL credentials are left out:
// the output may be pasted into a bug report.
func Explain(c *Config) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("config: %s", c.File)
	p("listen: %s", c.Listen)
	if c.PublicURL != "" {
		p("public URL: %s", redactURL(c.PublicURL))
	}
	if len(c.AllowedOrigins) > 0 {
		p("allowed origins: %s", strings.Join(c.AllowedOrigins, ", "))
	}
	if len(c.TrustedProxies) > 0 {
		ps := make([]string, len(c.TrustedProxies))
		for i, pr := range c.TrustedProxies {
			ps[i] = pr.String()
		}
		p("trusted proxies: %s", strings.Join(ps, ", "))
	}
	p("max request bytes: %d", c.MaxRequestBytes)
	p("max MCP sessions per user: %d", c.MaxSessionsPerUser)
	p("timezone: %s", c.Timezone)
	explainTools(p, &c.Tools)
	if len(c.IgnoredSections) > 0 {
		p("ignored sections: %s", strings.Join(c.IgnoredSections, ", "))
	}
	if len(c.Settings.AllowedDomains) > 0 {
		p("mcpSettings.allowedDomains: %s", strings.Join(c.Settings.AllowedDomains, ", "))
	}
	if len(c.Settings.AllowedAddresses) > 0 {
		p("mcpSettings.allowedAddresses: %s", strings.Join(c.Settings.AllowedAddresses, ", "))
	}

	if len(c.Servers) == 0 {
		p("servers: none (only the built-in %q server)", BuiltinServer)
		return b.String()
	}
	p("servers: %d", len(c.Servers))
	for _, s := range c.Servers {
		p("")
		p("%s (%s, %s)", s.Name, s.Pos, s.Type)
		if s.Type == Stdio {
			p("  command: %s", strings.Join(append([]string{quoteArg(s.Command)}, quoteArgs(s.Args)...), " "))
			if s.Cwd != "" {
				p("  cwd: %s", s.Cwd)
			}
			if len(s.Env) > 0 {
				p("  env: %s", strings.Join(slices.Sorted(maps.Keys(s.Env)), ", "))
			}
		} else {
			p("  url: %s", redactURL(s.URL))
			if len(s.Headers) > 0 {
				p("  headers: %s", strings.Join(slices.Sorted(maps.Keys(s.Headers)), ", "))
			}
		}
		if s.Proxy != "" {
			p("  proxy: %s", redactURL(s.Proxy))
		}
		sse := "none"
		if s.SSEReadTimeout > 0 {
			sse = s.SSEReadTimeout.String()
		}
		p("  timeouts: request %s, init %s, sse read %s", s.Timeout, s.InitTimeout, sse)
		if s.Timeout < time.Second || s.InitTimeout < time.Second {
			p("  note: timeouts are in milliseconds (as in LibreChat); under 1s is probably a mistake")
		}
		p("  startup: %s, chat menu: %s", yesNo(s.Startup), yesNo(s.ChatMenu))
		switch {
		case s.ServerInstructions.Text != "":
			p("  instructions: custom (%d characters)", len(s.ServerInstructions.Text))
		case s.ServerInstructions.Enabled:
			p("  instructions: the server's own")
		}
		if s.APIKey != nil {
			p("  apiKey: source %s, %s", s.APIKey.Source, s.APIKey.AuthorizationType)
		}
		if s.OAuth != nil || (s.RequiresOAuth != nil && *s.RequiresOAuth) {
			p("  oauth: yes")
		}
		if names := s.CustomUserVarNames(); len(names) > 0 {
			p("  customUserVars: %s", strings.Join(names, ", "))
		}
		p("  user-scoped: %s", yesNo(s.UserScoped()))
		pending := s.PendingFeatures()
		if len(pending) == 0 {
			p("  ready: yes")
			continue
		}
		p("  ready: no")
		for _, f := range pending {
			p("  - %s", f)
		}
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = quoteArg(a)
	}
	return out
}

// quoteArg quotes an argument that would not read back as one word.
func quoteArg(a string) string {
	if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
		return fmt.Sprintf("%q", a)
	}
	return a
}

// redactURL hides a URL's password and query values, which often carry keys.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if u.User == nil && u.RawQuery == "" {
		return raw // as written: re-encoding would escape {{placeholders}}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// explainTools lists the built-in tools and, for those left out, why.
func explainTools(p func(string, ...any), t *Tools) {
	p("built-in tools:")
	p("  get_current_time: on")
	switch ws := t.WebSearch; ws.Provider {
	case ProviderNaver:
		p("  web_search: naver (%s)", redactURL(orDefault(ws.Naver.BaseURL, "https://openapi.naver.com")))
	case ProviderSearXNG:
		p("  web_search: searxng (%s)", redactURL(ws.SearXNG.URL))
	default:
		p("  web_search: off (tools.webSearch is not configured)")
	}
	if t.WebRead.Disabled {
		p("  web_read: off (tools.webRead.enabled: false)")
	} else {
		p("  web_read: on")
	}
	switch c := t.Calendar; c.Provider {
	case ProviderNaver:
		p("  create_calendar_schedule: naver, with each user's NAVER sign-in (%s, calendar %s)", redactURL(orDefault(c.Naver.BaseURL, "https://openapi.naver.com")), orDefault(c.Naver.CalendarID, "defaultCalendarId"))
		p("  list_calendar_schedules: off (the NAVER Calendar API cannot list events)")
	case ProviderCalDAV:
		def := "none; each user sets CALDAV_URL"
		if c.CalDAV.URL != "" {
			def = redactURL(c.CalDAV.URL)
		}
		p("  create_calendar_schedule, list_calendar_schedules: caldav, with each user's credentials (default server: %s)", def)
	case ProviderKakao:
		p("  create_calendar_schedule, list_calendar_schedules: kakao Talk Calendar, with each user's Kakao sign-in and talk_calendar consent (%s, calendar %s)",
			redactURL(orDefault(c.Kakao.BaseURL, "https://kapi.kakao.com")), orDefault(c.Kakao.CalendarID, "primary; listing covers every own calendar"))
	case ProviderNaverWorks:
		p("  create_calendar_schedule, list_calendar_schedules: naverworks, with each user's NAVER WORKS sign-in and calendar scope (%s, calendar %s)",
			redactURL(orDefault(c.NaverWorks.BaseURL, "https://www.worksapis.com/v1.0")), orDefault(c.NaverWorks.CalendarID, "the user's default"))
	default:
		p("  create_calendar_schedule: off (tools.calendar is not configured)")
	}
	for _, h := range t.HTTPTools {
		auth := orDefault(h.Auth.Mode, "none")
		if h.Auth.Env != "" {
			state := "set"
			if h.Auth.Token == "" {
				state = "not set"
			}
			auth += fmt.Sprintf(" (%s, %s)", h.Auth.Env, state)
		}
		p("  %s (%s): %s %s, auth %s", h.Name, h.Pos, orDefault(h.Method, "GET"), redactURL(h.URL), auth)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
