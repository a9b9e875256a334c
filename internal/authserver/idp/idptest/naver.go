package idptest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
)

// NaverUser is a NAVER account of the fake. Fields other than ID may be
// empty; the profile API then leaves them out, as NAVER does.
type NaverUser struct {
	ID           string // e.g. "32742776"; the profile's response.id and the id_token's sub
	Email        string
	Name         string
	Nickname     string
	ProfileImage string
	Gender       string // "F", "M" or "U"
	Age          string // "40-49"
	Birthday     string // "10-01"
	BirthYear    string
	Mobile       string
	// CalendarID is the user's default calendar. Zero: "870711".
	CalendarID string
	// CalendarDenied makes createSchedule answer 403 / 1403, as for a user
	// who did not consent to calendar access.
	CalendarDenied bool
}

// DefaultNaverUser is who logs in to a fake created without users.
func DefaultNaverUser() NaverUser {
	return NaverUser{
		ID:           "32742776",
		Email:        "user@naver.com",
		Name:         "김네이버",
		Nickname:     "naverkim",
		ProfileImage: "https://phinf.pstatic.net/contact/profile.png",
		Gender:       "F",
		Age:          "40-49",
		Birthday:     "10-01",
		BirthYear:    "1980",
		Mobile:       "010-0000-0000",
	}
}

// NaverOptions configure NewNaver. The zero value is NAVER as it behaves.
type NaverOptions struct {
	// ClientID and ClientSecret of the registered app, also the search API's
	// X-Naver-Client-Id and -Secret. Zero: "naver-client-id",
	// "naver-client-secret".
	ClientID, ClientSecret string
	// Users are the accounts; the first logs in when the authorize request
	// has no login_hint (an id or email). Zero: DefaultNaverUser().
	Users []NaverUser
	// RotateRefreshTokens issues a new refresh token on every refresh. Zero:
	// the refresh token stays valid and the refresh response has none.
	RotateRefreshTokens bool
	// IssParam advertises authorization_response_iss_parameter_supported and
	// adds iss to authorize redirects (RFC 9207). Zero: neither.
	IssParam bool
	// ES256 signs id_tokens with ES256. Zero: RS256.
	ES256 bool
	// IDTokenProfile puts email, name, nickname and picture in id_tokens.
	// Zero: id_tokens carry sub only, so clients need the profile API.
	IDTokenProfile bool
	// ExpiresInNumber sends expires_in as a JSON number. Zero: as the string
	// "3600", the quirk clients must accept.
	ExpiresInNumber bool
	// TokenTTL is the access token lifetime. Zero: one hour.
	TokenTTL time.Duration
	// SearchQuota is how many search calls succeed before 429. Zero: no limit.
	SearchQuota int
	// SearchNotEnabled answers every search with 403, as for an app without
	// the search API. Zero: enabled.
	SearchNotEnabled bool
}

// CalendarEvent is one createSchedule call the fake accepted.
type CalendarEvent struct {
	UserID     string
	CalendarID string // as sent, e.g. "defaultCalendarId"
	ICal       string // scheduleIcalString as sent
	UID        string // the VEVENT's UID, also the response's icalUid
	Summary    string // the VEVENT's SUMMARY, still escaped per RFC 5545
}

// SearchRequest is one search API call the fake received, valid or not.
type SearchRequest struct {
	Kind  string // "webkr", "news", "blog", …
	Query url.Values
}

// SearchItem is one search result; Title and Description carry NAVER's <b>
// tags and HTML entities. Fields empty for a kind are left out.
type SearchItem struct {
	Title        string `json:"title"`
	Link         string `json:"link"`
	OriginalLink string `json:"originallink,omitempty"` // news
	Description  string `json:"description"`
	PubDate      string `json:"pubDate,omitempty"`     // news
	BloggerName  string `json:"bloggername,omitempty"` // blog
	BloggerLink  string `json:"bloggerlink,omitempty"` // blog
	PostDate     string `json:"postdate,omitempty"`    // blog
}

// Naver is a fake of NAVER login (OIDC and classic), the profile API, the
// calendar API and the search API, all on one server: where NAVER has
// nid.naver.com and openapi.naver.com, the fake has URL().
type Naver struct {
	*Server
	o NaverOptions

	// guarded by Server.mu
	users       []NaverUser
	events      []CalendarEvent
	searches    []SearchRequest
	searchItems map[string][]SearchItem
	searchCalls int
}

// NewNaver starts a NAVER fake, closed when the test ends. opts may be nil.
func NewNaver(t testing.TB, opts *NaverOptions) *Naver {
	t.Helper()
	var o NaverOptions
	if opts != nil {
		o = *opts
	}
	o.ClientID = orDefault(o.ClientID, "naver-client-id")
	o.ClientSecret = orDefault(o.ClientSecret, "naver-client-secret")
	n := &Naver{o: o, users: slices.Clone(o.Users), searchItems: map[string][]SearchItem{}}
	if len(n.users) == 0 {
		n.users = []NaverUser{DefaultNaverUser()}
	}
	s := newServer(t, serverOptions{
		clientID: o.ClientID, clientSecret: o.ClientSecret,
		es256: o.ES256, issParam: o.IssParam, ttl: o.TokenTTL, rotate: o.RotateRefreshTokens,
	})
	n.Server = s
	s.findUserLocked = n.findUserLocked
	s.claimsLocked = n.claimsLocked

	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery(map[string]string{
		"authorization_endpoint": "/oauth2/authorize",
		"token_endpoint":         "/oauth2/token",
		"jwks_uri":               "/oauth2/jwks",
		"userinfo_endpoint":      "/v1/nid/me",
		"revocation_endpoint":    "/oauth2/revoke",
	}, map[string]any{
		"scopes_supported":                      []string{"openid"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}))
	s.mux.HandleFunc("GET /oauth2/authorize", s.handleAuthorize(authorizeFlavor{}))
	s.mux.HandleFunc("/oauth2/token", s.handleToken(tokenFlavor{
		post: true, expiresInString: !o.ExpiresInNumber, idToken: true, tokenType: "bearer",
	}))
	s.mux.HandleFunc("GET /oauth2/jwks", s.handleJWKS)
	s.mux.HandleFunc("GET /oauth2.0/authorize", s.handleAuthorize(authorizeFlavor{requireState: true}))
	s.mux.HandleFunc("/oauth2.0/token", s.handleToken(tokenFlavor{
		post: true, allowGET: true, expiresInString: !o.ExpiresInNumber, errors200: true,
		checkState: true, tokenType: "bearer", revokeGrant: true,
	}))
	s.mux.HandleFunc("GET /v1/nid/me", n.handleProfile)
	s.mux.HandleFunc("POST /calendar/createSchedule.json", n.handleCreateSchedule)
	s.mux.HandleFunc("GET /v1/search/{file}", n.handleSearch)
	s.start(t)
	return n
}

// Config is an idp.Config for the fake's OIDC login.
func (n *Naver) Config() idp.Config {
	return idp.Config{
		Type: "naver", Name: "naver", ClientID: n.clientID, ClientSecret: n.clientSecret,
		Issuer: n.URL(), ProfileURL: n.URL() + "/v1/nid/me",
	}
}

// ClassicConfig is an idp.Config for the fake's classic OAuth 2.0 login.
func (n *Naver) ClassicConfig() idp.Config {
	c := n.Config()
	c.Classic = true
	return c
}

// SetUser adds u, or replaces the user with u's ID, and makes u the user who
// logs in without a login_hint.
func (n *Naver) SetUser(u NaverUser) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.users = slices.DeleteFunc(n.users, func(x NaverUser) bool { return x.ID == u.ID })
	n.users = slices.Insert(n.users, 0, u)
}

// CalendarEvents returns the events created for userID, oldest first; all
// users' when userID is empty.
func (n *Naver) CalendarEvents(userID string) []CalendarEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []CalendarEvent
	for _, e := range n.events {
		if userID == "" || e.UserID == userID {
			out = append(out, e)
		}
	}
	return out
}

// SearchRequests returns every search request received, oldest first.
func (n *Naver) SearchRequests() []SearchRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]SearchRequest, len(n.searches))
	for i, r := range n.searches {
		out[i] = SearchRequest{Kind: r.Kind, Query: cloneValues(r.Query)}
	}
	return out
}

// SetSearchItems fixes the results of searches of kind ("webkr", "news",
// "blog"), whatever the query; start and display page through them. Without
// it the fake makes up 1000 results that echo the query.
func (n *Naver) SetSearchItems(kind string, items []SearchItem) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.searchItems[kind] = slices.Clone(items)
}

func (n *Naver) findUserLocked(hint string) (string, bool) {
	for _, u := range n.users {
		if hint == "" || u.ID == hint || strings.EqualFold(u.Email, hint) {
			return u.ID, true
		}
	}
	return "", false
}

func (n *Naver) userLocked(id string) (NaverUser, bool) {
	i := slices.IndexFunc(n.users, func(u NaverUser) bool { return u.ID == id })
	if i < 0 {
		return NaverUser{}, false
	}
	return n.users[i], true
}

func (n *Naver) claimsLocked(sub string) map[string]any {
	u, ok := n.userLocked(sub)
	if !ok || !n.o.IDTokenProfile {
		return nil
	}
	c := map[string]any{}
	for k, v := range map[string]string{"email": u.Email, "name": u.Name, "nickname": u.Nickname, "picture": u.ProfileImage} {
		if v != "" {
			c[k] = v
		}
	}
	return c
}

// NAVER's answers to a missing or bad token (WIRE.md "Profile").
var (
	naverNoHeader  = map[string]any{"resultcode": "028", "message": "Authentication header not exists / 인증 헤더가 존재하지 않습니다."}
	naverAuthFail  = map[string]any{"resultcode": "024", "message": "Authentication failed / 인증에 실패했습니다."}
	naverAuthFails = map[string]map[string]any{"024": naverAuthFail, "028": naverNoHeader}
)

func (n *Naver) handleProfile(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.userInfoCalls++
	if code := n.faults.ProfileResultCode; code != "" {
		if body, ok := naverAuthFails[code]; ok {
			writeJSON(w, http.StatusUnauthorized, "application/json;charset=utf-8", body)
			return
		}
		writeJSON(w, http.StatusOK, "application/json;charset=utf-8", map[string]any{"resultcode": code, "message": "fault injected by idptest"})
		return
	}
	ses, missing := n.bearerLocked(r)
	if ses == nil {
		body := naverAuthFail
		if missing {
			body = naverNoHeader
		}
		writeJSON(w, http.StatusUnauthorized, "application/json;charset=utf-8", body)
		return
	}
	u, ok := n.userLocked(ses.sub)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, "application/json;charset=utf-8", naverAuthFail)
		return
	}
	resp := map[string]string{"id": u.ID}
	for k, v := range map[string]string{
		"nickname": u.Nickname, "name": u.Name, "email": u.Email, "gender": u.Gender, "age": u.Age,
		"birthday": u.Birthday, "profile_image": u.ProfileImage, "birthyear": u.BirthYear, "mobile": u.Mobile,
	} {
		if v != "" {
			resp[k] = v
		}
	}
	writeJSON(w, http.StatusOK, "application/json;charset=utf-8",
		map[string]any{"resultcode": "00", "message": "success", "response": resp})
}

func (n *Naver) handleCreateSchedule(w http.ResponseWriter, r *http.Request) {
	// The calendar API answers JSON labelled as HTML (WIRE.md "NAVER Calendar").
	const ct = "text/html;charset=UTF-8"
	fail := func(status, code int, msg string) {
		writeJSON(w, status, ct, map[string]any{"result": "fail", "code": code, "message": msg})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusInternalServerError, 1500, "malformed form body")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ses, missing := n.bearerLocked(r)
	if ses == nil {
		body := naverAuthFail
		if missing {
			body = naverNoHeader
		}
		writeJSON(w, http.StatusUnauthorized, ct, body)
		return
	}
	u, _ := n.userLocked(ses.sub)
	calID := orDefault(u.CalendarID, "870711")
	reqCal := r.PostForm.Get("calendarId")
	ical := r.PostForm.Get("scheduleIcalString")
	switch {
	case u.CalendarDenied:
		fail(http.StatusForbidden, 1403, "calendar permission has not been granted")
		return
	case reqCal != "defaultCalendarId" && reqCal != calID:
		fail(http.StatusNotFound, 1404, "no such calendar: "+reqCal)
		return
	}
	lines := unfoldICal(ical)
	for _, want := range []string{"BEGIN:VCALENDAR", "BEGIN:VEVENT", "END:VEVENT", "END:VCALENDAR"} {
		if !slices.Contains(lines, want) {
			fail(http.StatusInternalServerError, 1500, "invalid scheduleIcalString: no "+want)
			return
		}
	}
	if icalProp(lines, "DTSTART") == "" {
		fail(http.StatusInternalServerError, 1500, "invalid scheduleIcalString: no DTSTART")
		return
	}
	uid := icalProp(lines, "UID")
	if uid == "" {
		uid = randomString("", 16) + "@calendar.naver.com"
	}
	n.events = append(n.events, CalendarEvent{
		UserID: u.ID, CalendarID: reqCal, ICal: ical, UID: uid, Summary: icalProp(lines, "SUMMARY"),
	})
	writeJSON(w, http.StatusOK, ct, map[string]any{
		"result": "success", "code": 200,
		"returnValue": map[string]any{"calendarId": calID, "processType": "create", "icalUid": uid},
	})
}

// unfoldICal splits iCalendar text into logical lines (RFC 5545 §3.1).
func unfoldICal(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n ", "")
	s = strings.ReplaceAll(s, "\n\t", "")
	return strings.Split(strings.TrimSpace(s), "\n")
}

// icalProp returns the value of the first property called name, whatever
// its parameters.
func icalProp(lines []string, name string) string {
	for _, l := range lines {
		head, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if pname, _, _ := strings.Cut(head, ";"); strings.EqualFold(pname, name) {
			return value
		}
	}
	return ""
}

// searchErrors are the search API's errors (WIRE.md "NAVER search").
var searchErrors = map[string]struct {
	status int
	msg    string
}{
	"SE01": {http.StatusBadRequest, "Incorrect query request (잘못된 쿼리요청입니다.)"},
	"SE02": {http.StatusBadRequest, "Invalid display value (부적절한 display 값입니다.)"},
	"SE03": {http.StatusBadRequest, "Invalid start value (부적절한 start 값입니다.)"},
	"SE04": {http.StatusBadRequest, "Invalid sort value (부적절한 sort 값입니다.)"},
	"SE05": {http.StatusNotFound, "Invalid search api (존재하지 않는 검색 api 입니다.)"},
	"SE06": {http.StatusBadRequest, "Malformed encoding (잘못된 형식의 인코딩입니다.)"},
	"SE99": {http.StatusInternalServerError, "System Error (시스템 에러)"},
	"024":  {http.StatusUnauthorized, "NID AUTH Result Invalid (28) : Authentication failed. (인증에 실패했습니다.)"},
	"010":  {http.StatusForbidden, "Scope Status Invalid : Authentication failed. (권한이 없습니다.)"},
	"012":  {http.StatusTooManyRequests, "Rate limit exceeded. (속도 제한을 초과했습니다.)"},
}

var searchKinds = []string{"webkr", "news", "blog"}

func (n *Naver) handleSearch(w http.ResponseWriter, r *http.Request) {
	kind, isJSON := strings.CutSuffix(r.PathValue("file"), ".json")
	q := r.URL.Query()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.searches = append(n.searches, SearchRequest{Kind: kind, Query: cloneValues(q)})
	fail := func(code string) {
		e := searchErrors[code]
		writeJSON(w, e.status, "application/json;charset=utf-8", map[string]any{"errorMessage": e.msg, "errorCode": code})
	}
	if code := n.faults.SearchErrorCode; code != "" {
		if _, ok := searchErrors[code]; ok {
			fail(code)
			return
		}
	}
	switch {
	case r.Header.Get("X-Naver-Client-Id") != n.clientID || r.Header.Get("X-Naver-Client-Secret") != n.clientSecret:
		fail("024")
		return
	case n.o.SearchNotEnabled:
		fail("010")
		return
	case !isJSON || !slices.Contains(searchKinds, kind):
		fail("SE05")
		return
	case n.o.SearchQuota > 0 && n.searchCalls >= n.o.SearchQuota:
		fail("012")
		return
	}
	n.searchCalls++
	if !utf8.ValidString(q.Get("query")) {
		fail("SE06")
		return
	}
	query := q.Get("query")
	if strings.TrimSpace(query) == "" {
		fail("SE01")
		return
	}
	display, ok := intParam(q, "display", 10, 1, 100)
	if !ok {
		fail("SE02")
		return
	}
	start, ok := intParam(q, "start", 1, 1, 1000)
	if !ok {
		fail("SE03")
		return
	}
	// webkr has no sort and ignores one.
	if sort := q.Get("sort"); kind != "webkr" && sort != "" && sort != "sim" && sort != "date" {
		fail("SE04")
		return
	}
	all, fixed := n.searchItems[kind]
	total := len(all)
	if !fixed {
		total = 1000
	}
	items := []SearchItem{}
	for i := start; i < start+display && i <= total; i++ {
		if fixed {
			items = append(items, all[i-1])
		} else {
			items = append(items, madeUpItem(kind, query, i))
		}
	}
	kst := time.FixedZone("KST", 9*60*60)
	writeJSON(w, http.StatusOK, "application/json;charset=utf-8", map[string]any{
		"lastBuildDate": time.Now().In(kst).Format("Mon, 02 Jan 2006 15:04:05 -0700"),
		"total":         total,
		"start":         start,
		"display":       len(items),
		"items":         items,
	})
}

func intParam(q url.Values, name string, def, lo, hi int) (int, bool) {
	s := q.Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= lo && v <= hi
}

// naverEscape escapes text the way search results do: &quot; for quotes.
var naverEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

// madeUpItem is result i for query, marked up the way NAVER marks results.
func madeUpItem(kind, query string, i int) SearchItem {
	q := naverEscape.Replace(query)
	it := SearchItem{
		Title:       fmt.Sprintf("<b>%s</b> 검색 결과 %d", q, i),
		Link:        fmt.Sprintf("https://example.com/%s/%d", kind, i),
		Description: fmt.Sprintf("&quot;<b>%s</b>&quot;에 관한 설명 %d &amp; 더 보기", q, i),
	}
	switch kind {
	case "news":
		it.OriginalLink = fmt.Sprintf("https://news.example.com/%d", i)
		it.PubDate = time.Date(2026, 1, 1, 9, 0, 0, 0, time.FixedZone("KST", 9*60*60)).
			Add(-time.Duration(i) * time.Hour).Format("Mon, 02 Jan 2006 15:04:05 -0700")
	case "blog":
		it.BloggerName = "블로거" + strconv.Itoa(i)
		it.BloggerLink = "blog.naver.com/blogger" + strconv.Itoa(i)
		it.PostDate = "20260101"
	}
	return it
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
