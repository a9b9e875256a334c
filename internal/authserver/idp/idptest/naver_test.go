package idptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp/idptest"
)

// call sends a request and decodes the JSON answer, whatever its Content-Type.
func call(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", req.Method, req.URL.Path, body, err)
	}
	return resp, m
}

const ical = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:evt-1@switchboard\r\n" +
	"DTSTART;TZID=Asia/Seoul:20261118T150000\r\nDTEND;TZID=Asia/Seoul:20261118T160000\r\n" +
	"SUMMARY:Team sync\\, weekly\r\n  (folded)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

func createSchedule(t *testing.T, f *idptest.Naver, token, calendarID, ics string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/calendar/createSchedule.json",
		strings.NewReader(url.Values{"calendarId": {calendarID}, "scheduleIcalString": {ics}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return call(t, req)
}

func TestNaverCalendar(t *testing.T) {
	denied := idptest.NaverUser{ID: "2", Email: "no-cal@naver.com", CalendarDenied: true}
	f := idptest.NewNaver(t, &idptest.NaverOptions{Users: []idptest.NaverUser{idptest.DefaultNaverUser(), denied}})
	user := idptest.DefaultNaverUser().ID
	at, _ := f.IssueTokens(user, "openid")

	resp, body := createSchedule(t, f, at, "defaultCalendarId", ical)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html;charset=UTF-8" {
		t.Errorf("got %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	want := map[string]any{"result": "success", "code": 200.0, "returnValue": map[string]any{
		"calendarId": "870711", "processType": "create", "icalUid": "evt-1@switchboard"}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	events := f.CalendarEvents(user)
	wantEvents := []idptest.CalendarEvent{{UserID: user, CalendarID: "defaultCalendarId", ICal: ical,
		UID: "evt-1@switchboard", Summary: `Team sync\, weekly (folded)`}}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	deniedToken, _ := f.IssueTokens(denied.ID, "openid")
	tests := []struct {
		name               string
		token, cal, ics    string
		wantStatus         int
		wantKey, wantValue string
	}{
		{"no permission", deniedToken, "defaultCalendarId", ical, 403, "code", "1403"},
		{"no such calendar", at, "404040", ical, 404, "code", "1404"},
		{"not iCalendar", at, "defaultCalendarId", "hello", 500, "code", "1500"},
		{"no token", "", "defaultCalendarId", ical, 401, "resultcode", "028"},
		{"bad token", "nope", "defaultCalendarId", ical, 401, "resultcode", "024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := createSchedule(t, f, tt.token, tt.cal, tt.ics)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := jsonText(body[tt.wantKey]); got != tt.wantValue {
				t.Errorf("%s = %v, want %s", tt.wantKey, body[tt.wantKey], tt.wantValue)
			}
		})
	}
	if n := len(f.CalendarEvents("")); n != 1 {
		t.Errorf("%d events recorded, want only the successful one", n)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func TestNaverSearch(t *testing.T) {
	f := idptest.NewNaver(t, &idptest.NaverOptions{SearchQuota: 6})
	search := func(kind string, q url.Values, id, secret string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, f.URL()+"/v1/search/"+kind+"?"+q.Encode(), nil)
		req.Header.Set("X-Naver-Client-Id", id)
		req.Header.Set("X-Naver-Client-Secret", secret)
		return call(t, req)
	}
	id, secret := f.ClientID(), f.ClientSecret()

	resp, body := search("webkr.json", url.Values{"query": {`주식 "AI"`}, "display": {"3"}, "start": {"2"}}, id, secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s: %v", resp.Status, body)
	}
	items := body["items"].([]any)
	first := items[0].(map[string]any)
	if len(items) != 3 || body["start"] != 2.0 || body["display"] != 3.0 {
		t.Errorf("paging: %d items, start %v, display %v", len(items), body["start"], body["display"])
	}
	if !strings.Contains(first["title"].(string), "<b>주식 &quot;AI&quot;</b>") ||
		!strings.Contains(first["description"].(string), "&quot;") {
		t.Errorf("item not marked up like NAVER: %v", first)
	}
	if _, ok := body["lastBuildDate"].(string); !ok {
		t.Error("no lastBuildDate")
	}

	f.SetSearchItems("news", []idptest.SearchItem{{Title: "<b>fixed</b>", Link: "https://n.example/1", Description: "d"}})
	_, body = search("news.json", url.Values{"query": {"x"}, "sort": {"date"}}, id, secret)
	if got := body["items"].([]any)[0].(map[string]any)["title"]; got != "<b>fixed</b>" || body["total"] != 1.0 {
		t.Errorf("fixed items: %v", body)
	}

	errs := []struct {
		name       string
		kind       string
		q          url.Values
		id, secret string
		wantStatus int
		wantCode   string
	}{
		{"no query", "webkr.json", url.Values{}, id, secret, 400, "SE01"},
		{"display", "webkr.json", url.Values{"query": {"a"}, "display": {"101"}}, id, secret, 400, "SE02"},
		{"start", "blog.json", url.Values{"query": {"a"}, "start": {"1001"}}, id, secret, 400, "SE03"},
		{"sort", "blog.json", url.Values{"query": {"a"}, "sort": {"new"}}, id, secret, 400, "SE04"},
		{"api", "cafe.xml", url.Values{"query": {"a"}}, id, secret, 404, "SE05"},
		{"credentials", "webkr.json", url.Values{"query": {"a"}}, id, "wrong", 401, "024"},
		{"quota", "webkr.json", url.Values{"query": {"a"}}, id, secret, 429, "012"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := search(tt.kind, tt.q, tt.id, tt.secret)
			if resp.StatusCode != tt.wantStatus || body["errorCode"] != tt.wantCode || body["errorMessage"] == "" {
				t.Errorf("got %d %v, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	f.SetFaults(idptest.Faults{SearchErrorCode: "SE99"})
	if resp, body := search("webkr.json", url.Values{"query": {"a"}}, id, secret); resp.StatusCode != 500 || body["errorCode"] != "SE99" {
		t.Errorf("SE99 fault: %d %v", resp.StatusCode, body)
	}
	if n := len(f.SearchRequests()); n != 10 {
		t.Errorf("%d search requests recorded, want 10", n)
	}
}

func TestNaverProfile(t *testing.T) {
	f := idptest.NewNaver(t, nil)
	at, _ := f.IssueTokens(idptest.DefaultNaverUser().ID, "openid")
	req, _ := http.NewRequest(http.MethodGet, f.URL()+"/v1/nid/me", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, body := call(t, req)
	if resp.StatusCode != 200 || body["resultcode"] != "00" || body["response"].(map[string]any)["id"] != "32742776" {
		t.Errorf("got %d %v", resp.StatusCode, body)
	}
	f.ExpireAccessTokens()
	if resp, body := call(t, req); resp.StatusCode != 401 || body["resultcode"] != "024" {
		t.Errorf("expired token: %d %v", resp.StatusCode, body)
	}
	req.Header.Del("Authorization")
	if resp, body := call(t, req); resp.StatusCode != 401 || body["resultcode"] != "028" {
		t.Errorf("no header: %d %v", resp.StatusCode, body)
	}
}

func TestNaverClassicTokenByGET(t *testing.T) {
	f := idptest.NewNaver(t, nil)
	_, rt := f.IssueTokens(idptest.DefaultNaverUser().ID, "")
	q := url.Values{"grant_type": {"refresh_token"}, "client_id": {f.ClientID()}, "client_secret": {f.ClientSecret()}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodGet, f.URL()+"/oauth2.0/token?"+q.Encode(), nil)
	resp, body := call(t, req)
	if resp.StatusCode != 200 || body["access_token"] == nil || body["expires_in"] != "3600" {
		t.Errorf("GET refresh: %d %v", resp.StatusCode, body)
	}
	// Classic errors come with status 200.
	q.Set("refresh_token", "nope")
	req, _ = http.NewRequest(http.MethodGet, f.URL()+"/oauth2.0/token?"+q.Encode(), nil)
	if resp, body := call(t, req); resp.StatusCode != 200 || body["error"] != "invalid_grant" {
		t.Errorf("bad refresh: %d %v", resp.StatusCode, body)
	}
}

func TestGoogleTokenInfo(t *testing.T) {
	f := idptest.NewGoogle(t, nil)
	at, _ := f.IssueTokens(idptest.DefaultGoogleUser().Sub, "openid email")
	req, _ := http.NewRequest(http.MethodGet, f.URL()+"/oauth2/v1/tokeninfo?access_token="+at, nil)
	resp, body := call(t, req)
	if resp.StatusCode != 200 || body["user_id"] != idptest.DefaultGoogleUser().Sub || body["audience"] != f.ClientID() || body["scope"] != "openid email" {
		t.Errorf("tokeninfo: %d %v", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, f.URL()+"/oauth2/v1/tokeninfo?access_token=nope", nil)
	if resp, body := call(t, req); resp.StatusCode != 400 || body["error"] != "invalid_token" {
		t.Errorf("bad token: %d %v", resp.StatusCode, body)
	}
}
