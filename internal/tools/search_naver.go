package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// NaverSearch is the NAVER Search API (WIRE.md "NAVER search").
type NaverSearch struct {
	ClientID, ClientSecret string
	// BaseURL is the Open API root. Empty: https://openapi.naver.com.
	BaseURL string
	// Client sends the requests. Nil: http.DefaultClient.
	Client *http.Client
}

var _ SearchProvider = (*NaverSearch)(nil)

const naverOpenAPI = "https://openapi.naver.com"

// naverSearchKinds maps web_search kinds to NAVER's search files.
var naverSearchKinds = map[string]string{KindWeb: "webkr", KindNews: "news", KindBlog: "blog"}

type naverSearchResponse struct {
	Total int64 `json:"total"`
	Start int   `json:"start"`
	Items []struct {
		Title        string `json:"title"`
		Link         string `json:"link"`
		OriginalLink string `json:"originallink"` // news: the publisher's URL
		Description  string `json:"description"`
		PubDate      string `json:"pubDate"`  // news: RFC 1123 with numeric zone
		PostDate     string `json:"postdate"` // blog: YYYYMMDD
	} `json:"items"`
}

type naverError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorCode    string `json:"errorCode"`
}

// Search implements SearchProvider.
func (n *NaverSearch) Search(ctx context.Context, q SearchQuery) (*SearchOutput, error) {
	file, ok := naverSearchKinds[q.Kind]
	if !ok {
		return nil, fail(nil, "unknown kind %q: use web, news or blog", q.Kind)
	}
	v := url.Values{}
	v.Set("query", q.Query)
	v.Set("display", strconv.Itoa(q.Display))
	v.Set("start", strconv.Itoa(q.Start))
	if q.Sort != "" && q.Kind != KindWeb { // webkr has no sort
		v.Set("sort", q.Sort)
	}
	base := strings.TrimRight(orDefault(n.BaseURL, naverOpenAPI), "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/search/"+file+".json?"+v.Encode(), nil)
	if err != nil {
		return nil, fail(err, "web_search is misconfigured: bad NAVER base URL")
	}
	req.Header.Set("X-Naver-Client-Id", n.ClientID)
	req.Header.Set("X-Naver-Client-Secret", n.ClientSecret)
	req.Header.Set("Accept", "application/json")
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fail(err, "NAVER search could not be reached; try again later")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fail(err, "NAVER search answer could not be read; try again")
	}
	if resp.StatusCode != http.StatusOK {
		var e naverError
		_ = json.Unmarshal(body, &e)
		return nil, naverSearchError(resp.StatusCode, e)
	}
	var r naverSearchResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fail(err, "NAVER search answered with something other than the expected JSON")
	}
	out := &SearchOutput{Query: q.Query, Kind: q.Kind, Provider: "naver", TotalResults: r.Total, Results: make([]SearchItem, 0, len(r.Items))}
	for i, it := range r.Items {
		if i == q.Display {
			break // more than asked for: NAVER's own cap is display
		}
		link := it.Link
		if it.OriginalLink != "" {
			link = it.OriginalLink
		}
		out.Results = append(out.Results, SearchItem{
			Rank:      q.Start + i,
			Title:     plainText(it.Title),
			URL:       link,
			Snippet:   plainText(it.Description),
			Domain:    domainOf(link),
			Timestamp: naverTimestamp(it.PubDate, it.PostDate),
		})
	}
	return out, nil
}

func naverTimestamp(pubDate, postDate string) string {
	if t, err := time.Parse(time.RFC1123Z, pubDate); err == nil {
		return t.Format(time.RFC3339)
	}
	if t, err := time.Parse("20060102", postDate); err == nil {
		return t.Format(time.DateOnly)
	}
	return ""
}

// naverSearchError explains a NAVER search failure (WIRE.md error codes).
func naverSearchError(status int, e naverError) error {
	cause := fmt.Errorf("naver search: HTTP %d %s %s", status, e.ErrorCode, e.ErrorMessage)
	switch {
	case status == http.StatusTooManyRequests:
		return fail(cause, "NAVER search quota exceeded (the application's daily limit, 25,000 calls, is used up); try again tomorrow, or ask the administrator to configure another provider (네이버 검색 API 일일 호출 한도 초과)")
	case status == http.StatusUnauthorized || e.ErrorCode == "024":
		return fail(cause, "NAVER rejected the search credentials: the administrator must check tools.webSearch.naver clientId/clientSecret (네이버 검색 API 인증 실패)")
	case status == http.StatusForbidden:
		return fail(cause, "the NAVER application is not allowed to use the Search API: the administrator must add 검색 to the application's APIs at developers.naver.com")
	}
	switch e.ErrorCode {
	case "SE01":
		return fail(cause, "NAVER refused the query as malformed; rephrase it (잘못된 쿼리 요청)")
	case "SE02":
		return fail(cause, "display must be between 1 and 100")
	case "SE03":
		return fail(cause, "start must be between 1 and 1000")
	case "SE04":
		return fail(cause, "sort must be sim or date")
	case "SE05":
		return fail(cause, "NAVER does not know this search type")
	case "SE06":
		return fail(cause, "the query is not valid UTF-8; rephrase it")
	case "SE99":
		return fail(cause, "NAVER search had an internal error; try again later")
	}
	msg := fmt.Sprintf("NAVER search failed with HTTP %d", status)
	if e.ErrorMessage != "" {
		msg += ": " + excerpt(e.ErrorMessage, 200)
	}
	return fail(cause, "%s", msg)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// excerpt shortens s to at most n bytes at a UTF-8 boundary.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
