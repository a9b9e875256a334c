package tools

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeNaverSearch is NAVER's search API as WIRE.md describes it: client
// credentials in headers, <b> tags and entities in titles and descriptions,
// and its error codes.
type fakeNaverSearch struct {
	mu       sync.Mutex // guards the fields below
	requests []*http.Request
	status   int    // forced error status; 0 = none
	code     string // forced error code
}

func (f *fakeNaverSearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(r.Context()))
	status, code := f.status, f.code
	f.mu.Unlock()
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"errorMessage": msg, "errorCode": code})
	}
	if r.Header.Get("X-Naver-Client-Id") != "cid" || r.Header.Get("X-Naver-Client-Secret") != "csecret" {
		fail(http.StatusUnauthorized, "024", "NID AUTH Result Invalid (28) : Authentication failed. (인증에 실패했습니다.)")
		return
	}
	if status != 0 {
		fail(status, code, "forced error")
		return
	}
	kind, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/search/"), ".json")
	if !ok || (kind != "webkr" && kind != "news" && kind != "blog") {
		fail(http.StatusNotFound, "SE05", "Invalid search api (존재하지 않는 검색 api 입니다.)")
		return
	}
	q := r.URL.Query()
	display, err := strconv.Atoi(q.Get("display"))
	if err != nil || display < 1 || display > 100 {
		fail(http.StatusBadRequest, "SE02", "Invalid display value (부적절한 display 값입니다.)")
		return
	}
	start, err := strconv.Atoi(q.Get("start"))
	if err != nil || start < 1 || start > 1000 {
		fail(http.StatusBadRequest, "SE03", "Invalid start value (부적절한 start 값입니다.)")
		return
	}
	if s := q.Get("sort"); s != "" && (kind == "webkr" || (s != "sim" && s != "date")) {
		fail(http.StatusBadRequest, "SE04", "Invalid sort value (부적절한 sort 값입니다.)")
		return
	}
	item := map[string]string{
		"title":       "<b>주식</b> 시장 &amp; 투자 &quot;가이드&quot;",
		"link":        "https://www.example.co.kr/stocks?a=1&b=2",
		"description": "오늘의 <b>주식</b> 시장 &lt;b&gt;요약&lt;/b&gt; &#39;뉴스&#39;",
	}
	if kind == "news" {
		item["originallink"] = "https://news.example.com/article/1"
		item["link"] = "https://n.news.naver.com/article/1"
		item["pubDate"] = "Wed, 18 Nov 2026 14:00:00 +0900"
	}
	if kind == "blog" {
		item["bloggername"] = "블로거"
		item["postdate"] = "20261117"
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"lastBuildDate": "Wed, 18 Nov 2026 15:00:00 +0900", "total": 81296956, "start": start, "display": 1,
		"items": []any{item},
	})
}

func (f *fakeNaverSearch) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func naverSearchOptions(url string) *Options {
	return &Options{WebSearch: WebSearchOptions{Provider: "naver", NaverClientID: "cid", NaverClientSecret: "csecret", NaverBaseURL: url}}
}

func TestWebSearchNaver(t *testing.T) {
	fake := &fakeNaverSearch{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := connect(t, naverSearchOptions(srv.URL))

	tests := []struct {
		name      string
		args      map[string]any
		wantPath  string
		wantQuery string
		want      SearchOutput
	}{
		{
			name:      "web",
			args:      map[string]any{"query": "주식"},
			wantPath:  "/v1/search/webkr.json",
			wantQuery: "display=10&query=%EC%A3%BC%EC%8B%9D&start=1",
			want: SearchOutput{Query: "주식", Kind: "web", Provider: "naver", TotalResults: 81296956, Results: []SearchItem{{
				Rank: 1, Title: `주식 시장 & 투자 "가이드"`, URL: "https://www.example.co.kr/stocks?a=1&b=2",
				Snippet: "오늘의 주식 시장 <b>요약</b> '뉴스'", Domain: "www.example.co.kr",
			}}},
		},
		{
			name:      "web ignores sort",
			args:      map[string]any{"query": "주식", "sort": "date", "display": 5, "start": 11},
			wantPath:  "/v1/search/webkr.json",
			wantQuery: "display=5&query=%EC%A3%BC%EC%8B%9D&start=11",
			want: SearchOutput{Query: "주식", Kind: "web", Provider: "naver", TotalResults: 81296956, Results: []SearchItem{{
				Rank: 11, Title: `주식 시장 & 투자 "가이드"`, URL: "https://www.example.co.kr/stocks?a=1&b=2",
				Snippet: "오늘의 주식 시장 <b>요약</b> '뉴스'", Domain: "www.example.co.kr",
			}}},
		},
		{
			name:      "news by date",
			args:      map[string]any{"query": "주식", "kind": "news", "sort": "date", "display": 100, "start": 1000},
			wantPath:  "/v1/search/news.json",
			wantQuery: "display=100&query=%EC%A3%BC%EC%8B%9D&sort=date&start=1000",
			want: SearchOutput{Query: "주식", Kind: "news", Provider: "naver", TotalResults: 81296956, Results: []SearchItem{{
				Rank: 1000, Title: `주식 시장 & 투자 "가이드"`, URL: "https://news.example.com/article/1",
				Snippet: "오늘의 주식 시장 <b>요약</b> '뉴스'", Domain: "news.example.com", Timestamp: "2026-11-18T14:00:00+09:00",
			}}},
		},
		{
			name:      "blog",
			args:      map[string]any{"query": "주식", "kind": "blog", "sort": "sim"},
			wantPath:  "/v1/search/blog.json",
			wantQuery: "display=10&query=%EC%A3%BC%EC%8B%9D&sort=sim&start=1",
			want: SearchOutput{Query: "주식", Kind: "blog", Provider: "naver", TotalResults: 81296956, Results: []SearchItem{{
				Rank: 1, Title: `주식 시장 & 투자 "가이드"`, URL: "https://www.example.co.kr/stocks?a=1&b=2",
				Snippet: "오늘의 주식 시장 <b>요약</b> '뉴스'", Domain: "www.example.co.kr", Timestamp: "2026-11-17",
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SearchOutput
			res := c.call("", ToolWebSearch, tt.args, &got)
			wantOK(t, res)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			r := fake.last()
			if r.URL.Path != tt.wantPath || r.URL.RawQuery != tt.wantQuery {
				t.Errorf("request %s?%s, want %s?%s", r.URL.Path, r.URL.RawQuery, tt.wantPath, tt.wantQuery)
			}
			if !strings.Contains(text(res), `주식 시장 & 투자 "가이드"`) {
				t.Errorf("text rendering lacks the title:\n%s", text(res))
			}
		})
	}
}

func TestWebSearchLimits(t *testing.T) {
	fake := &fakeNaverSearch{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := connect(t, naverSearchOptions(srv.URL))
	for _, args := range []map[string]any{
		{"query": "x", "display": 0},
		{"query": "x", "display": 101},
		{"query": "x", "start": 0},
		{"query": "x", "start": 1001},
		{"query": "x", "kind": "images"},
		{"query": "x", "sort": "popular"},
		{"query": ""},
		{},
	} {
		res := c.call("", ToolWebSearch, args, nil)
		if !res.IsError {
			t.Errorf("%v: want isError, got %s", args, text(res))
		}
	}
	if n := len(fake.requests); n != 0 {
		t.Errorf("%d requests reached NAVER, want none", n)
	}
}

func TestWebSearchNaverErrors(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   []string
	}{
		{http.StatusTooManyRequests, "012", []string{"quota", "25,000"}},
		{http.StatusForbidden, "010", []string{"Search API", "developers.naver.com"}},
		{http.StatusUnauthorized, "024", []string{"credentials", "clientId"}},
		{http.StatusBadRequest, "SE01", []string{"malformed"}},
		{http.StatusBadRequest, "SE06", []string{"UTF-8"}},
		{http.StatusInternalServerError, "SE99", []string{"internal error", "try again"}},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			srv := httptest.NewServer(&fakeNaverSearch{status: tt.status, code: tt.code})
			defer srv.Close()
			c := connect(t, naverSearchOptions(srv.URL))
			wantError(t, c.call("", ToolWebSearch, map[string]any{"query": "주식"}, nil), tt.want...)
		})
	}
	t.Run("wrong credentials", func(t *testing.T) {
		srv := httptest.NewServer(&fakeNaverSearch{})
		defer srv.Close()
		o := naverSearchOptions(srv.URL)
		o.WebSearch.NaverClientSecret = "wrong"
		c := connect(t, o)
		res := c.call("", ToolWebSearch, map[string]any{"query": "주식"}, nil)
		wantError(t, res, "credentials")
		if strings.Contains(text(res), "wrong") {
			t.Errorf("error shows the secret: %s", text(res))
		}
	})
}

func TestWebSearchSearXNG(t *testing.T) {
	var pages []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/search" || q.Get("format") != "json" {
			http.Error(w, "Forbidden", http.StatusForbidden)
			return
		}
		mu.Lock()
		pages = append(pages, q.Get("pageno")+"/"+q.Get("categories"))
		mu.Unlock()
		page, _ := strconv.Atoi(q.Get("pageno"))
		var results []any
		if page <= 3 {
			for i := range 10 {
				n := (page-1)*10 + i + 1
				results = append(results, map[string]any{
					"url": "https://site" + strconv.Itoa(n) + ".example.org/p", "title": "Result &amp; " + strconv.Itoa(n),
					"content": "<span>snippet</span> " + strconv.Itoa(n), "engine": "duckduckgo",
				})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"query": q.Get("q"), "number_of_results": 30, "results": results})
	}))
	defer srv.Close()
	c := connect(t, &Options{WebSearch: WebSearchOptions{Provider: "searxng", SearXNGURL: srv.URL}})
	var got SearchOutput
	wantOK(t, c.call("", ToolWebSearch, map[string]any{"query": "go", "kind": "news", "display": 12, "start": 5}, &got))
	if len(got.Results) != 12 || got.Results[0].Rank != 5 || got.Results[0].Title != "Result & 5" || got.Results[11].URL != "https://site16.example.org/p" {
		t.Errorf("results = %+v", got.Results)
	}
	if got.Results[0].Snippet != "snippet 5" || got.Results[0].Domain != "site5.example.org" || got.Provider != "searxng" {
		t.Errorf("first = %+v", got.Results[0])
	}
	if diff := cmp.Diff([]string{"1/news", "2/news"}, pages); diff != "" {
		t.Errorf("pages fetched (-want +got):\n%s", diff)
	}
}
