package authserver

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

//go:embed templates
var templateFS embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"t":  msg,
	"tf": func(lang, key string, arg any) string { return fmt.Sprintf(msg(lang, key), arg) },
}).ParseFS(templateFS, "templates/page.html"))

var styleCSS, _ = templateFS.ReadFile("templates/style.css")

var messages = map[string]map[string]string{
	"en": {
		"title_signin":  "Sign in to Switchboard",
		"title_consent": "Allow access?",
		"title_error":   "Something went wrong",
		"title_done":    "Done",
		"title_setup":   "Create the administrator",
		"wants_access":  "%s wants to use your Switchboard MCP servers on your behalf.",
		"redirect_host": "You will be returned to",
		"scopes":        "Permissions",
		"resource":      "Server",
		"consent_note":  "Continue only if you started this and trust this application.",
		"username":      "Username",
		"password":      "Password",
		"new_password":  "Password (at least 8 characters)",
		"signin_allow":  "Sign in and allow",
		"continue_with": "Allow and continue with %s",
		"allow":         "Allow",
		"deny":          "Deny",
		"close_window":  "You may close this window.",
		"setup_intro":   "No administrator exists yet. Create the first administrator account.",
		"create_admin":  "Create administrator",
		"bad_login":     "The username or password is incorrect.",
		"throttled":     "Too many failed attempts. Try again later.",
		"setup_done":    "The administrator account was created. You can now sign in from your MCP client.",
		"org_refused":   "Your %s account belongs to an organization that may not sign in here. Sign in with an account of an allowed organization, or ask the administrator to add yours (auth.providers, domains).",
		"denied":        "Access was denied.",
		"signin":        "Sign in",
		"signin_with":   "Continue with %s",
		"signed_in":     "You are signed in.",
	},
	"ko": {
		"title_signin":  "Switchboard 로그인",
		"title_consent": "접근을 허용할까요?",
		"title_error":   "문제가 발생했습니다",
		"title_done":    "완료",
		"title_setup":   "관리자 계정 만들기",
		"wants_access":  "%s이(가) 사용자를 대신해 Switchboard MCP 서버를 사용하려고 합니다.",
		"redirect_host": "돌아갈 주소",
		"scopes":        "권한",
		"resource":      "서버",
		"consent_note":  "직접 시작한 요청이고 이 애플리케이션을 신뢰할 때만 계속하세요.",
		"username":      "사용자 이름",
		"password":      "비밀번호",
		"new_password":  "비밀번호 (8자 이상)",
		"signin_allow":  "로그인하고 허용",
		"continue_with": "허용하고 %s(으)로 계속",
		"allow":         "허용",
		"deny":          "거부",
		"close_window":  "이 창을 닫아도 됩니다.",
		"setup_intro":   "아직 관리자 계정이 없습니다. 첫 관리자 계정을 만드세요.",
		"create_admin":  "관리자 만들기",
		"bad_login":     "사용자 이름 또는 비밀번호가 올바르지 않습니다.",
		"throttled":     "실패한 시도가 너무 많습니다. 나중에 다시 시도하세요.",
		"setup_done":    "관리자 계정을 만들었습니다. 이제 MCP 클라이언트에서 로그인할 수 있습니다.",
		"org_refused":   "이 %s 계정이 속한 조직은 여기에 로그인할 수 없습니다. 허용된 조직의 계정으로 로그인하거나, 관리자에게 조직 추가(auth.providers의 domains)를 요청하세요.",
		"denied":        "접근이 거부되었습니다.",
		"signin":        "로그인",
		"signin_with":   "%s(으)로 계속",
		"signed_in":     "로그인했습니다.",
	},
}

func msg(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	return messages["en"][key]
}

// pageLang picks Korean or English from Accept-Language by quality.
func pageLang(r *http.Request) string {
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if (base == "ko" || base == "en") && q > bestQ {
			best, bestQ = base, q
		}
	}
	return best
}

type pageData struct {
	Page, Lang, Title, Message, Error string
	Browser                           bool // sign-in to Switchboard's own pages, no client
	RID, CSRF                         string
	ClientName, RedirectHost          string
	Resource, Username                string
	Scopes                            []string
	Local                             bool
	Providers                         []providerChoice
}

type providerChoice struct{ Name, DisplayName string }

// setPageHeaders keeps pages out of frames (clickjacking on consent) and
// caches, and their URLs (which hold request ids) out of Referer headers.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, d *pageData) {
	d.Lang = pageLang(r)
	if d.Title == "" {
		d.Title = msg(d.Lang, "title_"+d.Page)
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, d); err != nil {
		s.log.Error("rendering page", errAttr(err))
	}
}

// errorPage shows an error in the browser: used whenever no validated
// redirect URI is known, so that nothing is ever sent to an unvalidated one.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	s.renderPage(w, r, status, &pageData{Page: "error", Message: message})
}

func handleStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(styleCSS)
}
