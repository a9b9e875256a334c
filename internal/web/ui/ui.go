// Package ui serves Switchboard's chat UI: one page (GET /chat) and its
// script and style sheet, embedded in the binary. The page talks to the
// agent API (/api/chat, /api/conversations, /api/agents) and the server
// API (/api/servers) with the browser's sign-in session, sending the
// session's CSRF token that it embeds (authserver.ProtectAPIOrSession
// checks it). cmd/switchboard mounts it; it imports authserver and agent
// for their types only.
package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/authserver"
)

//go:embed static
var staticFS embed.FS

var pageTmpl = template.Must(template.ParseFS(staticFS, "static/chat.html"))

// asset is an embedded file with its content hash, which versions its URL.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func loadAsset(name, contentType string) asset {
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return asset{body: b, contentType: contentType, etag: hex.EncodeToString(sum[:8])}
}

var assets = map[string]asset{
	"chat.js":  loadAsset("chat.js", "text/javascript; charset=utf-8"),
	"chat.css": loadAsset("chat.css", "text/css; charset=utf-8"),
}

// Options configure the UI. Session is required.
type Options struct {
	// Session returns the signed-in browser of a request; false sends the
	// browser to sign in. authserver.Server.BrowserSession is one.
	Session func(r *http.Request) (*authserver.BrowserSession, bool)
	// LoginURL is the sign-in page, which takes the return path in its
	// next parameter. Empty: "/login".
	LoginURL string
	// ChatServers lists the servers user may use in chat; only those with
	// ChatMenu are offered as toggles. agent.HubTools.Servers is one. Nil:
	// every server /api/servers lists is offered.
	ChatServers func(ctx context.Context, user string) ([]agent.ServerInfo, error)
	// Logger receives errors. Nil discards them.
	Logger *slog.Logger
}

type handler struct {
	opts Options
	log  *slog.Logger
}

// Handler returns the UI, to be mounted at /chat and /chat/:
//
//	GET /chat                     the page; without a session, a redirect to sign in
//	GET /chat/static/{file}       chat.js, chat.css
func Handler(opts *Options) http.Handler {
	if opts == nil || opts.Session == nil {
		panic("ui: Options.Session is required")
	}
	h := &handler{opts: *opts, log: opts.Logger}
	if h.opts.LoginURL == "" {
		h.opts.LoginURL = "/login"
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat", h.page)
	mux.HandleFunc("GET /chat/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/chat", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /chat/static/{file}", serveAsset)
	return mux
}

// Lang cookie and values.
const (
	langCookie = "sb_lang"
	korean     = "ko"
	english    = "en"
)

// pageData is what chat.html is rendered with.
type pageData struct {
	Lang, Other   string // the page's language and the one the toggle offers
	S             map[string]string
	Username      string
	CSRF          string
	BootJSON      string
	JSURL, CSSURL string
	ToggleURL     string
	ToggleLabel   string
}

// bootData is handed to chat.js as JSON in the body's data-boot attribute
// (an inline script would need a CSP exception).
type bootData struct {
	Lang        string            `json:"lang"`
	CSRFHeader  string            `json:"csrfHeader"`
	LoginURL    string            `json:"loginUrl"`
	ChatServers []string          `json:"chatServers"` // nil: every server
	Strings     map[string]string `json:"strings"`
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	bs, ok := h.opts.Session(r)
	if !ok {
		setPageHeaders(w)
		http.Redirect(w, r, h.opts.LoginURL+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	lang := pageLang(r)
	if v := r.URL.Query().Get("lang"); v == korean || v == english {
		http.SetCookie(w, &http.Cookie{
			Name: langCookie, Value: v, Path: "/chat", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
		})
	}
	var chatServers []string
	if h.opts.ChatServers != nil {
		infos, err := h.opts.ChatServers(r.Context(), bs.UserID)
		if err != nil {
			h.log.Error("listing chat servers", slog.String("err", err.Error()))
		}
		chatServers = []string{}
		for _, si := range infos {
			if si.ChatMenu {
				chatServers = append(chatServers, si.Name)
			}
		}
	}
	other := english
	if lang == english {
		other = korean
	}
	boot, err := json.Marshal(bootData{
		Lang: lang, CSRFHeader: authserver.CSRFHeader, LoginURL: h.opts.LoginURL + "?next=" + url.QueryEscape("/chat"),
		ChatServers: chatServers, Strings: messages[lang],
	})
	if err != nil {
		panic(err) // strings and string slices always marshal
	}
	d := &pageData{
		Lang: lang, Other: other, S: messages[lang], Username: bs.Username, CSRF: bs.CSRF, BootJSON: string(boot),
		JSURL:       "/chat/static/chat.js?v=" + assets["chat.js"].etag,
		CSSURL:      "/chat/static/chat.css?v=" + assets["chat.css"].etag,
		ToggleURL:   "/chat?lang=" + other,
		ToggleLabel: messages[other]["lang_name"],
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		h.log.Error("rendering chat page", slog.String("err", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Add("Vary", "Accept-Language, Cookie")
	w.Write(buf.Bytes())
}

// csp allows nothing but this origin: no inline script or style, no
// frames (clickjacking), no plugins, no <base> rewriting, forms post here.
const csp = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"

// setPageHeaders: the page holds the CSRF token, so it is never cached or
// framed, and its URL never leaks through Referer to the sites it links.
func setPageHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", csp)
	hd.Set("ETag", `"`+a.etag+`"`)
	// The page names the file with its hash, so a changed file is a new URL.
	hd.Set("Cache-Control", "public, max-age=86400")
	if match := r.Header.Get("If-None-Match"); match == `"`+a.etag+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(a.body)
}

// pageLang picks the page's language: the lang parameter (the toggle),
// then the remembered choice, then Accept-Language by quality; English
// when nothing says Korean.
func pageLang(r *http.Request) string {
	if v := r.URL.Query().Get("lang"); v == korean || v == english {
		return v
	}
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == korean || c.Value == english) {
		return c.Value
	}
	best, bestQ := english, -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (base == korean || base == english) && q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}
