package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// Built-in tools that get their own summaries and citations. They are
// recognized by name on any server, so a replacement server that offers a
// tool of the same name and shape is summarized the same way.
const (
	toolWebSearch = "web_search"
	toolWebRead   = "web_read"
	toolCalendar  = "create_calendar_schedule"
	toolTime      = "get_current_time"
)

var displayNames = map[string][2]string{ // ko, en
	toolWebSearch: {"웹 검색", "Web search"},
	toolWebRead:   {"웹 페이지 읽기", "Web read"},
	toolCalendar:  {"일정 만들기", "Create event"},
	toolTime:      {"현재 시각 확인", "Current time"},
}

func displayName(lang, tool string) string {
	if n, ok := displayNames[tool]; ok {
		if lang == English {
			return n[1]
		}
		return n[0]
	}
	return tool
}

// startSummary is the one-line summary of a call about to run.
func startSummary(lang, server, tool string, args map[string]any) string {
	ko := lang != English
	switch tool {
	case toolWebSearch:
		q := str(args, "query", "q", "keyword")
		if ko {
			return fmt.Sprintf("웹 검색: %q", q)
		}
		return fmt.Sprintf("Web search: %q", q)
	case toolWebRead:
		hosts := hostsOf(urlsOf(args))
		if ko {
			return "웹 페이지 읽기: " + strings.Join(hosts, ", ")
		}
		return "Reading web pages: " + strings.Join(hosts, ", ")
	case toolCalendar:
		t, when := str(args, "summary", "title", "name"), formatWhen(str(args, "start", "startTime", "start_time", "startDateTime", "dtstart", "datetime"))
		if ko {
			return strings.TrimSpace(fmt.Sprintf("일정 만들기: %q %s", t, when))
		}
		return strings.TrimSpace(fmt.Sprintf("Creating event: %q %s", t, when))
	case toolTime:
		if ko {
			return "현재 시각 확인"
		}
		return "Checking the current time"
	}
	kv := keyArgs(args)
	if ko {
		if server == "" {
			return strings.TrimSpace(fmt.Sprintf("%s 호출 %s", tool, kv))
		}
		return strings.TrimSpace(fmt.Sprintf("%s의 %s 호출 %s", server, tool, kv))
	}
	if server == "" {
		return strings.TrimSpace(fmt.Sprintf("Calling %s %s", tool, kv))
	}
	return strings.TrimSpace(fmt.Sprintf("Calling %s on %s %s", tool, server, kv))
}

// finishSummary is the one-line summary of a finished call.
func finishSummary(lang, tool string, args map[string]any, res *mcp.CallToolResult, err error) string {
	ko := lang != English
	name := displayName(lang, tool)
	if err != nil || (res != nil && res.IsError) {
		text := ""
		if err != nil {
			text = errorText(lang, err)
		} else {
			text = firstLine(resultText(res), 120)
		}
		if ko {
			return fmt.Sprintf("%s 실패: %s", name, text)
		}
		return fmt.Sprintf("%s failed: %s", name, text)
	}
	sc := structured(res)
	switch tool {
	case toolWebSearch:
		q := str(args, "query", "q", "keyword")
		items := searchItems(sc)
		hosts := hostsOf(itemURLs(items))
		if len(hosts) > 3 {
			hosts = hosts[:3]
		}
		n := len(items)
		if n == 0 {
			if ko {
				return fmt.Sprintf("%q 검색 결과 없음", q)
			}
			return fmt.Sprintf("No results for %q", q)
		}
		if ko {
			return fmt.Sprintf("%q 검색 결과 %d건 (%s)", q, n, strings.Join(hosts, ", "))
		}
		return fmt.Sprintf("%d results for %q (%s)", n, q, strings.Join(hosts, ", "))
	case toolWebRead:
		pages := readPages(sc, args)
		var titles []string
		for _, p := range pages {
			titles = append(titles, truncate(firstNonEmpty(p.Title, hostOf(p.URL)), 40))
		}
		if ko {
			return fmt.Sprintf("웹 페이지 %d개 읽음: %s", len(pages), strings.Join(titles, ", "))
		}
		return fmt.Sprintf("Read %d page(s): %s", len(pages), strings.Join(titles, ", "))
	case toolCalendar:
		merged := map[string]any{}
		for k, v := range args {
			merged[k] = v
		}
		for k, v := range sc {
			merged[k] = v
		}
		t, when := str(merged, "summary", "title", "name"), formatWhen(str(merged, "start", "startTime", "start_time", "startDateTime", "dtstart", "datetime"))
		if ko {
			return strings.TrimSpace(fmt.Sprintf("일정을 만들었습니다: %q %s", t, when))
		}
		return strings.TrimSpace(fmt.Sprintf("Created event %q %s", t, when))
	case toolTime:
		when := formatWhen(str(sc, "datetime"))
		if when == "" {
			when = firstLine(resultText(res), 60)
		}
		wd := str(sc, "weekday")
		if ko {
			wd = str(sc, "weekdayKo")
		}
		if wd != "" {
			when += " (" + wd + ")"
		}
		if ko {
			return "현재 시각: " + when
		}
		return "Current time: " + when
	}
	text := resultText(res)
	line := firstLine(text, 80)
	size := ""
	if strings.Contains(strings.TrimSpace(text), "\n") || len(text) > 80 {
		size = fmt.Sprintf(" (%s)", byteSize(len(text)))
	}
	if ko {
		if line == "" {
			return fmt.Sprintf("%s 완료%s", name, size)
		}
		return fmt.Sprintf("%s 완료: %s%s", name, line, size)
	}
	if line == "" {
		return fmt.Sprintf("%s done%s", name, size)
	}
	return fmt.Sprintf("%s done: %s%s", name, line, size)
}

func keyArgs(args map[string]any) string {
	keys := make([]string, 0, len(args))
	for k, v := range args {
		switch v.(type) {
		case string, float64, bool, json.Number:
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > 3 {
		keys = keys[:3]
	}
	var parts []string
	for _, k := range keys {
		v := args[k]
		if s, ok := v.(string); ok {
			parts = append(parts, fmt.Sprintf("%s=%q", k, truncate(s, 30)))
		} else {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func byteSize(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1024)
}

func firstLine(s string, n int) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return truncate(strings.TrimSpace(s), n)
}

func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// formatWhen shows a date-time as "2006-01-02 15:04"; text it cannot parse
// is shown as it is.
func formatWhen(s string) string {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "20060102T150405"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("2006-01-02 15:04")
		}
	}
	return s
}

func structured(res *mcp.CallToolResult) map[string]any {
	if res == nil || res.StructuredContent == nil {
		return nil
	}
	if m, ok := res.StructuredContent.(map[string]any); ok {
		return m
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// item is one search result or page.
type item struct{ Title, URL, Snippet string }

// searchItems finds the result list of a search-like structured result:
// an array of objects with a URL under one of the usual keys.
func searchItems(sc map[string]any) []item {
	for _, k := range []string{"items", "results", "webPages", "organic", "documents", "pages"} {
		arr, ok := sc[k].([]any)
		if !ok {
			continue
		}
		var out []item
		for _, e := range arr {
			m, ok := e.(map[string]any)
			if !ok {
				continue
			}
			it := item{Title: clean(str(m, "title", "name")), URL: str(m, "url", "link", "href"), Snippet: clean(str(m, "snippet", "description", "content", "summary"))}
			if it.URL != "" {
				out = append(out, it)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

func readPages(sc map[string]any, args map[string]any) []item {
	if items := searchItems(sc); len(items) > 0 {
		return items
	}
	if u := str(sc, "url", "link"); u != "" {
		return []item{{Title: clean(str(sc, "title")), URL: u, Snippet: clean(truncate(str(sc, "description", "excerpt"), 200))}}
	}
	var out []item
	for _, u := range urlsOf(args) {
		out = append(out, item{URL: u})
	}
	return out
}

func urlsOf(args map[string]any) []string {
	if u := str(args, "url"); u != "" {
		return []string{u}
	}
	var out []string
	if arr, ok := args["urls"].([]any); ok {
		for _, e := range arr {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func itemURLs(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.URL
	}
	return out
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	return strings.TrimPrefix(p.Hostname(), "www.")
}

// hostsOf returns the distinct hosts of urls in order of first appearance.
func hostsOf(urls []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, u := range urls {
		h := hostOf(u)
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// clean strips markup such as NAVER search's <b> tags and decodes entities.
func clean(s string) string {
	return strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(s, "")))
}

// Messages shown to users, in Korean and English.
const (
	msgMaxIterations = iota
	msgCancelled
	msgAuth
	msgUnknownModel
	msgRefused
	msgRateLimited
	msgUnavailable
	msgInternal
	msgToolTimeout
)

var messages = map[int][2]string{
	msgMaxIterations: {"도구를 %d번 사용하고도 답을 마치지 못해 여기서 멈췄습니다. 질문을 좁혀서 다시 시도해 주세요.", "I stopped after %d steps without finishing the answer. Please try a narrower question."},
	msgCancelled:     {"실행이 취소되었습니다.", "The run was cancelled."},
	msgAuth:          {"모델 API가 API 키를 거부했습니다. 관리자에게 설정을 확인해 달라고 요청하세요.", "The model API refused the API key. Ask an administrator to check the configuration."},
	msgUnknownModel:  {"모델 API가 모델 %q를 알지 못합니다.", "The model API does not know the model %q."},
	msgRefused:       {"모델 API가 요청을 거부했습니다: %s", "The model API refused the request: %s"},
	msgRateLimited:   {"모델 API의 사용 한도에 걸렸습니다. 잠시 뒤 다시 시도해 주세요.", "The model API's rate limit was reached. Please try again in a moment."},
	msgUnavailable:   {"모델 API에 연결할 수 없습니다. 잠시 뒤 다시 시도해 주세요.", "The model API cannot be reached. Please try again in a moment."},
	msgInternal:      {"답을 만드는 중에 오류가 났습니다.", "Something went wrong while answering."},
	msgToolTimeout:   {"시간 초과", "timed out"},
}

func msg(lang string, id int, args ...any) string {
	t := messages[id][0]
	if lang == English {
		t = messages[id][1]
	}
	if len(args) == 0 {
		return t
	}
	return fmt.Sprintf(t, args...)
}

// userError is the message an error event shows; the cause is logged.
func userError(lang string, err error) string {
	var ae *llm.APIError
	switch {
	case errors.Is(err, context.Canceled):
		return msg(lang, msgCancelled)
	case errors.Is(err, llm.ErrAuth):
		return msg(lang, msgAuth)
	case errors.Is(err, llm.ErrUnknownModel) && errors.As(err, &ae):
		return msg(lang, msgUnknownModel, ae.Model)
	case errors.Is(err, llm.ErrRefused) && errors.As(err, &ae):
		return msg(lang, msgRefused, ae.Message)
	case errors.Is(err, llm.ErrRateLimited):
		return msg(lang, msgRateLimited)
	case errors.Is(err, llm.ErrUnavailable):
		return msg(lang, msgUnavailable)
	}
	return msg(lang, msgInternal)
}

// errorText is a tool error for summaries, in the user's language where
// Switchboard wrote it.
func errorText(lang string, err error) string {
	if errors.Is(err, errToolTimeout) {
		return msg(lang, msgToolTimeout)
	}
	return firstLine(err.Error(), 120)
}
