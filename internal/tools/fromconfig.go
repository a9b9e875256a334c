package tools

import "github.com/switchboard-mcp/switchboard/internal/config"

// OptionsFromConfig maps the config's tools section (and mcpSettings, which
// also governs the addresses web_read may fetch) onto Options. The caller
// adds the per-user hooks.
func OptionsFromConfig(c *config.Config) *Options {
	t := c.Tools
	o := &Options{
		Timezone:         c.Timezone,
		AllowedDomains:   c.Settings.AllowedDomains,
		AllowedAddresses: c.Settings.AllowedAddresses,
		WebSearch: WebSearchOptions{
			Provider:          t.WebSearch.Provider,
			NaverClientID:     t.WebSearch.Naver.ClientID,
			NaverClientSecret: t.WebSearch.Naver.ClientSecret,
			NaverBaseURL:      t.WebSearch.Naver.BaseURL,
			SearXNGURL:        t.WebSearch.SearXNG.URL,
		},
		WebRead: WebReadOptions{
			Disabled:      t.WebRead.Disabled,
			MaxBytes:      t.WebRead.MaxBytes,
			Timeout:       t.WebRead.Timeout,
			MaxURLs:       t.WebRead.MaxURLs,
			MaxConcurrent: t.WebRead.MaxConcurrent,
			MaxChars:      t.WebRead.MaxChars,
		},
		Calendar: CalendarOptions{
			Provider:             t.Calendar.Provider,
			NaverBaseURL:         t.Calendar.Naver.BaseURL,
			NaverCalendarID:      t.Calendar.Naver.CalendarID,
			CalDAVURL:            t.Calendar.CalDAV.URL,
			KakaoBaseURL:         t.Calendar.Kakao.BaseURL,
			KakaoCalendarID:      t.Calendar.Kakao.CalendarID,
			NaverWorksBaseURL:    t.Calendar.NaverWorks.BaseURL,
			NaverWorksCalendarID: t.Calendar.NaverWorks.CalendarID,
		},
	}
	for _, h := range t.HTTPTools {
		o.HTTPTools = append(o.HTTPTools, HTTPTool{
			Name: h.Name, Title: h.Title, Description: h.Description, Method: h.Method, URL: h.URL,
			Query: h.Query, Headers: h.Headers, Body: h.Body, InputSchema: h.InputSchema, OutputSchema: h.OutputSchema,
			ResultPointer: h.ResultPointer, AuthMode: h.Auth.Mode, AuthToken: h.Auth.Token, Timeout: h.Timeout,
		})
	}
	return o
}
