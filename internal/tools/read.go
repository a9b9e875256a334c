package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	htmltomarkdown "github.com/JohannesKaufmann/html-to-markdown/v2"
	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	readability "github.com/go-shiori/go-readability"
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"

	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// WebReadOptions configure web_read. The zero value enables it with the
// defaults below.
type WebReadOptions struct {
	// Disabled leaves web_read out. False: listed.
	Disabled bool
	// MaxBytes bounds each response body; larger pages are refused. Zero: 2 MiB.
	MaxBytes int64
	// Timeout bounds each URL's fetch, redirects included. Zero: 15s.
	Timeout time.Duration
	// MaxURLs bounds the URLs of one call. Zero: 5.
	MaxURLs int
	// MaxConcurrent bounds the URLs fetched at once. Zero: 3.
	MaxConcurrent int
	// MaxRedirects bounds the redirects followed per URL. Zero: 5.
	MaxRedirects int
	// MaxChars bounds the Markdown returned per page; longer pages are cut
	// and marked truncated. Zero: 50,000 characters.
	MaxChars int
	// UserAgent is sent with every request. Empty: "Switchboard-web_read/1.0".
	UserAgent string
}

func (w WebReadOptions) withDefaults() WebReadOptions {
	if w.MaxBytes == 0 {
		w.MaxBytes = 2 << 20
	}
	if w.Timeout == 0 {
		w.Timeout = 15 * time.Second
	}
	if w.MaxURLs == 0 {
		w.MaxURLs = 5
	}
	if w.MaxConcurrent == 0 {
		w.MaxConcurrent = 3
	}
	if w.MaxRedirects == 0 {
		w.MaxRedirects = 5
	}
	if w.MaxChars == 0 {
		w.MaxChars = 50000
	}
	if w.UserAgent == "" {
		w.UserAgent = "Switchboard-web_read/1.0"
	}
	return w
}

type readInput struct {
	URLList []string `json:"url_list" jsonschema:"absolute http or https URLs of the pages to read; one URL is a list of one"`
	Timeout int      `json:"timeout,omitempty" jsonschema:"seconds to wait for each page (default and maximum: the server's limit)"`
}

// ReadOutput is web_read's structured result, shaped like ApeRAG's
// webReadResponse.
type ReadOutput struct {
	Results        []ReadResult `json:"results" jsonschema:"one result per requested URL, in request order"`
	TotalURLs      int          `json:"total_urls" jsonschema:"number of URLs processed"`
	Successful     int          `json:"successful" jsonschema:"number of URLs read"`
	Failed         int          `json:"failed" jsonschema:"number of URLs that failed"`
	ProcessingTime float64      `json:"processing_time" jsonschema:"seconds spent"`
}

// ReadResult is one URL of web_read, shaped like ApeRAG's webReadResultItem.
type ReadResult struct {
	URL         string `json:"url" jsonschema:"the URL requested"`
	Status      string `json:"status" jsonschema:"success or error"`
	Title       string `json:"title,omitempty" jsonschema:"page title"`
	Content     string `json:"content,omitempty" jsonschema:"main content of the page as Markdown, without navigation, headers and footers"`
	ExtractedAt string `json:"extracted_at,omitempty" jsonschema:"when the page was read (RFC 3339)"`
	WordCount   int    `json:"word_count,omitempty" jsonschema:"words in content"`
	TokenCount  int    `json:"token_count,omitempty" jsonschema:"estimated LLM tokens in content"`
	Truncated   bool   `json:"truncated,omitempty" jsonschema:"true when content was cut at the server's size limit"`
	FinalURL    string `json:"final_url,omitempty" jsonschema:"URL after redirects, when different"`
	ContentType string `json:"content_type,omitempty" jsonschema:"media type of the response"`
	Error       string `json:"error,omitempty" jsonschema:"why the page could not be read"`
	ErrorCode   string `json:"error_code,omitempty" jsonschema:"INVALID_URL, BLOCKED, TIMEOUT, TOO_LARGE, UNSUPPORTED_CONTENT_TYPE, HTTP_ERROR, FETCH_FAILED or EXTRACTION_FAILED"`
}

// web_read error codes.
const (
	codeInvalidURL  = "INVALID_URL"
	codeBlocked     = "BLOCKED"
	codeTimeout     = "TIMEOUT"
	codeTooLarge    = "TOO_LARGE"
	codeUnsupported = "UNSUPPORTED_CONTENT_TYPE"
	codeHTTP        = "HTTP_ERROR"
	codeFetch       = "FETCH_FAILED"
	codeExtraction  = "EXTRACTION_FAILED"
)

// readError is a failed URL of web_read.
type readError struct {
	code, msg string
}

func (e *readError) Error() string { return e.code + ": " + e.msg }

func addRead(b *builder, o Options) {
	w := o.WebRead
	if w.Disabled {
		b.skip(ToolWebRead, "disabled in config (tools.webRead.enabled: false)")
		return
	}
	r := &reader{o: w, allowedDomains: o.AllowedDomains, allowedAddresses: o.AllowedAddresses, now: o.Now}
	maxTimeout := max(1, int(w.Timeout/time.Second))
	b.add = append(b.add, func(s *mcp.Server) {
		addTool(s, o.Logger, &mcp.Tool{
			Name:  ToolWebRead,
			Title: "Read web pages",
			Description: fmt.Sprintf("Fetches 1 to %d web pages (http/https) at once and returns each page's main content as Markdown "+
				"(navigation, headers, footers and ads removed), with its title, word count and a per-URL status. "+
				"Use it after web_search, or when the user gives a link, to read what a page actually says. "+
				"Pages larger than %d KiB, binary files (images, PDFs, archives) and private network addresses are refused with a reason. "+
				"웹 페이지 본문을 마크다운으로 읽어 옵니다.", w.MaxURLs, w.MaxBytes>>10),
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(true)},
		}, func(s *jsonschema.Schema) {
			l := prop(s, "url_list")
			l.MinItems, l.MaxItems = ptr(1), ptr(w.MaxURLs)
			l.Items.Format, l.Items.MinLength, l.Items.MaxLength = "uri", ptr(1), ptr(2048)
			t := prop(s, "timeout")
			t.Minimum, t.Maximum = ptr(1.0), ptr(float64(maxTimeout))
		}, func(s *jsonschema.Schema) {
			prop(prop(s, "results").Items, "status").Enum = []any{"success", "error"}
		}, func(ctx context.Context, req *mcp.CallToolRequest, in readInput) (*ReadOutput, string, error) {
			timeout := w.Timeout
			if in.Timeout > 0 && time.Duration(in.Timeout)*time.Second < timeout {
				timeout = time.Duration(in.Timeout) * time.Second
			}
			out := r.readAll(ctx, in.URLList, timeout)
			text := renderRead(out)
			if out.Successful == 0 {
				return out, text, fail(nil, "no page could be read: %s", out.Results[0].Error)
			}
			return out, text, nil
		})
	})
}

// reader fetches pages for web_read.
type reader struct {
	o                                WebReadOptions
	allowedDomains, allowedAddresses []string
	now                              func() time.Time
}

func (r *reader) readAll(ctx context.Context, urls []string, timeout time.Duration) *ReadOutput {
	start := time.Now()
	out := &ReadOutput{Results: make([]ReadResult, len(urls)), TotalURLs: len(urls)}
	sem := make(chan struct{}, r.o.MaxConcurrent)
	var wg sync.WaitGroup
	for i, raw := range urls {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				out.Results[i] = ReadResult{URL: raw, Status: "error", ErrorCode: codeTimeout, Error: "the call was cancelled"}
				return
			}
			out.Results[i] = r.read(ctx, raw, timeout)
		})
	}
	wg.Wait()
	for _, res := range out.Results {
		if res.Status == "success" {
			out.Successful++
		} else {
			out.Failed++
		}
	}
	out.ProcessingTime = time.Since(start).Round(time.Millisecond).Seconds()
	return out
}

func (r *reader) read(ctx context.Context, raw string, timeout time.Duration) ReadResult {
	res := ReadResult{URL: raw}
	page, err := r.fetch(ctx, raw, timeout)
	if err != nil {
		res.Status = "error"
		var re *readError
		if !errors.As(err, &re) {
			re = &readError{code: codeFetch, msg: err.Error()}
		}
		res.ErrorCode, res.Error = re.code, re.msg
		return res
	}
	res.Status = "success"
	res.Title = page.title
	res.ContentType = page.contentType
	if page.finalURL != raw {
		res.FinalURL = page.finalURL
	}
	content := page.markdown
	if utf8.RuneCountInString(content) > r.o.MaxChars {
		content = truncateRunes(content, r.o.MaxChars) + "\n\n[… truncated]"
		res.Truncated = true
	}
	res.Content = content
	res.WordCount = len(strings.Fields(content))
	res.TokenCount = estimateTokens(content)
	res.ExtractedAt = r.now().UTC().Format(time.RFC3339)
	return res
}

type page struct {
	title, markdown, finalURL, contentType string
}

func (r *reader) fetch(ctx context.Context, raw string, timeout time.Duration) (*page, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, &readError{codeInvalidURL, "not an absolute http or https URL"}
	}
	if u.User != nil {
		return nil, &readError{codeInvalidURL, "URLs with user:password@ are not read"}
	}
	client := ssrf.NewClient(&ssrf.Policy{
		AllowedHosts:     matchDomains(u.Hostname(), r.allowedDomains),
		AllowedAddresses: r.allowedAddresses,
		Timeout:          timeout,
		MaxBytes:         r.o.MaxBytes,
		MaxRedirects:     r.o.MaxRedirects,
	})
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &readError{codeInvalidURL, err.Error()}
	}
	req.Header.Set("User-Agent", r.o.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1")
	req.Header.Set("Accept-Language", "ko,en;q=0.8")
	resp, err := client.Do(req)
	if err != nil {
		return nil, classifyFetchError(err, r.o.MaxBytes, timeout)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &readError{codeHTTP, fmt.Sprintf("the server answered HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	final := resp.Request.URL
	ct := resp.Header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ct)
	if mediaType != "" {
		if kind := textKind(mediaType); kind == "" {
			return nil, &readError{codeUnsupported, fmt.Sprintf("%s is binary or not a web page, which web_read does not read", mediaType)}
		}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, classifyFetchError(err, r.o.MaxBytes, timeout)
	}
	if mediaType == "" {
		ct = http.DetectContentType(body)
		mediaType, _, _ = mime.ParseMediaType(ct)
		if textKind(mediaType) == "" {
			return nil, &readError{codeUnsupported, fmt.Sprintf("the content looks like %s, which web_read does not read", mediaType)}
		}
	}
	// Korean sites still serve EUC-KR; convert to UTF-8 from the header,
	// a <meta charset> or the content itself.
	utf8Body, err := charset.NewReader(bytes.NewReader(body), ct)
	if err == nil {
		if b, err := io.ReadAll(utf8Body); err == nil {
			body = b
		}
	}
	p := &page{finalURL: final.String(), contentType: mediaType}
	switch textKind(mediaType) {
	case "html":
		p.title, p.markdown, err = htmlToMarkdown(body, final)
		if err != nil {
			return nil, &readError{codeExtraction, err.Error()}
		}
	default:
		p.markdown = strings.TrimSpace(string(body))
		if mediaType != "text/plain" && mediaType != "text/markdown" && mediaType != "text/x-markdown" {
			p.markdown = "```\n" + p.markdown + "\n```"
		}
	}
	if p.title == "" {
		p.title = final.Host + final.EscapedPath()
	}
	if strings.TrimSpace(p.markdown) == "" {
		return nil, &readError{codeExtraction, "the page has no readable text (it may need JavaScript)"}
	}
	return p, nil
}

// textKind says how web_read handles a media type: "html", "text", or ""
// for content it refuses.
func textKind(mediaType string) string {
	switch {
	case mediaType == "text/html", mediaType == "application/xhtml+xml":
		return "html"
	case strings.HasPrefix(mediaType, "text/"),
		mediaType == "application/json", strings.HasSuffix(mediaType, "+json"),
		mediaType == "application/xml", strings.HasSuffix(mediaType, "+xml"):
		return "text"
	}
	return ""
}

func classifyFetchError(err error, maxBytes int64, timeout time.Duration) error {
	var refused *ssrf.RefusedError
	var netErr net.Error
	switch {
	case errors.As(err, &refused):
		return &readError{codeBlocked, fmt.Sprintf("refused to connect to %s (%s): private, loopback and link-local addresses are not read unless an administrator allows them in mcpSettings.allowedDomains or mcpSettings.allowedAddresses", refused.Addr, refused.Rule)}
	case errors.Is(err, ssrf.ErrTooLarge):
		return &readError{codeTooLarge, fmt.Sprintf("the page is larger than the %d KiB limit", maxBytes>>10)}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &readError{codeTimeout, fmt.Sprintf("the page did not load within %s", timeout)}
	case errors.Is(err, context.Canceled):
		return &readError{codeTimeout, "the call was cancelled"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error repeats the method and URL, which the result has.
		return &readError{codeFetch, ue.Err.Error()}
	}
	return &readError{codeFetch, err.Error()}
}

// matchDomains returns [host] when mcpSettings.allowedDomains lists host
// (exactly, as "*.parent" or as a URL with that host), so that it may
// resolve to a private address; else nil.
func matchDomains(host string, domains []string) []string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if strings.Contains(d, "://") {
			if u, err := url.Parse(d); err == nil {
				d = u.Hostname()
			}
		} else if h, _, err := net.SplitHostPort(d); err == nil {
			d = h
		}
		d = strings.TrimSuffix(d, ".")
		if d == host {
			return []string{host}
		}
		if parent, ok := strings.CutPrefix(d, "*."); ok && strings.HasSuffix(host, "."+parent) {
			return []string{host}
		}
	}
	return nil
}

// htmlToMarkdown extracts the main content of an HTML page as Markdown,
// headed by its title.
func htmlToMarkdown(body []byte, pageURL *url.URL) (title, md string, err error) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return "", "", fmt.Errorf("parse HTML: %w", err)
	}
	content := ""
	if art, err := readability.FromDocument(doc, pageURL); err == nil && strings.TrimSpace(art.TextContent) != "" {
		title, content = strings.TrimSpace(art.Title), art.Content
	} else {
		// Not an article (a short page, a listing): convert the whole
		// page rather than return nothing.
		content = string(body)
	}
	if title == "" {
		title = documentTitle(body)
	}
	cdoc, err := html.Parse(strings.NewReader(content))
	if err != nil {
		return "", "", fmt.Errorf("parse HTML: %w", err)
	}
	dropUnsafeURLs(cdoc)
	mdb, err := htmltomarkdown.ConvertNode(cdoc, converter.WithDomain(pageURL.Scheme+"://"+pageURL.Host))
	md = string(mdb)
	if err != nil {
		return "", "", fmt.Errorf("convert to Markdown: %w", err)
	}
	md = strings.TrimSpace(md)
	if title != "" && !strings.HasPrefix(md, "# ") {
		md = "# " + title + "\n\n" + md
	}
	return title, md, nil
}

// safeSchemes are the URL schemes a link or image keeps in web_read's
// Markdown (plus relative URLs): a page's javascript: or data: URL would
// otherwise reach whatever renders the model's Markdown.
var safeSchemes = map[string]bool{"": true, "http": true, "https": true, "mailto": true, "tel": true}

// dropUnsafeURLs removes href and src attributes with other schemes, and
// those that do not parse (browsers strip the control characters and
// spaces that make url.Parse fail, so such a URL may still be javascript:).
func dropUnsafeURLs(n *html.Node) {
	if n.Type == html.ElementNode {
		kept := n.Attr[:0]
		for _, a := range n.Attr {
			if a.Namespace == "" && (a.Key == "href" || a.Key == "src") {
				u, err := url.Parse(strings.TrimSpace(a.Val))
				if err != nil || !safeSchemes[strings.ToLower(u.Scheme)] {
					continue
				}
			}
			kept = append(kept, a)
		}
		n.Attr = kept
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		dropUnsafeURLs(c)
	}
}

func documentTitle(body []byte) string {
	z := html.NewTokenizer(bytes.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken:
			if name, _ := z.TagName(); string(name) == "title" {
				if z.Next() == html.TextToken {
					return strings.TrimSpace(html.UnescapeString(string(z.Text())))
				}
				return ""
			}
		}
	}
}

func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// estimateTokens guesses an LLM token count: about four characters per
// token for Latin text, about one per character for Hangul and CJK.
func estimateTokens(s string) int {
	ascii, other := 0, 0
	for _, r := range s {
		if r < utf8.RuneSelf {
			ascii++
		} else {
			other++
		}
	}
	return (ascii+3)/4 + other
}

func renderRead(out *ReadOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Read %d of %d pages.\n", out.Successful, out.TotalURLs)
	for _, r := range out.Results {
		if r.Status != "success" {
			fmt.Fprintf(&b, "\n---\n%s: error %s: %s\n", r.URL, r.ErrorCode, r.Error)
			continue
		}
		fmt.Fprintf(&b, "\n---\nURL: %s\nTitle: %s\nWords: %d", r.URL, r.Title, r.WordCount)
		if r.Truncated {
			b.WriteString(" (truncated)")
		}
		fmt.Fprintf(&b, "\n\n%s\n", r.Content)
	}
	return b.String()
}
