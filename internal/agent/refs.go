package agent

import "github.com/modelcontextprotocol/go-sdk/mcp"

// Reference is a citation extracted from a run's tool results.
type Reference struct {
	Index   int    `json:"index"` // 1-based, in order of first use
	Title   string `json:"title"`
	URL     string `json:"url,omitempty"`
	Snippet string `json:"snippet,omitempty"`
	Server  string `json:"server,omitempty"`
	Tool    string `json:"tool"`
}

// noCitation lists tools whose results are not sources: the clock.
var noCitation = map[string]bool{toolTime: true}

// references extracts citations from successful calls, in call order:
// search-like results give one per item, web reads one per page, other
// tools one per call (with the resource links or URL they returned, if
// any). References with the same URL are merged into the first.
func references(calls []*call) []Reference {
	out := []Reference{}
	seen := map[string]bool{}
	add := func(r Reference) {
		if r.URL != "" {
			if seen[r.URL] {
				return
			}
			seen[r.URL] = true
		}
		r.Index = len(out) + 1
		out = append(out, r)
	}
	for _, c := range calls {
		if c.err != nil || c.res == nil || c.res.IsError || c.entry == nil {
			continue
		}
		server, tool := c.entry.info.Server, c.entry.info.Name
		if noCitation[tool] {
			continue
		}
		sc := structured(c.res)
		var items []item
		if tool == toolWebRead {
			items = readPages(sc, c.args)
		} else {
			items = searchItems(sc)
		}
		for _, cont := range c.res.Content {
			if l, ok := cont.(*mcp.ResourceLink); ok && (len(items) == 0 || tool == toolWebRead) {
				items = append(items, item{Title: firstNonEmpty(l.Title, l.Name), URL: l.URI, Snippet: l.Description})
			}
		}
		if len(items) == 0 {
			if u := str(sc, "url", "link", "htmlLink"); u != "" {
				items = []item{{Title: str(sc, "title", "summary", "name"), URL: u}}
			}
		}
		if len(items) == 0 {
			add(Reference{Title: firstNonEmpty(c.summary, tool), Server: server, Tool: tool})
			continue
		}
		for _, it := range items {
			add(Reference{Title: firstNonEmpty(it.Title, hostOf(it.URL)), URL: it.URL, Snippet: truncate(it.Snippet, 300), Server: server, Tool: tool})
		}
	}
	return out
}
