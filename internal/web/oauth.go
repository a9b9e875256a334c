package web

// Upstream OAuth in the browser. The hub hands a user a single-use
// authorize link (GET /oauth/start?link=…), not the upstream's URL. Opened
// by the browser of the signed-in user whose authorization it is, the link
// sets a binding cookie (HttpOnly, SameSite=Lax, __Host- over https) and
// redirects to the upstream's authorization page; the upstream sends the
// browser back to GET /oauth/callback, which completes the flow only for
// that browser. A callback that reaches any other browser links nothing
// silently: signed in as the user who started it, they are asked to
// confirm (a POST with the session's CSRF token); signed in as someone
// else, it is refused; not signed in, they are asked to sign in first.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// bindingCookieAge is how long the binding cookie lives: as long as an
// authorize link.
const bindingCookieAge = 10 * 60

// maxCallbackForm bounds the confirmation form.
const maxCallbackForm = 16 << 10

func (a *API) bindingCookieName() string {
	if a.opts.SecureCookies {
		return "__Host-sb_oauth_binding"
	}
	return "sb_oauth_binding"
}

func (a *API) browser(r *http.Request) (BrowserUser, bool) {
	if a.opts.Browser == nil {
		return BrowserUser{}, false
	}
	return a.opts.Browser(r)
}

// loginURL is where a browser signs in and returns to next.
func (a *API) loginURL(next string) string {
	p := a.opts.LoginPath
	if p == "" {
		p = "/login"
	}
	return p + "?" + url.Values{"next": {next}}.Encode()
}

// OAuthStart serves the authorize links the hub hands out
// (GET /oauth/start?link=…).
func (a *API) OAuthStart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		setPageHeaders(w)
		bu, ok := a.browser(r)
		if !ok {
			http.Redirect(w, r, a.loginURL(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		secret := ""
		if c, err := r.Cookie(a.bindingCookieName()); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
			secret = c.Value // one secret for every flow of this browser
		} else {
			b := make([]byte, 32)
			rand.Read(b)
			secret = base64.RawURLEncoding.EncodeToString(b)
		}
		server, authURL, err := a.hub.OpenAuthorizeLink(r.Context(), bu.ID, r.URL.Query().Get("link"), secret)
		if err != nil {
			a.oauthPage(w, r, err, server, nil)
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: a.bindingCookieName(), Value: secret, Path: "/", MaxAge: bindingCookieAge,
			Secure: a.opts.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
		http.Redirect(w, r, authURL, http.StatusFound)
	})
}

// OAuthCallback serves the one callback URL of upstream OAuth
// (GET /oauth/callback, and POST for the confirmation form): the state
// routes it to the user's connection that asked. It answers with a page
// for the browser.
func (a *API) OAuthCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		cb := &hub.OAuthCallback{}
		bu, signedIn := a.browser(r)
		if signedIn {
			cb.User = bu.ID
		}
		if c, err := r.Cookie(a.bindingCookieName()); err == nil {
			cb.Browser = c.Value
		}
		switch r.Method {
		case http.MethodGet:
			cb.URL = r.URL.String()
		case http.MethodPost:
			r.Body = http.MaxBytesReader(w, r.Body, maxCallbackForm)
			if err := r.ParseForm(); err != nil {
				a.page(w, http.StatusBadRequest, pageData{Title: "Bad request", Message: "The form could not be read."})
				return
			}
			got := r.PostForm.Get("csrf")
			if !signedIn || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(bu.CSRF)) != 1 {
				a.page(w, http.StatusForbidden, pageData{Title: "Not linked", Message: "The confirmation did not come from this browser's Switchboard page. Nothing was linked."})
				return
			}
			if r.PostForm.Get("action") != "link" {
				a.page(w, http.StatusOK, pageData{Title: "Not linked", Message: "Nothing was linked. You can close this window."})
				return
			}
			u := url.URL{Path: r.URL.Path, RawQuery: r.PostForm.Get("query")}
			cb.URL, cb.Confirmed = u.String(), true
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		server, err := a.hub.CompleteOAuthCallback(r.Context(), cb)
		var confirm *confirmForm
		if errors.Is(err, hub.ErrConfirmLink) {
			confirm = &confirmForm{Action: r.URL.Path, Query: r.URL.RawQuery, CSRF: bu.CSRF, Server: server, User: bu.Name}
		}
		a.oauthPage(w, r, err, server, confirm)
	})
}

type confirmForm struct {
	Action, Query, CSRF, Server, User string
}

type pageData struct {
	Title, Message string
	Confirm        *confirmForm
	SignIn         string // a sign-in link that returns here
}

// oauthPage answers the browser with the outcome of an authorize link or
// a callback, in one place.
func (a *API) oauthPage(w http.ResponseWriter, r *http.Request, err error, server string, confirm *confirmForm) {
	p := pageData{}
	status := http.StatusOK
	switch {
	case err == nil:
		p.Title, p.Message = "Connected", "Switchboard can now use "+server+" for you. You can close this window."
	case errors.Is(err, hub.ErrConfirmLink):
		p.Title, p.Confirm = "Link "+server+"?", confirm
	case errors.Is(err, hub.ErrSignInToLink):
		status, p.Title, p.Message = http.StatusUnauthorized, "Sign in to finish", "This sign-in to "+server+" did not start in this browser. Sign in to Switchboard to confirm that it is to be linked to your account; nothing is linked until you do."
		if next := r.URL.RequestURI(); len(next) <= 2000 {
			p.SignIn = a.loginURL(next)
		}
	case errors.Is(err, hub.ErrForeignAuthorization):
		status, p.Title, p.Message = http.StatusForbidden, "Not linked", "This sign-in was started by another Switchboard account, so nothing was linked to yours. Start it from your own server status."
	case errors.Is(err, hub.ErrUnknownState):
		status, p.Title, p.Message = http.StatusBadRequest, "Link expired", err.Error()
	default:
		status, p.Title, p.Message = http.StatusBadGateway, "Authorization failed", "Signing in to "+server+" did not complete. Try again from the server's status."
	}
	a.page(w, status, p)
}

func (a *API) page(w http.ResponseWriter, status int, p pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	oauthPageTmpl.Execute(w, p)
}

// setPageHeaders keeps the pages out of caches, referrers and frames (the
// confirmation button must not be clickjacked).
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
}

var oauthPageTmpl = template.Must(template.New("oauth").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Switchboard</title></head>
<body><h1>{{.Title}}</h1>{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Confirm}}<p>Link the {{.Server}} account you just signed in to with your Switchboard account <b>{{.User}}</b>?
Switchboard will then use that account whenever you use {{.Server}}. If you did not start this, choose Cancel.</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="query" value="{{.Query}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button name="action" value="link">Link to {{.User}}</button> <button name="action" value="cancel">Cancel</button></form>{{end}}
{{with .SignIn}}<p><a href="{{.}}">Sign in to Switchboard</a></p>{{end}}
</body></html>
`))
