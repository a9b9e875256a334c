package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/switchboard-mcp/switchboard/internal/agent"
	"github.com/switchboard-mcp/switchboard/internal/llm/llmtest"
)

func searchTurns() []llmtest.Turn {
	return []llmtest.Turn{
		{ToolCalls: []llmtest.Call{call("web_search", `{"query":"예술의 전당"}`)}},
		{Text: []string{"서울 서초구에 ", "있습니다."}},
	}
}

func TestChatOneShot(t *testing.T) {
	f := newFixture(t, setup{}, searchTurns()...)
	var out bytes.Buffer
	if err := agent.Chat(t.Context(), strings.NewReader(""), &out, agent.ChatOptions{Host: f.host, Prompt: "예술의 전당이 어디있어?"}); err != nil {
		t.Fatal(err)
	}
	want := `[도구 호출] web_search — 웹 검색: "예술의 전당"
[도구 응답] "예술의 전당" 검색 결과 2건 (sac.or.kr, namu.wiki) (`
	got := out.String()
	if !strings.HasPrefix(got, want) {
		t.Errorf("output:\n%s\nwant prefix:\n%s", got, want)
	}
	for _, s := range []string{"서울 서초구에 있습니다.\n", "\n출처:\n[1] 예술의 전당 오시는 길 — https://www.sac.or.kr/site/main/content/location\n[2] 예술의전당 - 나무위키 — https://namu.wiki/w/예술의전당\n"} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
}

func TestChatOneShotJSONRemote(t *testing.T) {
	f := newFixture(t, setup{store: true}, searchTurns()...)
	srv := serveAPI(t, f)
	var out bytes.Buffer
	// X-Test-User is how serveAPI authenticates; a real remote takes the
	// bearer token.
	hc := srv.Client()
	hc.Transport = userTransport{base: hc.Transport, user: "alice"}
	err := agent.Chat(t.Context(), nil, &out, agent.ChatOptions{Remote: srv.URL, Token: "tok", HTTPClient: hc, Prompt: "q", JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var e agent.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		types = append(types, e.Type)
	}
	if len(types) < 4 || types[0] != agent.EventRunStarted || types[len(types)-1] != agent.EventRunFinished {
		t.Errorf("events %v", types)
	}
}

type userTransport struct {
	base http.RoundTripper
	user string
}

func (u userTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-User", u.user)
	return u.base.RoundTrip(r)
}

func TestChatOneShotError(t *testing.T) {
	f := newFixture(t, setup{}, llmtest.Turn{Status: 401, Error: "bad key"})
	var out bytes.Buffer
	err := agent.Chat(t.Context(), nil, &out, agent.ChatOptions{Host: f.host, Prompt: "q", Language: "en"})
	if !errors.Is(err, agent.ErrRunFailed) || !strings.Contains(out.String(), "[error] The model API refused the API key") {
		t.Errorf("err %v, output %q", err, out.String())
	}
}

// TestChatInteractivePTY drives the interactive chat through a
// pseudo-terminal: a question, Ctrl-C during a second one, then 종료.
func TestChatInteractivePTY(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	f := newFixture(t, setup{}, append(searchTurns(), llmtest.Turn{Text: []string{"긴 답변"}, Hold: hold})...)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	interrupt := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- agent.Chat(t.Context(), tty, tty, agent.ChatOptions{Host: f.host, Interrupt: interrupt})
		tty.Close()
	}()
	screen := &lockedBuffer{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		io.Copy(screen, ptmx)
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(screen.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("screen lacks %q:\n%s", s, screen.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("> ")
	io.WriteString(ptmx, "예술의 전당이 어디있어?\n")
	waitFor("[1] 예술의 전당 오시는 길")
	waitFor("[도구 응답]")
	io.WriteString(ptmx, "더 자세히\n")
	waitFor("긴 답변")
	interrupt <- struct{}{}
	waitFor("[오류] 실행이 취소되었습니다.")
	io.WriteString(ptmx, "종료\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chat did not exit on 종료")
	}
	ptmx.Close()
	<-readDone
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
