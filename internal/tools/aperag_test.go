package tools

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

// fakeApeRAG answers ApeRAG's documented REST API (aperag/api/openapi.yaml)
// for the endpoints its MCP tools use.
type fakeApeRAG struct {
	mu    sync.Mutex // guards calls
	calls []apeCall
}

type apeCall struct {
	Method, Path, Query, Auth string
	Body                      map[string]any
}

func (f *fakeApeRAG) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if data, _ := io.ReadAll(r.Body); len(data) > 0 {
		if err := json.Unmarshal(data, &body); err != nil {
			http.Error(w, `{"code":"400","message":"invalid JSON"}`, http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, apeCall{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
	f.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"code":"401","message":"Unauthorized"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/collections":
		w.Write([]byte(`{"items":[{"id":"col1","title":"Handbook","description":null,"type":"document","status":"ACTIVE","config":{"enable_vector":true}}],"pageResult":{"page_number":1,"page_size":10,"count":1}}`))
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/collections/col1/searches":
		w.Write([]byte(`{"id":"s1","query":"휴가 규정","items":[{"rank":1,"score":0.91,"content":"연차는 15일입니다.","source":"handbook.pdf","recall_type":"vector_search","metadata":{}}],"created":"2026-11-18T06:00:00Z"}`))
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/collections/"):
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"code":"404","message":"Collection not found"}`))
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/web/search":
		w.Write([]byte(`{"query":"ApeRAG","results":[{"rank":1,"title":"ApeRAG","url":"https://github.com/apecloud/ApeRAG","snippet":"RAG platform","domain":"github.com","timestamp":"2025-01-01T00:00:00Z"}],"total_results":1,"search_time":1.2}`))
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/web/read":
		w.Write([]byte(`{"results":[{"url":"https://example.com/article","status":"success","title":"Example","content":"# Example\n\ntext","extracted_at":"2025-01-07T10:00:00Z","word_count":2,"token_count":3}],"total_urls":1,"successful":1,"failed":0,"processing_time":2.5}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"code":"404","message":"Not found"}`))
	}
}

func (f *fakeApeRAG) last() apeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func loadApeRAG(t *testing.T, url string) *Options {
	t.Helper()
	env := map[string]string{"APERAG_URL": url, "APERAG_API_KEY": "env-key"}
	cfg, err := config.Load("../../examples/aperag.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return OptionsFromConfig(cfg)
}

func TestApeRAGExample(t *testing.T) {
	fake := &fakeApeRAG{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	opts := loadApeRAG(t, srv.URL)
	opts.CallerToken = func(ctx context.Context, userID string) (string, error) {
		if userID == "alice" {
			return "alice-token", nil
		}
		return "", ErrNotAuthorized
	}
	c := connect(t, opts)
	if diff := cmp.Diff([]string{"get_current_time", "list_collections", "search_collection", "web_read", "web_search"}, c.names()); diff != "" {
		t.Fatalf("tools (-want +got):\n%s", diff)
	}

	var cols struct {
		Items []struct{ ID, Title string }
	}
	wantOK(t, c.call("alice", "list_collections", map[string]any{"page": 2}, &cols))
	if len(cols.Items) != 1 || cols.Items[0].ID != "col1" {
		t.Errorf("collections = %+v", cols)
	}
	if got := c.call("", "list_collections", nil, nil); got.IsError {
		t.Errorf("list without page: %s", text(got))
	}
	if l := fake.last(); l.Auth != "Bearer env-key" || l.Query != "" {
		t.Errorf("without a caller token: %+v, want the env key and no query", l)
	}

	var found struct {
		Items []struct {
			Content string
			Score   float64
		}
	}
	wantOK(t, c.call("alice", "search_collection", map[string]any{"collection_id": "col1", "query": "휴가 규정"}, &found))
	if len(found.Items) != 1 || found.Items[0].Content != "연차는 15일입니다." {
		t.Errorf("search = %+v", found)
	}
	want := apeCall{Method: "POST", Path: "/api/v1/collections/col1/searches", Auth: "Bearer alice-token", Body: map[string]any{
		"query": "휴가 규정", "vector_search": map[string]any{"topk": 5.0, "similarity": 0.7}, "graph_search": map[string]any{"topk": 5.0},
	}}
	if diff := cmp.Diff(want, fake.last()); diff != "" {
		t.Errorf("search request (-want +got):\n%s", diff)
	}
	wantOK(t, c.call("alice", "search_collection", map[string]any{"collection_id": "col1", "query": "q", "topk": 3, "fulltext_topk": 2}, nil))
	if b := fake.last().Body; !cmp.Equal(b["fulltext_search"], map[string]any{"topk": 2.0}) || !cmp.Equal(b["graph_search"], map[string]any{"topk": 3.0}) {
		t.Errorf("body = %v", b)
	}

	// A path argument holding "/" is refused before anything is sent.
	before := fake.last()
	res := c.call("alice", "search_collection", map[string]any{"collection_id": "nope/../x", "query": "q"}, nil)
	wantError(t, res, "collection_id")
	if diff := cmp.Diff(before, fake.last()); diff != "" {
		t.Errorf("a refused call reached ApeRAG (-before +after):\n%s", diff)
	}
	res = c.call("alice", "search_collection", map[string]any{"collection_id": "nope", "query": "q"}, nil)
	wantError(t, res, "404", "Collection not found")
	wantError(t, c.call("alice", "search_collection", map[string]any{"query": "q"}, nil), "collection_id")

	var ws struct {
		Results []struct{ URL, Domain string }
	}
	wantOK(t, c.call("alice", "web_search", map[string]any{"query": "ApeRAG", "source": "github.com"}, &ws))
	if len(ws.Results) != 1 || ws.Results[0].Domain != "github.com" {
		t.Errorf("web_search = %+v", ws)
	}
	if diff := cmp.Diff(map[string]any{"query": "ApeRAG", "source": "github.com", "max_results": 5.0, "timeout": 30.0, "locale": "en-US"}, fake.last().Body); diff != "" {
		t.Errorf("web_search body (-want +got):\n%s", diff)
	}
	var wr ReadOutput
	wantOK(t, c.call("alice", "web_read", map[string]any{"url_list": []string{"https://example.com/article"}}, &wr))
	if wr.Successful != 1 || wr.Results[0].Content != "# Example\n\ntext" {
		t.Errorf("web_read = %+v", wr)
	}
}

func TestApeRAGOverHTTP(t *testing.T) {
	fake := &fakeApeRAG{}
	api := httptest.NewServer(fake)
	defer api.Close()
	tools := httptest.NewServer(NewHandler(loadApeRAG(t, api.URL)))
	defer tools.Close()

	ctx := context.Background()
	hc := &http.Client{Transport: headerTransport{"Authorization": "Bearer caller-token"}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tools.URL, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_collections"})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %v", err, res)
	}
	if got := fake.last().Auth; got != "Bearer caller-token" {
		t.Errorf("forwarded %q, want the caller's own token", got)
	}
}

type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}
