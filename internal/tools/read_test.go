package tools

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const articlePage = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rust vs Go | Example Blog</title></head>
<body>
<header class="site-header"><div class="logo">Example Blog</div>
  <nav class="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li></ul></nav>
</header>
<div class="sidebar"><h3>Trending</h3><ul><li><a href="/t1">Celebrity gossip roundup</a></li></ul></div>
<main><article>
  <h1>Rust vs Go</h1>
  <p>Go was designed at Google to make building reliable, efficient software simple. Its concurrency model, built around goroutines and channels, is easy to reason about and scales well across many cores in production services.</p>
  <p>Rust focuses on memory safety without garbage collection. Its ownership system catches whole classes of bugs at compile time, which makes it attractive for systems programming where predictable performance matters.</p>
  <h2>Which to choose</h2>
  <p>Choose Go for network services and tooling where fast compilation and a simple language help teams move quickly. Choose Rust when you need fine control over memory layout and zero-cost abstractions, for example in <a href="/embedded">embedded systems</a>.</p>
  <ul><li>Go: simplicity, fast builds</li><li>Rust: safety, control</li></ul>
</article></main>
<footer class="site-footer"><p>Copyright 2026 Example Blog. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>`

func TestWebReadMainContent(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/article", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(articlePage))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/article", http.StatusFound)
	})
	mux.HandleFunc("/notes.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("plain notes, three words"))
	})
	mux.HandleFunc("/image.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG\r\n\x1a\n"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body><p>" + strings.Repeat("a", 5000) + "</p></body></html>"))
	})
	mux.HandleFunc("/gone", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := connect(t, &Options{
		AllowedAddresses: []string{"127.0.0.1/32"},
		WebRead:          WebReadOptions{MaxBytes: 4096, MaxURLs: 6},
	})
	var got ReadOutput
	res := c.call("", ToolWebRead, map[string]any{"url_list": []string{
		srv.URL + "/article", srv.URL + "/moved", srv.URL + "/notes.txt", srv.URL + "/image.png", srv.URL + "/big", srv.URL + "/gone",
	}}, &got)
	wantOK(t, res)
	if got.TotalURLs != 6 || got.Successful != 3 || got.Failed != 3 {
		t.Fatalf("totals = %d/%d/%d, want 6/3/3: %+v", got.TotalURLs, got.Successful, got.Failed, got.Results)
	}
	art := got.Results[0]
	if art.Status != "success" || art.Title != "Rust vs Go | Example Blog" && art.Title != "Rust vs Go" {
		t.Errorf("article = %+v", art)
	}
	for _, want := range []string{"# Rust vs Go", "goroutines and channels", "## Which to choose", "- Go: simplicity, fast builds", "(" + srv.URL + "/embedded)"} {
		if !strings.Contains(art.Content, want) {
			t.Errorf("content lacks %q:\n%s", want, art.Content)
		}
	}
	for _, boilerplate := range []string{"About us", "Contact", "Celebrity gossip", "Copyright", "Privacy policy"} {
		if strings.Contains(art.Content, boilerplate) {
			t.Errorf("content has boilerplate %q:\n%s", boilerplate, art.Content)
		}
	}
	if art.WordCount < 80 || art.TokenCount == 0 || art.ExtractedAt != "2026-11-18T06:00:00Z" {
		t.Errorf("counts/time = %d words, %d tokens, %q", art.WordCount, art.TokenCount, art.ExtractedAt)
	}
	if moved := got.Results[1]; moved.Status != "success" || moved.FinalURL != srv.URL+"/article" {
		t.Errorf("redirected = %+v", moved)
	}
	if txt := got.Results[2]; txt.Content != "plain notes, three words" || txt.WordCount != 4 {
		t.Errorf("text = %+v", txt)
	}
	for i, code := range map[int]string{3: codeUnsupported, 4: codeTooLarge, 5: codeHTTP} {
		if r := got.Results[i]; r.Status != "error" || r.ErrorCode != code || r.Error == "" {
			t.Errorf("result %d = %+v, want error %s", i, r, code)
		}
	}
	if !strings.Contains(text(res), "goroutines and channels") || !strings.Contains(text(res), "image/png") {
		t.Errorf("text rendering:\n%s", text(res))
	}
}

func TestWebReadRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("secret internal page"))
	}))
	defer srv.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	localhostURL := "http://localhost:" + port + "/"

	tests := []struct {
		name    string
		opts    *Options
		url     string
		wantErr bool
	}{
		{"loopback", &Options{}, srv.URL, true},
		{"localhost name", &Options{}, localhostURL, true},
		{"cloud metadata", &Options{}, "http://169.254.169.254/latest/meta-data/", true},
		{"loopback allowed by address", &Options{AllowedAddresses: []string{"127.0.0.1"}}, srv.URL, false},
		{"localhost allowed by domain", &Options{AllowedDomains: []string{"localhost"}}, localhostURL, false},
		{"other domain allowed", &Options{AllowedDomains: []string{"example.com"}}, localhostURL, true},
		{"metadata stays refused", &Options{AllowedAddresses: []string{"127.0.0.1"}}, "http://169.254.169.254/latest/meta-data/", true},
		{"not http", &Options{}, "file:///etc/passwd", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, tt.opts)
			var got ReadOutput
			res := c.call("", ToolWebRead, map[string]any{"url_list": []string{tt.url}, "timeout": 2}, &got)
			if !tt.wantErr {
				wantOK(t, res)
				if got.Results[0].Content != "secret internal page" {
					t.Errorf("content = %q", got.Results[0].Content)
				}
				return
			}
			if !res.IsError || got.Failed != 1 {
				t.Fatalf("want refusal, got %s", text(res))
			}
			if strings.Contains(text(res), "secret internal page") {
				t.Errorf("refused page leaked: %s", text(res))
			}
			if r := got.Results[0]; tt.url != "file:///etc/passwd" && (r.ErrorCode != codeBlocked || !strings.Contains(r.Error, "allowedAddresses")) {
				t.Errorf("result = %+v, want BLOCKED naming mcpSettings", r)
			}
		})
	}
}

func TestWebReadLimits(t *testing.T) {
	c := connect(t, &Options{WebRead: WebReadOptions{MaxURLs: 2}})
	for _, args := range []map[string]any{
		{"url_list": []string{}},
		{"url_list": []string{"https://a.example/", "https://b.example/", "https://c.example/"}},
		{},
	} {
		if res := c.call("", ToolWebRead, args, nil); !res.IsError {
			t.Errorf("%v: want isError", args)
		}
	}
	if c := connect(t, &Options{WebRead: WebReadOptions{Disabled: true}}); c.tools[ToolWebRead] != nil {
		t.Error("disabled web_read is listed")
	}
}

func TestMatchDomains(t *testing.T) {
	domains := []string{"intranet.corp", "*.svc.local", "https://wiki.example:8443/path", "api.example:443"}
	for host, want := range map[string]bool{
		"intranet.corp": true, "INTRANET.corp.": true, "a.svc.local": true, "svc.local": false,
		"wiki.example": true, "api.example": true, "evil.example": false,
	} {
		if got := matchDomains(host, domains) != nil; got != want {
			t.Errorf("matchDomains(%q) = %v, want %v", host, got, want)
		}
	}
}
