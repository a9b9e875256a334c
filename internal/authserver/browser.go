package authserver

// Sign-in for Switchboard's own pages (the chat UI). GET /login?next=/chat
// shows the sign-in page without an OAuth client; after signing in, the
// browser returns to next, a path on this origin. The UI's scripts call
// /api with the session cookie; ProtectAPIOrSession accepts that cookie
// only together with the session's CSRF token in X-Switchboard-CSRF, and
// never from another origin.

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// CSRFHeader is the request header that carries a browser session's CSRF
// token on /api requests authenticated by the session cookie.
const CSRFHeader = "X-Switchboard-CSRF"

// sessionClientID is Principal.ClientID for requests authenticated by the
// browser session rather than a token.
const sessionClientID = "session"

// BrowserSession is a signed-in browser.
type BrowserSession struct {
	UserID   string
	Username string
	Email    string
	Role     store.Role
	// CSRF is what requests authenticated by this session's cookie must
	// send in the X-Switchboard-CSRF header. Pages embed it; another
	// origin cannot read it.
	CSRF string
}

// BrowserSession returns the signed-in user of the request's session
// cookie; false for no session, an anonymous one, or a disabled user.
func (s *Server) BrowserSession(r *http.Request) (*BrowserSession, bool) {
	bs, err := s.browserSession(r)
	if err != nil {
		if !errors.Is(err, errInvalidToken) {
			s.log.Error("reading browser session", errAttr(err))
		}
		return nil, false
	}
	return bs, true
}

// browserSession is BrowserSession with store failures kept apart from
// refusals (errInvalidToken).
func (s *Server) browserSession(r *http.Request) (*BrowserSession, error) {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return nil, errInvalidToken
	}
	_, sess := s.session(r)
	if sess == nil || sess.UserID == "" {
		return nil, errInvalidToken
	}
	u, err := s.cachedUser(r.Context(), sess.UserID)
	if err != nil {
		return nil, err
	}
	return &BrowserSession{UserID: u.ID, Username: u.Username, Email: u.Email, Role: u.Role, CSRF: sessionCSRF(c.Value)}, nil
}

// sessionCSRF derives a session's CSRF token from its cookie value, so it
// needs no storage. It is a different hash than the stored session key:
// whoever reads the store learns neither the cookie nor this token.
func sessionCSRF(cookie string) string {
	return hashToken("switchboard csrf\x00" + cookie)
}

// ProtectAPIOrSession guards /api like ProtectAPI and also lets the
// browser of a signed-in user through, for Switchboard's own pages. A
// request with an Authorization header is judged by it alone. A request
// authenticated by the session cookie must come from the issuer's origin
// (Origin and Sec-Fetch-Site, when sent) and carry the session's CSRF
// token in X-Switchboard-CSRF; otherwise it gets 403. Without either
// credential the answer is ProtectAPI's 401 challenge.
func (s *Server) ProtectAPIOrSession(next http.Handler) http.Handler {
	tokens := s.ProtectAPI(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, present := bearer(r); present {
			tokens.ServeHTTP(w, r)
			return
		}
		cookie, err := r.Cookie(s.cookieName())
		if err != nil {
			tokens.ServeHTTP(w, r)
			return
		}
		if !s.sameOrigin(r) {
			s.forbidden(w, "cross-origin request refused")
			return
		}
		bs, err := s.browserSession(r)
		if errors.Is(err, errInvalidToken) {
			tokens.ServeHTTP(w, r) // expired or signed out: the 401 challenge
			return
		} else if err != nil {
			s.log.Error("reading browser session", errAttr(err))
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(bs.CSRF)) != 1 {
			s.forbidden(w, "the request lacks the page's CSRF token")
			return
		}
		p := &Principal{
			UserID: bs.UserID, Username: bs.Username, Email: bs.Email, Role: bs.Role, ClientID: sessionClientID,
			Scopes: []string{s.scopes[0]}, Resource: s.issuer + "/mcp",
		}
		r = r.Clone(WithPrincipal(r.Context(), p))
		// Like the Authorization header in protect: the credential stops here.
		withoutCookie(r, cookie.Name)
		r.Header.Del(CSRFHeader)
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether a cookie-authenticated request may come from
// where it says it comes from: the issuer's origin, or a client that sends
// neither Origin nor Sec-Fetch-Site (not a browser, or an old one: the
// CSRF token still has to match).
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Values("Origin"); len(o) > 1 || (len(o) == 1 && o[0] != s.origin()) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
		return true
	}
	return false
}

func (s *Server) forbidden(w http.ResponseWriter, desc string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": desc})
}

// withoutCookie removes the cookie named name from r's Cookie headers.
func withoutCookie(r *http.Request, name string) {
	var keep []string
	for _, c := range r.Cookies() {
		if c.Name != name {
			keep = append(keep, c.String())
		}
	}
	r.Header.Del("Cookie")
	if len(keep) > 0 {
		r.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

// maxNextLen bounds the return address of a browser sign-in.
const maxNextLen = 2048

// safeNext returns next if it is a path on this origin: it starts with a
// single "/", and has no backslash or control character that a browser
// would drop or turn into "/" on its way to reading "//host" or "/\host"
// as another origin (WHATWG URL §4.4: backslash is a path separator in
// special URLs; tab and newline are removed).
func safeNext(next string) (string, bool) {
	if next == "" || len(next) > maxNextLen || next[0] != '/' {
		return "", false
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "", false
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ' ' {
			return "", false
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	return next, true
}

// handleLoginPage is GET /login: the sign-in page of Switchboard's own
// pages. A browser that is signed in already goes straight to next.
func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	next := ""
	if raw, ok := single(q, "next"); !ok {
		s.errorPage(w, r, http.StatusBadRequest, "next given more than once.")
		return
	} else if raw != "" {
		if next, ok = safeNext(raw); !ok {
			s.errorPage(w, r, http.StatusBadRequest, "The return address is not a page of this server.")
			return
		}
	}
	sessKey, sess := s.session(r)
	if _, err := s.browserSession(r); err == nil {
		s.signedIn(w, r, next)
		return
	}
	if !s.local && len(s.provOrder) == 0 {
		s.errorPage(w, r, http.StatusInternalServerError, "No sign-in method is configured.")
		return
	}
	if sess == nil {
		var err error
		if sessKey, err = s.newSession(w, r, "", ""); err != nil {
			s.log.Error("starting session", errAttr(err))
			s.errorPage(w, r, http.StatusInternalServerError, "Internal error.")
			return
		}
	}
	s.showPending(w, r, &pendingAuth{Browser: true, Next: next, CSRF: randomToken(), Session: sessKey}, "signin", "")
}

// signedIn ends a browser sign-in: back to next, or a page saying so.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		lang := pageLang(r)
		s.renderPage(w, r, http.StatusOK, &pageData{Page: "done", Message: msg(lang, "signed_in")})
		return
	}
	setPageHeaders(w)
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}
