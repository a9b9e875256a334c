package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// ChatOptions configure the terminal chat. Either Host or Remote is set.
type ChatOptions struct {
	// Host runs the chat in this process.
	Host *Host
	// User is the local user. Empty: "local".
	User string
	// Remote is the base URL of a Switchboard whose /api/chat is used when
	// Host is nil; Token is sent as a bearer token.
	Remote     string
	Token      string
	HTTPClient *http.Client // nil: http.DefaultClient

	Agent   string   // --agent
	Model   string   // --model provider/model
	Servers []string // --server, repeated
	// Language of the chat's labels and of the runs. Empty: Korean.
	Language string

	// Prompt asks one question and returns (-p). Empty: interactive.
	Prompt string
	// JSON prints every event as a JSON line instead of text (--json).
	JSON bool
	// Interrupt cancels the current run on each receive (Ctrl-C). Nil: none.
	Interrupt <-chan struct{}
}

// ErrRunFailed is returned by a one-shot Chat whose run ended in an error.
var ErrRunFailed = errors.New("the run failed")

// Chat is `switchboard chat`: it reads questions from in, one per line,
// streams the answers to out with tool calls, their summaries and numbered
// sources, and returns on "exit", "종료" or the end of in. With Prompt set
// it answers that one question.
func Chat(ctx context.Context, in io.Reader, out io.Writer, opts ChatOptions) error {
	c := &chat{opts: opts, out: out, lang: opts.Language}
	if c.lang != English {
		c.lang = Korean
	}
	if opts.User == "" {
		c.opts.User = "local"
	}
	if opts.Host == nil && opts.Remote == "" {
		return errors.New("chat: neither a local host nor a remote URL")
	}
	if opts.Prompt != "" {
		failed, err := c.ask(ctx, opts.Prompt)
		if err != nil {
			return err
		}
		if failed {
			return ErrRunFailed
		}
		return nil
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		fmt.Fprint(out, "> ")
		if !sc.Scan() {
			fmt.Fprintln(out)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "exit", "quit", "종료":
			return nil
		}
		if _, err := c.ask(ctx, line); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(out, "%s %v\n", c.label(labelError), err)
		}
	}
}

type chat struct {
	opts    ChatOptions
	out     io.Writer
	lang    string
	convID  string
	history []llm.Message
	midLine bool // the cursor is not at the start of a line
}

// ask runs one question; failed reports an error event.
func (c *chat) ask(ctx context.Context, question string) (failed bool, err error) {
	req := ChatRequest{ConversationID: c.convID, Message: question, Agent: c.opts.Agent, Model: c.opts.Model,
		Servers: c.opts.Servers, Language: c.opts.Language, History: c.history}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if c.opts.Interrupt != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-c.opts.Interrupt:
				cancel()
			case <-stop:
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	var answer string
	err = c.run(runCtx, req, func(e Event) error {
		switch e.Type {
		case EventRunStarted:
			if e.ConversationID != "" {
				c.convID = e.ConversationID
			}
		case EventRunFinished:
			answer = e.Result.Text
		case EventError:
			failed = true
		}
		c.print(e)
		return nil
	})
	if err != nil {
		return failed, err
	}
	if !failed && c.convID == "" {
		c.history = append(c.history, llm.Message{Role: llm.RoleUser, Text: question}, llm.Message{Role: llm.RoleAssistant, Text: answer})
	}
	return failed, nil
}

// run starts a run and passes its events to fn until it ends.
func (c *chat) run(ctx context.Context, req ChatRequest, fn func(Event) error) error {
	if h := c.opts.Host; h != nil {
		run, err := h.Start(ctx, c.opts.User, req)
		if err != nil {
			return err
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				run.Cancel()
			case <-stop:
			}
		}()
		defer func() {
			close(stop)
			wg.Wait()
		}()
		// Follow to the end even after a cancel, to print its error event.
		return run.Follow(context.WithoutCancel(ctx), 0, fn)
	}
	return c.remote(ctx, req, fn)
}

// remote runs the chat against another Switchboard's /api/chat.
func (c *chat) remote(ctx context.Context, req ChatRequest, fn func(Event) error) error {
	hc := c.opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimSuffix(c.opts.Remote, "/")
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/chat", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "text/event-stream")
	if c.opts.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	var runID string
	err = readSSE(resp.Body, func(data []byte) error {
		var e Event
		if err := json.Unmarshal(data, &e); err != nil {
			return err
		}
		runID = e.RunID
		return fn(e)
	})
	if ctx.Err() != nil && runID != "" {
		// Stop the run on the server too, not only our stream of it.
		cr, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, base+"/api/chat/"+runID+"/cancel", nil)
		if c.opts.Token != "" {
			cr.Header.Set("Authorization", "Bearer "+c.opts.Token)
		}
		if resp, err := hc.Do(cr); err == nil {
			resp.Body.Close()
		}
		fn(Event{Type: EventError, RunID: runID, Message: msg(c.lang, msgCancelled)})
		return nil
	}
	return err
}

// readSSE calls fn with the data of each event of an event stream.
func readSSE(r io.Reader, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if len(data) > 0 {
				if err := fn(data); err != nil {
					return err
				}
				data = data[:0]
			}
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
		}
	}
	return sc.Err()
}

const (
	labelCall = iota
	labelResult
	labelToolError
	labelAuth
	labelSources
	labelError
)

var labels = map[int][2]string{
	labelCall:      {"[도구 호출]", "[tool call]"},
	labelResult:    {"[도구 응답]", "[tool result]"},
	labelToolError: {"[도구 오류]", "[tool error]"},
	labelAuth:      {"[인증 필요]", "[authorization required]"},
	labelSources:   {"출처:", "Sources:"},
	labelError:     {"[오류]", "[error]"},
}

func (c *chat) label(id int) string {
	if c.lang == English {
		return labels[id][1]
	}
	return labels[id][0]
}

func (c *chat) newline() {
	if c.midLine {
		fmt.Fprintln(c.out)
		c.midLine = false
	}
}

func (c *chat) print(e Event) {
	if c.opts.JSON {
		json.NewEncoder(c.out).Encode(e)
		return
	}
	switch e.Type {
	case EventMessageDelta:
		fmt.Fprint(c.out, e.Delta)
		c.midLine = !strings.HasSuffix(e.Delta, "\n")
	case EventToolStarted:
		c.newline()
		fmt.Fprintf(c.out, "%s %s — %s\n", c.label(labelCall), e.Tool.Tool, e.Tool.Summary)
	case EventToolFinished:
		c.newline()
		l := c.label(labelResult)
		if e.Tool.IsError {
			l = c.label(labelToolError)
		}
		fmt.Fprintf(c.out, "%s %s (%dms)\n", l, e.Tool.Summary, e.Tool.DurationMS)
	case EventAuthRequired:
		c.newline()
		fmt.Fprintf(c.out, "%s %s %s\n", c.label(labelAuth), e.Auth.Server, e.Auth.URL)
	case EventRunFinished:
		c.newline()
		if refs := e.Result.References; len(refs) > 0 {
			fmt.Fprintf(c.out, "\n%s\n", c.label(labelSources))
			for _, r := range refs {
				if r.URL != "" {
					fmt.Fprintf(c.out, "[%d] %s — %s\n", r.Index, r.Title, r.URL)
				} else {
					fmt.Fprintf(c.out, "[%d] %s\n", r.Index, r.Title)
				}
			}
		}
	case EventError:
		c.newline()
		fmt.Fprintf(c.out, "%s %s\n", c.label(labelError), e.Message)
	}
}
