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

// SearXNG is a SearXNG instance's JSON API (GET /search?format=json), a
// self-hosted metasearch engine that needs no paid key.
type SearXNG struct {
	// URL is the instance root, e.g. http://127.0.0.1:8888.
	URL string
	// Client sends the requests. Nil: http.DefaultClient.
	Client *http.Client
}

var _ SearchProvider = (*SearXNG)(nil)

// searxngPageSize is how many results SearXNG returns per page by default.
const searxngPageSize = 10

type searxngResponse struct {
	NumberOfResults float64 `json:"number_of_results"`
	Results         []struct {
		URL           string `json:"url"`
		Title         string `json:"title"`
		Content       string `json:"content"`
		PublishedDate string `json:"publishedDate"`
	} `json:"results"`
}

// Search implements SearchProvider. SearXNG pages are fixed-size, so start
// and display are mapped onto pages; it cannot sort by date.
func (x *SearXNG) Search(ctx context.Context, q SearchQuery) (*SearchOutput, error) {
	category := "general"
	if q.Kind == KindNews {
		category = "news"
	}
	out := &SearchOutput{Query: q.Query, Kind: q.Kind, Provider: "searxng", Results: []SearchItem{}}
	page := (q.Start-1)/searxngPageSize + 1
	skip := (q.Start - 1) % searxngPageSize
	seen := map[string]bool{}
	// A bounded number of pages: display is at most 100.
pages:
	for range 12 {
		r, err := x.page(ctx, q.Query, category, page)
		if err != nil {
			return nil, err
		}
		if int64(r.NumberOfResults) > out.TotalResults {
			out.TotalResults = int64(r.NumberOfResults)
		}
		if len(r.Results) == 0 {
			break
		}
		for i, it := range r.Results {
			if i < skip || seen[it.URL] {
				continue
			}
			seen[it.URL] = true
			item := SearchItem{
				Rank:    q.Start + len(out.Results),
				Title:   plainText(it.Title),
				URL:     it.URL,
				Snippet: plainText(it.Content),
				Domain:  domainOf(it.URL),
			}
			if t, err := time.Parse(time.RFC3339, it.PublishedDate); err == nil {
				item.Timestamp = t.Format(time.RFC3339)
			} else if t, err := time.Parse("2006-01-02T15:04:05", it.PublishedDate); err == nil {
				item.Timestamp = t.Format("2006-01-02T15:04:05Z")
			}
			out.Results = append(out.Results, item)
			if len(out.Results) == q.Display {
				break pages
			}
		}
		skip = 0
		page++
	}
	// Never fewer than returned (also when number_of_results is missing).
	if out.TotalResults < int64(len(out.Results)) {
		out.TotalResults = int64(len(out.Results))
	}
	return out, nil
}

func (x *SearXNG) page(ctx context.Context, query, category string, page int) (*searxngResponse, error) {
	v := url.Values{}
	v.Set("q", query)
	v.Set("format", "json")
	v.Set("categories", category)
	v.Set("pageno", strconv.Itoa(page))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(x.URL, "/")+"/search?"+v.Encode(), nil)
	if err != nil {
		return nil, fail(err, "web_search is misconfigured: bad SearXNG URL")
	}
	req.Header.Set("Accept", "application/json")
	client := x.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fail(err, "the SearXNG search service could not be reached; try again later")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fail(err, "the SearXNG answer could not be read; try again")
	}
	cause := fmt.Errorf("searxng: HTTP %d: %s", resp.StatusCode, excerpt(string(body), 200))
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return nil, fail(cause, "SearXNG refused the JSON format: the administrator must enable it (search.formats: [html, json] in settings.yml)")
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, fail(cause, "SearXNG is rate limiting requests; try again in a minute")
	case resp.StatusCode != http.StatusOK:
		return nil, fail(cause, "SearXNG search failed with HTTP %d", resp.StatusCode)
	}
	var r searxngResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fail(err, "SearXNG answered with something other than the expected JSON")
	}
	return &r, nil
}
