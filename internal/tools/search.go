package tools

import (
	"context"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// WebSearchOptions configure web_search.
type WebSearchOptions struct {
	// Provider is "naver" or "searxng". Empty: web_search is not listed.
	Provider string
	// NaverClientID and NaverClientSecret are the NAVER application's
	// credentials (X-Naver-Client-Id / -Secret), needed for "naver".
	NaverClientID, NaverClientSecret string
	// NaverBaseURL is NAVER's Open API root. Empty: https://openapi.naver.com.
	NaverBaseURL string
	// SearXNGURL is a SearXNG instance with the JSON format enabled
	// (search.formats: [html, json] in its settings.yml), needed for "searxng".
	SearXNGURL string
}

// SearchProvider runs web searches for web_search.
type SearchProvider interface {
	Search(ctx context.Context, q SearchQuery) (*SearchOutput, error)
}

// SearchQuery is one web_search call, limits already checked.
type SearchQuery struct {
	Query   string
	Kind    string // "web", "news" or "blog"
	Sort    string // "sim" or "date"; "" = provider default
	Display int    // 1..100
	Start   int    // 1..1000
}

// Search kinds.
const (
	KindWeb  = "web"
	KindNews = "news"
	KindBlog = "blog"
)

type searchInput struct {
	Query   string `json:"query" jsonschema:"what to search for, in the words a person would type (Korean or English)"`
	Kind    string `json:"kind,omitempty" jsonschema:"web: web pages (default); news: news articles; blog: blog posts"`
	Sort    string `json:"sort,omitempty" jsonschema:"for news and blog: sim orders by relevance (default), date by newest first; ignored for web"`
	Display int    `json:"display,omitempty" jsonschema:"number of results to return, 1 to 100 (default 10)"`
	Start   int    `json:"start,omitempty" jsonschema:"1-based rank of the first result, 1 to 1000 (default 1); use start=display+1 for the next page"`
}

// SearchOutput is web_search's structured result, shaped like ApeRAG's
// webSearchResponse.
type SearchOutput struct {
	Query        string       `json:"query" jsonschema:"the query searched"`
	Kind         string       `json:"kind" jsonschema:"web, news or blog"`
	Provider     string       `json:"provider" jsonschema:"search provider that answered (naver or searxng)"`
	TotalResults int64        `json:"total_results" jsonschema:"number of results the provider reports in total (an estimate)"`
	Results      []SearchItem `json:"results" jsonschema:"results in rank order"`
}

// SearchItem is one web_search result.
type SearchItem struct {
	Rank      int    `json:"rank" jsonschema:"1-based rank across pages"`
	Title     string `json:"title" jsonschema:"page title, plain text"`
	URL       string `json:"url" jsonschema:"page URL"`
	Snippet   string `json:"snippet" jsonschema:"summary or excerpt, plain text"`
	Domain    string `json:"domain" jsonschema:"host name of url"`
	Timestamp string `json:"timestamp,omitempty" jsonschema:"publication time (RFC 3339) or date (YYYY-MM-DD) when known"`
}

func newSearchProvider(o Options) (SearchProvider, string) {
	ws := o.WebSearch
	switch ws.Provider {
	case "":
		return nil, "tools.webSearch is not configured (provider naver or searxng)"
	case "naver":
		if ws.NaverClientID == "" || ws.NaverClientSecret == "" {
			return nil, "tools.webSearch.naver needs clientId and clientSecret (a NAVER Developers application with the Search API)"
		}
		return &NaverSearch{ClientID: ws.NaverClientID, ClientSecret: ws.NaverClientSecret, BaseURL: ws.NaverBaseURL, Client: o.HTTPClient}, ""
	case "searxng":
		if ws.SearXNGURL == "" {
			return nil, "tools.webSearch.searxng.url is not set"
		}
		return &SearXNG{URL: ws.SearXNGURL, Client: o.HTTPClient}, ""
	default:
		return nil, fmt.Sprintf("unknown web search provider %q (want naver or searxng)", ws.Provider)
	}
}

func addSearch(b *builder, o Options) {
	p, reason := newSearchProvider(o)
	if p == nil {
		b.skip(ToolWebSearch, reason)
		return
	}
	b.add = append(b.add, func(s *mcp.Server) {
		addTool(s, o.Logger, &mcp.Tool{
			Name:  ToolWebSearch,
			Title: "Web search",
			Description: "Searches the web (provider: " + o.WebSearch.Provider + ") and returns ranked results with title, URL, snippet and domain. " +
				"Use it for current events, facts you are unsure of, or to find pages to read; then call web_read on the most relevant URLs " +
				"for their full text, since snippets are short. kind=news for news articles, kind=blog for blog posts, sort=date for the newest first. " +
				"웹 검색: 최신 정보나 확인이 필요한 사실을 찾을 때 사용하세요 (뉴스·블로그 검색 가능).",
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)},
		}, func(s *jsonschema.Schema) {
			q := prop(s, "query")
			q.MinLength, q.MaxLength = ptr(1), ptr(400)
			k := prop(s, "kind")
			k.Enum, k.Default = []any{KindWeb, KindNews, KindBlog}, []byte(`"web"`)
			prop(s, "sort").Enum = []any{"sim", "date"}
			d := prop(s, "display")
			d.Minimum, d.Maximum, d.Default = ptr(1.0), ptr(100.0), []byte("10")
			st := prop(s, "start")
			st.Minimum, st.Maximum, st.Default = ptr(1.0), ptr(1000.0), []byte("1")
		}, nil, func(ctx context.Context, req *mcp.CallToolRequest, in searchInput) (*SearchOutput, string, error) {
			q := SearchQuery{Query: strings.TrimSpace(in.Query), Kind: in.Kind, Sort: in.Sort, Display: in.Display, Start: in.Start}
			if q.Kind == "" {
				q.Kind = KindWeb
			}
			if q.Display == 0 {
				q.Display = 10
			}
			if q.Start == 0 {
				q.Start = 1
			}
			if q.Query == "" {
				return nil, "", fail(nil, "query is empty: say what to search for")
			}
			out, err := p.Search(ctx, q)
			if err != nil {
				return nil, "", err
			}
			if out.Results == nil {
				out.Results = []SearchItem{}
			}
			return out, renderSearch(out), nil
		})
	})
}

func renderSearch(out *SearchOutput) string {
	var b strings.Builder
	if len(out.Results) == 0 {
		fmt.Fprintf(&b, "No %s results for %q.", out.Kind, out.Query)
		return b.String()
	}
	fmt.Fprintf(&b, "%s results for %q (%d of about %d):\n", out.Kind, out.Query, len(out.Results), out.TotalResults)
	for _, it := range out.Results {
		fmt.Fprintf(&b, "\n%d. %s\n   %s\n", it.Rank, it.Title, it.URL)
		if it.Timestamp != "" {
			fmt.Fprintf(&b, "   %s\n", it.Timestamp)
		}
		if it.Snippet != "" {
			fmt.Fprintf(&b, "   %s\n", it.Snippet)
		}
	}
	return b.String()
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// plainText strips HTML tags (NAVER marks matches with <b>) and then decodes
// entities, so an escaped "&lt;b&gt;" in the text survives as "<b>".
func plainText(s string) string {
	s = tagRE.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	return strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
}

// domainOf returns the host name of a URL, or "".
func domainOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
