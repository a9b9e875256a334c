package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	"github.com/emersion/go-webdav/caldav"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

// Fuzz targets for what the built-in tools read from the outside: web pages,
// search answers, HTTP-API answers, CalDAV servers, and the calendar
// arguments a model writes.

// answer is a canned HTTP response.
type answer struct {
	status int
	ctype  string
	body   string
}

// answers serves canned responses in-process, keyed by method and path.
type answers struct {
	mu sync.Mutex // guards m
	m  map[string]answer
}

func (a *answers) set(method, path string, ans answer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[method+" "+path] = ans
}

func (a *answers) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	a.mu.Lock()
	ans, ok := a.m[r.Method+" "+r.URL.Path]
	a.mu.Unlock()
	if !ok {
		ans = answer{http.StatusNotFound, "text/plain", "not found"}
	}
	return &http.Response{StatusCode: ans.status, Status: http.StatusText(ans.status),
		Header: http.Header{"Content-Type": {ans.ctype}}, Body: io.NopCloser(strings.NewReader(ans.body)), Request: r}, nil
}

var (
	scriptRE = regexp.MustCompile(`(?i)<\s*script`)
	mdLinkRE = regexp.MustCompile(`\]\(([^)\s]*)`)
)

// FuzzHTMLToMarkdown feeds web pages to web_read's HTML → Markdown
// conversion. The Markdown never carries a script element or a link or
// image target with a scheme other than http(s), mailto and tel, and stays
// within a bound of the page's size.
func FuzzHTMLToMarkdown(f *testing.F) {
	for _, s := range []string{
		articlePage,
		"<html><body><p>" + strings.Repeat("a", 5000) + "</p></body></html>",
		`<html><head><title>t</title><script>alert(1)</script></head><body><p>hi<script>document.cookie</script></p></body></html>`,
		`<p><a href="javascript:alert(1)">x</a> <img src="javascript:alert(2)" alt="y"><a href=" JaVaScRiPt:alert(3)">z</a></p>`,
		`<svg><script>alert(1)</script></svg><noscript><script>x</script></noscript><iframe srcdoc="<script>x</script>"></iframe>`,
		`<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>`,
		`<title>A &amp; B</title><table><tr><td>1</td><td>2</td></tr></table><pre><code>x := 1</code></pre>`,
		"<p>\xff\xfe invalid \xc3</p>",
		`<a href="/relative?q=1#f">rel</a><a href="//other.example/x">proto</a>`,
		``,
	} {
		f.Add([]byte(s))
	}
	page, _ := url.Parse("https://blog.example.com/posts/rust-vs-go")
	f.Fuzz(func(t *testing.T, body []byte) {
		title, md, err := htmlToMarkdown(body, page)
		if err != nil {
			return
		}
		if loc := scriptRE.FindStringIndex(md); loc != nil && !escapedText(body) {
			t.Fatalf("Markdown keeps a script element: %q", md)
		}
		for _, m := range mdLinkRE.FindAllStringSubmatch(md, -1) {
			if u, err := url.Parse(m[1]); err == nil && !safeSchemes[strings.ToLower(u.Scheme)] {
				t.Fatalf("Markdown keeps the link target %q: %q", m[1], md)
			}
		}
		if limit := 8*len(body) + 2*len(title) + 1024; len(md) > limit {
			t.Fatalf("%d bytes of Markdown from %d bytes of HTML", len(md), len(body))
		}
	})
}

// escapedText reports whether a page spells out "<script" as text (an
// entity or a CDATA section), which Markdown then shows as text.
func escapedText(body []byte) bool {
	return bytes.Contains(body, []byte("&lt")) || bytes.Contains(body, []byte("&#")) || bytes.Contains(bytes.ToLower(body), []byte("cdata")) ||
		bytes.Contains(bytes.ToLower(body), []byte("<plaintext")) || bytes.Contains(bytes.ToLower(body), []byte("<xmp")) ||
		bytes.Contains(bytes.ToLower(body), []byte("<textarea")) || bytes.Contains(bytes.ToLower(body), []byte("<title"))
}

// checkSearch asserts what web_search promises of any provider's output.
func checkSearch(t *testing.T, q SearchQuery, out *SearchOutput) {
	t.Helper()
	if len(out.Results) > q.Display {
		t.Fatalf("%d results for display %d", len(out.Results), q.Display)
	}
	for i, it := range out.Results {
		if it.Rank != q.Start+i {
			t.Fatalf("result %d has rank %d (start %d)", i, it.Rank, q.Start)
		}
		for _, s := range []string{it.Title, it.Snippet} {
			if s != strings.TrimSpace(s) || strings.Contains(s, "  ") || strings.ContainsAny(s, "\n\t") {
				t.Fatalf("text %q is not collapsed", s)
			}
		}
		if it.Domain != domainOf(it.URL) {
			t.Fatalf("domain %q of %q", it.Domain, it.URL)
		}
	}
	_ = renderSearch(out)
}

// naverSample is what idptest's NAVER fake answers (WIRE.md "NAVER search").
const naverSample = `{"lastBuildDate":"Wed, 28 Sep 2016 16:43:34 +0900","total":81296956,"start":1,"display":2,` +
	`"items":[{"title":"<b>주식</b> 시세 &amp; 차트","link":"https://finance.example.com/a","description":"오늘의 <b>주식</b> &quot;시세&quot;"},` +
	`{"title":"뉴스","link":"https://n.news.naver.com/x","originallink":"https://press.example.com/x","description":"d","pubDate":"Mon, 26 Sep 2016 07:50:00 +0900"},` +
	`{"title":"블로그","link":"https://blog.naver.com/x","description":"b","postdate":"20160926"}]}`

// FuzzNaverSearch feeds NAVER Search API answers, success and error.
func FuzzNaverSearch(f *testing.F) {
	f.Add(naverSample, http.StatusOK, uint8(3), uint16(1))
	f.Add(`{"total":1,"start":1,"display":1,"items":[{"title":"a","link":"https://x.example","description":"d"},{"title":"b","link":"https://y.example","description":"d"}]}`, 200, uint8(0), uint16(1))
	f.Add(`{"errorMessage":"Incorrect query request (잘못된 쿼리요청입니다.)","errorCode":"SE01"}`, 400, uint8(10), uint16(1))
	f.Add(`{"errorMessage":"Invalid Search Api (없는 검색 api 요청입니다.)","errorCode":"SE05"}`, 404, uint8(10), uint16(1))
	f.Add(`{"errorMessage":"System Error (시스템 에러)","errorCode":"SE99"}`, 500, uint8(10), uint16(1))
	f.Add(`{"errorMessage":"Authentication failed. (인증에 실패했습니다.)","errorCode":"024"}`, 401, uint8(10), uint16(1))
	f.Add(`{"errorMessage":"Scope Status Invalid : Authentication failed.","errorCode":"010"}`, 429, uint8(10), uint16(1))
	f.Add(`{"items":[{"title":"<b","link":"::","description":"&#x0;&#9999999;"}]}`, 200, uint8(10), uint16(1000))
	f.Add(`<html>oops</html>`, 200, uint8(10), uint16(1))
	f.Fuzz(func(t *testing.T, body string, status int, display uint8, start uint16) {
		if status < 100 || status > 599 {
			status = 200
		}
		q := SearchQuery{Query: "주식", Kind: KindWeb, Display: 1 + int(display)%100, Start: 1 + int(start)%1000}
		a := &answers{m: map[string]answer{}}
		a.set(http.MethodGet, "/v1/search/webkr.json", answer{status, "application/json", body})
		n := &NaverSearch{ClientID: "id", ClientSecret: "secret-never-shown", Client: &http.Client{Transport: a}}
		out, err := n.Search(context.Background(), q)
		if err != nil {
			if strings.Contains(err.Error(), "secret-never-shown") {
				t.Fatalf("error %q shows the client secret", err)
			}
			return
		}
		if status != http.StatusOK {
			t.Fatalf("HTTP %d accepted", status)
		}
		checkSearch(t, q, out)
	})
}

// searxngSample is the shape of SearXNG's /search?format=json.
const searxngSample = `{"query":"golang","number_of_results":123000,"results":[` +
	`{"url":"https://go.dev/","title":"The Go Programming Language","content":"Go is an open source <b>programming</b> language","engine":"duckduckgo","publishedDate":null},` +
	`{"url":"https://go.dev/","title":"dup","content":"dup"},` +
	`{"url":"https://news.example.com/go","title":"Go 1.26","content":"released","publishedDate":"2026-02-10T00:00:00"},` +
	`{"url":"https://blog.example.com/go","title":"Go","content":"c","publishedDate":"2026-02-11T09:00:00+09:00"}],` +
	`"answers":[],"corrections":[],"infoboxes":[],"suggestions":[],"unresponsive_engines":[]}`

// FuzzSearXNG feeds SearXNG answers; every page gets the same answer, as a
// misbehaving instance might send.
func FuzzSearXNG(f *testing.F) {
	f.Add(searxngSample, 200, uint8(10), uint16(1))
	f.Add(searxngSample, 200, uint8(99), uint16(7))
	f.Add(`{"number_of_results":1e300,"results":[]}`, 200, uint8(5), uint16(1))
	f.Add(`{"number_of_results":-1,"results":[{"url":"a"},{"url":"b"}]}`, 200, uint8(5), uint16(1))
	f.Add(`Forbidden`, 403, uint8(5), uint16(1))
	f.Add(`Too Many Requests`, 429, uint8(5), uint16(1))
	f.Fuzz(func(t *testing.T, body string, status int, display uint8, start uint16) {
		if status < 100 || status > 599 {
			status = 200
		}
		q := SearchQuery{Query: "golang", Kind: KindWeb, Display: 1 + int(display)%100, Start: 1 + int(start)%1000}
		a := &answers{m: map[string]answer{}}
		a.set(http.MethodGet, "/search", answer{status, "application/json", body})
		x := &SearXNG{URL: "http://searx.example", Client: &http.Client{Transport: a}}
		out, err := x.Search(context.Background(), q)
		if err != nil {
			return
		}
		if status != http.StatusOK {
			t.Fatalf("HTTP %d accepted", status)
		}
		checkSearch(t, q, out)
		seen := map[string]bool{}
		for _, it := range out.Results {
			if seen[it.URL] {
				t.Fatalf("duplicate result %q", it.URL)
			}
			seen[it.URL] = true
		}
		if out.TotalResults < int64(len(out.Results)) {
			t.Fatalf("total %d below %d results", out.TotalResults, len(out.Results))
		}
	})
}

// refPointer is a strict RFC 6901 evaluation, to compare resolvePointer
// with: array indexes are "0" or digits without a leading zero.
func refPointer(v any, p string) (any, bool) {
	if p == "" {
		return v, true
	}
	if p[0] != '/' {
		return nil, false
	}
	for _, tok := range strings.Split(p[1:], "/") {
		if strings.Contains(strings.NewReplacer("~0", "", "~1", "").Replace(tok), "~") {
			return nil, false
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			if !regexp.MustCompile(`^(0|[1-9][0-9]*)$`).MatchString(tok) || len(tok) > 9 {
				return nil, false
			}
			i := 0
			for _, c := range tok {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// FuzzResultPointer compares resultPointer evaluation with RFC 6901 on any
// JSON document and pointer (RFC 6901 §5 example seeded).
func FuzzResultPointer(f *testing.F) {
	rfc := `{"foo":["bar","baz"],"":0,"a/b":1,"c%d":2,"e^f":3,"g|h":4,"i\\j":5,"k\"l":6," ":7,"m~n":8}`
	for _, p := range []string{"", "/foo", "/foo/0", "/", "/a~1b", "/c%d", "/e^f", "/g|h", "/i\\j", "/k\"l", "/ ", "/m~0n",
		"/foo/01", "/foo/+1", "/foo/-0", "/foo/-", "/foo/2", "/m~2n", "foo"} {
		f.Add(rfc, p)
	}
	f.Add(`{"items":[{"id":1}]}`, "/items/0/id")
	f.Fuzz(func(t *testing.T, doc, p string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		got, err := resolvePointer(v, p)
		want, ok := refPointer(v, p)
		if (err == nil) != ok {
			t.Fatalf("resolvePointer(%s, %q): err %v, RFC 6901 says ok=%v", doc, p, err, ok)
		}
		if ok {
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if !bytes.Equal(a, b) {
				t.Fatalf("resolvePointer(%s, %q) = %s, want %s", doc, p, a, b)
			}
		}
	})
}

// FuzzHTTPToolResponse feeds an HTTP-API tool's upstream answer through
// resultPointer and the output schema. A result that is not an error has
// structured content matching the schema; an answer that is not 2xx is an
// error; the text is bounded.
func FuzzHTTPToolResponse(f *testing.F) {
	schemas := []map[string]any{
		nil,
		{"type": "object", "properties": map[string]any{"result": map[string]any{"type": "array"}}, "required": []any{"result"}},
		{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "integer"}, "name": map[string]any{"type": "string"}}, "required": []any{"id"}},
	}
	pointers := []string{"", "/items", "/data/0", "/a~1b"}
	for _, s := range []string{
		`{"items":[{"id":1,"name":"one"},{"id":2,"name":"two"}],"total":2}`,
		`{"id":1,"name":"one"}`,
		`{"data":[{"id":7,"name":"seven"}]}`,
		`[1,2,3]`, `"just text"`, `42`, `null`, ``, `not json at all`,
		`{"a/b":{"id":3}}`,
		`{"error":"not found"}`,
	} {
		for i := range schemas {
			for j := range pointers {
				f.Add(s, 200, uint8(i), uint8(j))
			}
		}
	}
	f.Add(`{"error":"boom"}`, 500, uint8(0), uint8(0))
	f.Add(strings.Repeat("x", 1000), 404, uint8(0), uint8(0))
	handlers := map[[2]int]*httpHandler{}
	a := &answers{m: map[string]answer{}}
	for i, s := range schemas {
		for j, p := range pointers {
			h, err := newHTTPHandler(HTTPTool{Name: "items", URL: "https://api.example/items", ResultPointer: p, OutputSchema: s},
				(&Options{HTTPClient: &http.Client{Transport: a}}).withDefaults())
			if err != nil {
				f.Fatal(err)
			}
			handlers[[2]int{i, j}] = h
		}
	}
	f.Fuzz(func(t *testing.T, body string, status int, schema, pointer uint8) {
		if status < 100 || status > 599 {
			status = 200
		}
		i, j := int(schema)%len(schemas), int(pointer)%len(pointers)
		h := handlers[[2]int{i, j}]
		a.set(http.MethodGet, "/items", answer{status, "application/json", body})
		res, err := h.handle(context.Background(), &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: "items"}})
		if err != nil {
			t.Fatalf("handler error %v (errors are results)", err)
		}
		if len(res.Content) != 1 {
			t.Fatalf("%d content blocks", len(res.Content))
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if utf8.RuneCountInString(text) > 100001 {
			t.Fatalf("%d runes of text", utf8.RuneCountInString(text))
		}
		if res.IsError {
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("HTTP %d is not an error", status)
		}
		sc, ok := res.StructuredContent.(map[string]any)
		if !ok {
			t.Fatalf("structured content %T", res.StructuredContent)
		}
		if err := h.out.Validate(sc); err != nil {
			t.Fatalf("structured content %v does not match the output schema: %v", sc, err)
		}
	})
}

// FuzzCalendarEvent feeds the arguments of create_calendar_schedule. An
// accepted event ends after it starts, and its iCalendar text parses back
// with go-ical into one event with the same title, description, location
// and recurrence, in lines of at most 75 octets.
func FuzzCalendarEvent(f *testing.F) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		f.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("팀 회의, 주간; 계획 \\ 검토", "2026-11-18T15:00:00+09:00", "2026-11-18 16:00", "", "안건:\n1. 회고", "서울 강남구 테헤란로 1, 3층", false)
	f.Add("Holiday", "2026-11-25", "", "", "", "", false)
	f.Add("Holiday", "2026-11-25", "2026-11-27", "FREQ=YEARLY", "", "", true)
	f.Add("Standup", "2026-11-18T09:00", "", "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10", "", "", true)
	f.Add("Bad", "2026-11-18 10:00", "2026-11-18 09:00", "", "", "", false)
	f.Add("Mixed", "2026-11-18", "2026-11-18 09:00", "", "", "", false)
	f.Add("Inject", "2026-11-18 10:00", "", "FREQ=DAILY\r\nATTENDEE:mailto:x@evil.example", "x\r\nATTENDEE:mailto:y@evil.example", "l\rX", false)
	f.Add("Edge", "9999-12-31T23:30:00Z", "", "", strings.Repeat("가", 100), strings.Repeat("\\;,", 40), true)
	f.Add("  ", "2026-11-18", "", "", "", "", false)
	now := time.Date(2026, 11, 18, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, title, start, end, recurrence, description, location string, utc bool) {
		for _, s := range []string{title, description, location} {
			if !utf8.ValidString(s) {
				return // arguments arrive as JSON strings
			}
		}
		loc := seoul
		if utc {
			loc = paris
		}
		ev, err := newEvent(scheduleInput{Title: title, Start: start, End: end, Description: description, Location: location, Recurrence: recurrence}, loc)
		if err != nil {
			return
		}
		if ev.End.Before(ev.Start) || (ev.AllDay && !ev.End.After(ev.Start)) {
			t.Fatalf("event from %v to %v", ev.Start, ev.End)
		}
		ics := icalendar(ev, now)
		for _, l := range strings.Split(strings.TrimSuffix(ics, "\r\n"), "\r\n") {
			if len(l) > 75 || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("line %q", l)
			}
		}
		cal, err := ical.NewDecoder(strings.NewReader(ics)).Decode()
		if err != nil {
			t.Fatalf("iCalendar does not parse: %v\n%s", err, ics)
		}
		evs := cal.Events()
		if len(evs) != 1 {
			t.Fatalf("%d events in\n%s", len(evs), ics)
		}
		e := evs[0]
		for prop, want := range map[string]string{ical.PropSummary: ev.Summary, ical.PropDescription: ev.Description, ical.PropLocation: ev.Location} {
			got, _ := e.Props.Text(prop)
			if got != textValue(want) {
				t.Fatalf("%s = %q, want %q\n%s", prop, got, textValue(want), ics)
			}
		}
		if got := e.Props.Get(ical.PropRecurrenceRule); (got == nil) != (ev.RRule == "") || (got != nil && got.Value != ev.RRule) {
			t.Fatalf("RRULE %v, want %q", got, ev.RRule)
		}
		for name := range e.Props {
			switch name {
			case ical.PropUID, ical.PropDateTimeStamp, ical.PropCreated, ical.PropLastModified, ical.PropDateTimeStart, ical.PropDateTimeEnd,
				ical.PropSummary, ical.PropDescription, ical.PropLocation, ical.PropRecurrenceRule, ical.PropSequence, ical.PropStatus, ical.PropTransparency:
			default:
				t.Fatalf("unexpected property %s in\n%s", name, ics)
			}
		}
		if got, err := e.DateTimeStart(loc); err != nil || !got.Equal(ev.Start) {
			t.Fatalf("DTSTART %v (%v), want %v", got, err, ev.Start)
		}
	})
}

// textValue is what a TEXT value reads back as after escapeText: line
// breaks as \n, other control characters dropped.
func textValue(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// FuzzFoldLine checks RFC 5545 §3.1 folding on any text: no line over 75
// octets, and unfolding gives the text back.
func FuzzFoldLine(f *testing.F) {
	f.Add("DESCRIPTION:" + strings.Repeat("가나다", 40))
	f.Add("SUMMARY:" + strings.Repeat("a", 200))
	f.Add(strings.Repeat("\x80", 200))
	f.Add("")
	f.Fuzz(func(t *testing.T, l string) {
		if strings.ContainsAny(l, "\r\n") {
			return
		}
		out := foldLine(l)
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("%q does not end with CRLF", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		var b strings.Builder
		for i, x := range lines {
			if len(x) > 75 {
				t.Fatalf("line of %d octets", len(x))
			}
			if i > 0 {
				if !strings.HasPrefix(x, " ") {
					t.Fatalf("continuation %q without a leading space", x)
				}
				x = x[1:]
			}
			b.WriteString(x)
		}
		if b.String() != l {
			t.Fatalf("unfolds to %q, want %q", b.String(), l)
		}
	})
}

// calDAVCapture forwards to go-webdav's CalDAV server (toolstest.NewCalDAV)
// and records its answers, or answers with a fuzzed body.
type calDAVCapture struct {
	mu   sync.Mutex // guards the fields below
	last map[string]string
	fuzz map[string]string // method -> body to answer instead, with 207
}

func (c *calDAVCapture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	body, fuzzed := c.fuzz[r.Method]
	c.mu.Unlock()
	if fuzzed {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusMultiStatus, Header: http.Header{"Content-Type": {"application/xml; charset=utf-8"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.last[r.Method] = string(b)
	c.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// FuzzCalDAV feeds the multistatus XML of a CalDAV server's PROPFIND
// (calendar discovery) and REPORT (calendar-query) answers, seeded with what
// go-webdav's own server answers for a calendar holding testdata events.
func FuzzCalDAV(f *testing.F) {
	srv, _ := toolstest.NewCalDAV(f, map[string]string{"alice": "pw-a"}, fixedNow)
	capture := &calDAVCapture{last: map[string]string{}, fuzz: map[string]string{}}
	calPath := "/dav/alice/calendars/default/"
	newSession := func() *session {
		hc := &http.Client{Transport: capture}
		sc := &statusClient{c: webdav.HTTPClientWithBasicAuth(hc, "alice", "pw-a")}
		client, err := caldav.NewClient(sc, srv.URL+calPath)
		if err != nil {
			f.Fatal(err)
		}
		return &session{client: client, status: sc, http: hc}
	}
	s := newSession()
	for _, name := range []string{"meeting.ics", "all-day.ics", "utc-weekly.ics"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
		if err != nil {
			f.Fatal(err)
		}
		if _, err := s.client.PutCalendarObject(context.Background(), calPath+name, cal); err != nil {
			f.Fatal(err)
		}
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, seoul), time.Date(2027, 12, 31, 0, 0, 0, 0, seoul)
	// list is calDAV.list after connect.
	list := func(s *session) ([]ScheduleItem, error) {
		objs, err := s.client.QueryCalendar(context.Background(), s.calendar, &caldav.CalendarQuery{
			CompRequest: caldav.CalendarCompRequest{Name: "VCALENDAR", Comps: []caldav.CalendarCompRequest{{Name: "VEVENT", AllProps: true}}},
			CompFilter:  caldav.CompFilter{Name: "VCALENDAR", Comps: []caldav.CompFilter{{Name: "VEVENT", Start: from.UTC(), End: to.UTC()}}},
		})
		if err != nil {
			return nil, err
		}
		var items []ScheduleItem
		for _, o := range objs {
			if o.Data == nil {
				continue
			}
			for _, e := range o.Data.Events() {
				items = append(items, scheduleItem(&e, seoul))
			}
		}
		return items, nil
	}
	var err error
	if s.calendar, err = s.findCalendar(context.Background(), calPath); err != nil {
		f.Fatal(err)
	}
	items, err := list(s)
	if err != nil || len(items) != 3 {
		f.Fatalf("real CalDAV server: %d items, %v", len(items), err)
	}
	f.Add(capture.last["PROPFIND"], capture.last["REPORT"])
	f.Add(`<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/x/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`,
		`<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/x/a.ics</d:href><d:propstat><d:prop><c:calendar-data>BEGIN:VCALENDAR&#13;&#10;BEGIN:VEVENT&#13;&#10;DTSTART:bogus&#13;&#10;END:VEVENT&#13;&#10;END:VCALENDAR&#13;&#10;</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>`)
	f.Add(`<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><d:multistatus xmlns:d="DAV:">&b;</d:multistatus>`, `<x/>`)
	f.Fuzz(func(t *testing.T, propfind, report string) {
		capture.mu.Lock()
		capture.fuzz = map[string]string{"PROPFIND": propfind, "REPORT": report}
		capture.mu.Unlock()
		s := newSession()
		cal, err := s.findCalendar(context.Background(), calPath)
		if err != nil {
			return
		}
		if cal == "" {
			t.Fatal("empty calendar path accepted")
		}
		s.calendar = cal
		items, err := list(s)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.Start != "" {
				if _, err := time.Parse(time.RFC3339, it.Start); err != nil {
					if _, err := time.Parse(time.DateOnly, it.Start); err != nil {
						t.Fatalf("start %q", it.Start)
					}
				}
			}
		}
		_ = renderList(&ScheduleList{Events: items})
	})
}
