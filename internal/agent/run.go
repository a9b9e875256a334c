package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// maxResultBytes bounds the tool result text sent to the model.
const maxResultBytes = 64 << 10

// AuthRequiredError is returned by a ToolCaller when the user must
// authorize server at URL before the call can succeed. The run reports it
// as an auth.required event.
type AuthRequiredError struct {
	Server string
	URL    string
}

func (e *AuthRequiredError) Error() string {
	return fmt.Sprintf("%s: authorization required", e.Server)
}

// Run is one answer to one message: a model/tool loop whose events are
// kept for the run's clients.
type Run struct {
	ID             string
	User           string
	ConversationID string

	h      *Host
	p      *plan
	req    ChatRequest
	log    *eventLog
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	text   strings.Builder // every message.delta so far; run goroutine only

	mu       sync.Mutex // guards the fields below
	authSeen map[AuthEvent]bool
	attached int
	detach   *time.Timer
	expire   *time.Timer
}

// Start starts a run for user. The run goes on in the background until it
// finishes, is cancelled (Cancel, Host.Close), or no client has followed
// it for Options.DetachGrace.
func (h *Host) Start(ctx context.Context, user string, req ChatRequest) (*Run, error) {
	if strings.TrimSpace(req.Message) == "" {
		return nil, ErrEmptyMessage
	}
	p, err := h.plan(ctx, user, &req)
	if err != nil {
		return nil, err
	}
	r := &Run{ID: newID("run_"), User: user, h: h, p: p, req: req, log: newEventLog(), done: make(chan struct{})}
	history := req.History
	if cs := h.opts.Conversations; cs != nil {
		if req.ConversationID == "" {
			c := &Conversation{ID: newID("conv_"), Title: title(req.Message), Agent: p.agent.ID, Model: p.model, Created: h.now(), Updated: h.now()}
			if err := cs.Create(ctx, user, c); err != nil {
				return nil, fmt.Errorf("create conversation: %w", err)
			}
			req.ConversationID = c.ID
		} else {
			stored, err := cs.Recent(ctx, user, req.ConversationID, h.opts.History)
			if err != nil {
				return nil, err
			}
			history = toLLM(stored)
		}
		r.ConversationID = req.ConversationID
		if err := cs.Append(ctx, user, r.ConversationID, StoredMessage{ID: newID("msg_"), Role: llm.RoleUser, Text: req.Message, RunID: r.ID, Created: h.now()}); err != nil {
			return nil, fmt.Errorf("store message: %w", err)
		}
	}
	if len(history) > h.opts.History {
		history = history[len(history)-h.opts.History:]
	}
	r.req.History = history
	r.ctx, r.cancel = context.WithCancel(h.ctx)

	h.mu.Lock()
	h.runs[r.ID] = r
	h.mu.Unlock()
	r.mu.Lock()
	r.detach = time.AfterFunc(h.opts.DetachGrace, r.cancel)
	r.mu.Unlock()

	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(r.done)
		defer r.cancel()
		r.loop()
		r.mu.Lock()
		r.detach.Stop()
		r.expire = time.AfterFunc(h.opts.Retention, func() {
			h.mu.Lock()
			delete(h.runs, r.ID)
			h.mu.Unlock()
		})
		r.mu.Unlock()
	}()
	return r, nil
}

// Run returns user's run with id.
func (h *Host) Run(user, id string) (*Run, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.runs[id]
	if !ok || r.User != user {
		return nil, fmt.Errorf("run %q: %w", id, ErrNotFound)
	}
	return r, nil
}

// Cancel stops the run: its model stream and its tool calls.
func (r *Run) Cancel() { r.cancel() }

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

func (r *Run) attach() {
	r.mu.Lock()
	r.attached++
	if r.detach != nil {
		r.detach.Stop()
	}
	r.mu.Unlock()
}

func (r *Run) detachClient() {
	r.mu.Lock()
	r.attached--
	if r.attached == 0 && r.expire == nil {
		r.detach.Reset(r.h.opts.DetachGrace)
	}
	r.mu.Unlock()
}

func (r *Run) emit(e Event) Event {
	e.RunID = r.ID
	e.Time = r.h.now()
	return r.log.append(e)
}

func (r *Run) delta(s string) {
	if s == "" {
		return
	}
	r.text.WriteString(s)
	r.emit(Event{Type: EventMessageDelta, Delta: s})
}

// call is one tool call of a turn and its outcome.
type call struct {
	llm.ToolCall
	entry   *toolEntry
	args    map[string]any
	badArgs error
	res     *mcp.CallToolResult
	err     error
	content string // what the model is told
	isError bool
	summary string
	dur     time.Duration
}

func (r *Run) loop() {
	p := r.p
	r.emit(Event{Type: EventRunStarted, ConversationID: r.ConversationID, Agent: p.agent.ID, Model: p.model, Language: p.lang})
	msgs := append(append([]llm.Message(nil), r.req.History...), llm.Message{Role: llm.RoleUser, Text: r.req.Message})
	tools := make([]llm.Tool, len(p.tools))
	for i, t := range p.tools {
		desc := t.info.Description
		if desc == "" {
			desc = t.info.Title
		}
		tools[i] = llm.Tool{Name: t.name, Description: desc, Schema: t.info.Schema}
	}
	var (
		usage llm.Usage
		calls []*call
		stop  = "done"
		iter  int
	)
	for iter = 1; ; iter++ {
		turn, err := r.turn(&llm.Request{
			Model: p.modelID, System: p.system, Messages: msgs, Tools: tools,
			Temperature: p.agent.Temperature, MaxTokens: p.agent.MaxTokens,
		})
		usage.Input += turn.Usage.Input
		usage.Output += turn.Usage.Output
		if err != nil {
			r.fail(err, calls, usage)
			return
		}
		if len(turn.ToolCalls) == 0 {
			break
		}
		if iter >= p.maxIter {
			stop = "max_iterations"
			if r.text.Len() > 0 {
				r.delta("\n\n")
			}
			r.delta(msg(p.lang, msgMaxIterations, iter))
			break
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Text: turn.Text, ToolCalls: turn.ToolCalls})
		batch := r.runTools(turn.ToolCalls)
		calls = append(calls, batch...)
		if r.ctx.Err() != nil {
			r.fail(r.ctx.Err(), calls, usage)
			return
		}
		for _, c := range batch {
			msgs = append(msgs, llm.Message{Role: llm.RoleTool, ToolResult: &llm.ToolResult{CallID: c.ID, Content: c.content, IsError: c.isError}})
		}
	}
	res := &Result{Text: r.text.String(), References: references(calls), Usage: usage, Stop: stop, Iterations: iter}
	r.store(res, calls)
	r.emit(Event{Type: EventRunFinished, Result: res})
}

// turn streams one model answer, emitting its deltas.
func (r *Run) turn(req *llm.Request) (llm.Turn, error) {
	var t llm.Turn
	s, err := r.p.provider.Stream(r.ctx, req)
	if err != nil {
		return t, err
	}
	defer s.Close()
	first := true
	for s.Next() {
		e := s.Event()
		t.Add(e)
		switch e.Kind {
		case llm.TextDelta:
			if first && r.text.Len() > 0 && e.Text != "" {
				r.delta("\n\n")
			}
			if e.Text != "" {
				first = false
			}
			r.delta(e.Text)
		case llm.ReasoningDelta:
			r.emit(Event{Type: EventReasoningDelta, Delta: e.Text})
		}
	}
	if err := s.Err(); err != nil {
		return t, err
	}
	if r.ctx.Err() != nil {
		return t, r.ctx.Err()
	}
	return t, nil
}

// runTools runs a turn's calls concurrently and returns them in call order.
func (r *Run) runTools(tcs []llm.ToolCall) []*call {
	calls := make([]*call, len(tcs))
	for i, tc := range tcs {
		c := &call{ToolCall: tc}
		calls[i] = c
		for j := range r.p.tools {
			if r.p.tools[j].name == tc.Name {
				c.entry = &r.p.tools[j]
			}
		}
		if err := json.Unmarshal(tc.Arguments, &c.args); err != nil || c.args == nil {
			c.badArgs = fmt.Errorf("arguments are not a JSON object: %s", truncate(string(tc.Arguments), 200))
			c.args = map[string]any{}
		}
		if c.entry != nil && c.entry.empty {
			llm.StripPlaceholder(c.args)
		}
		server, tool := "", tc.Name
		if c.entry != nil {
			server, tool = c.entry.info.Server, c.entry.info.Name
		}
		r.emit(Event{Type: EventToolStarted, Tool: &ToolEvent{CallID: tc.ID, Server: server, Tool: tool, Arguments: tc.Arguments,
			Summary: startSummary(r.p.lang, server, tool, c.args)}})
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runTool(c)
		}()
	}
	wg.Wait()
	return calls
}

func (r *Run) runTool(c *call) {
	start := r.h.now()
	lang := r.p.lang
	server, tool := "", c.Name
	switch {
	case c.entry == nil:
		c.err = fmt.Errorf("unknown tool %q", c.Name)
	case c.badArgs != nil:
		c.err = c.badArgs
	default:
		server, tool = c.entry.info.Server, c.entry.info.Name
		ctx, cancel := context.WithTimeout(r.ctx, r.h.opts.ToolTimeout)
		caller := hub.Caller{User: r.User, Downstream: &downstream{r: r, server: server}, Lang: lang}
		args, _ := json.Marshal(c.args)
		c.res, c.err = r.h.opts.Tools.Call(ctx, caller, server, tool, args)
		if c.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.ctx.Err() == nil {
			c.err = fmt.Errorf("%w after %s", errToolTimeout, r.h.opts.ToolTimeout)
		}
		cancel()
	}
	c.dur = r.h.now().Sub(start)
	if c.err != nil {
		r.authRequired(server, c.err)
		c.isError = true
		c.content = "Error: " + c.err.Error()
	} else {
		c.isError = c.res.IsError
		c.content = resultText(c.res)
	}
	c.summary = finishSummary(lang, tool, c.args, c.res, c.err)
	r.emit(Event{Type: EventToolFinished, Tool: &ToolEvent{CallID: c.ID, Server: server, Tool: tool, Summary: c.summary,
		IsError: c.isError, DurationMS: c.dur.Milliseconds()}})
}

var errToolTimeout = errors.New("tool call timed out")

// askAuth emits auth.required once per server and URL.
func (r *Run) askAuth(a AuthEvent) {
	r.mu.Lock()
	if r.authSeen == nil {
		r.authSeen = make(map[AuthEvent]bool)
	}
	seen := r.authSeen[a]
	r.authSeen[a] = true
	r.mu.Unlock()
	if !seen {
		r.emit(Event{Type: EventAuthRequired, Auth: &a})
	}
}

// authRequired emits auth.required when err says the user must authorize
// server first.
func (r *Run) authRequired(server string, err error) {
	var ae *AuthRequiredError
	if errors.As(err, &ae) {
		r.askAuth(AuthEvent{Server: firstNonEmpty(ae.Server, server), URL: ae.URL})
		return
	}
	var he *hub.AuthorizationError
	if errors.As(err, &he) {
		r.askAuth(AuthEvent{Server: firstNonEmpty(he.Server, server), URL: he.URL})
		return
	}
	var we *jsonrpc.Error
	if errors.As(err, &we) && we.Code == mcp.CodeURLElicitationRequired {
		var data struct {
			Elicitations []mcp.ElicitParams `json:"elicitations"`
		}
		json.Unmarshal(we.Data, &data)
		for _, e := range data.Elicitations {
			r.askAuth(AuthEvent{Server: server, URL: e.URL})
		}
		if len(data.Elicitations) == 0 {
			r.askAuth(AuthEvent{Server: server})
		}
	}
}

// fail ends the run with an error event in the run's language and stores
// what was answered so far.
func (r *Run) fail(err error, calls []*call, usage llm.Usage) {
	stop := "error"
	if errors.Is(err, context.Canceled) {
		stop = "cancelled"
	} else {
		r.h.log.Warn("run failed", slog.String("run", r.ID), slog.String("error", err.Error()))
	}
	r.store(&Result{Text: r.text.String(), References: references(calls), Usage: usage, Stop: stop}, calls)
	r.emit(Event{Type: EventError, Message: userError(r.p.lang, err)})
}

func (r *Run) store(res *Result, calls []*call) {
	cs := r.h.opts.Conversations
	if cs == nil || r.ConversationID == "" {
		return
	}
	// A cancelled run still keeps what the user saw.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 10*time.Second)
	defer cancel()
	m := StoredMessage{ID: newID("msg_"), Role: llm.RoleAssistant, Text: res.Text, RunID: r.ID, References: res.References, Usage: res.Usage, Created: r.h.now()}
	for _, c := range calls {
		server, tool := "", c.Name
		if c.entry != nil {
			server, tool = c.entry.info.Server, c.entry.info.Name
		}
		m.ToolCalls = append(m.ToolCalls, ToolCallRecord{ID: c.ID, Server: server, Tool: tool, Arguments: c.Arguments, Summary: c.summary, IsError: c.isError, DurationMS: c.dur.Milliseconds()})
	}
	if err := cs.Append(ctx, r.User, r.ConversationID, m); err != nil {
		r.h.log.Error("store answer", slog.String("run", r.ID), slog.String("error", err.Error()))
	}
}

// resultText renders a tool result for the model.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		switch v := c.(type) {
		case *mcp.TextContent:
			parts = append(parts, v.Text)
		case *mcp.ResourceLink:
			parts = append(parts, strings.TrimSpace(firstNonEmpty(v.Title, v.Name)+" "+v.URI))
		case *mcp.EmbeddedResource:
			if v.Resource != nil {
				parts = append(parts, firstNonEmpty(v.Resource.Text, "["+v.Resource.MIMEType+" "+v.Resource.URI+"]"))
			}
		case *mcp.ImageContent:
			parts = append(parts, "[image "+v.MIMEType+"]")
		case *mcp.AudioContent:
			parts = append(parts, "[audio "+v.MIMEType+"]")
		}
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		parts = append(parts, string(b))
	}
	return truncate(strings.Join(parts, "\n"), maxResultBytes)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func title(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:40]) + "…"
}

// toLLM turns stored messages into model history: the text of user and
// assistant messages. Earlier tool calls are not replayed; their outcome is
// in the answers.
func toLLM(ms []StoredMessage) []llm.Message {
	var out []llm.Message
	for _, m := range ms {
		if m.Text == "" || (m.Role != llm.RoleUser && m.Role != llm.RoleAssistant) {
			continue
		}
		out = append(out, llm.Message{Role: m.Role, Text: m.Text})
	}
	return out
}

// downstream answers server-to-client requests made during a run's tool
// calls. Only URL-mode elicitation (an authorization link) reaches the user,
// as auth.required; the run cannot wait for forms yet.
type downstream struct {
	r      *Run
	server string
}

var _ hub.Downstream = (*downstream)(nil)

func (d *downstream) ElicitationComplete(context.Context, *mcp.ElicitationCompleteParams) error {
	return nil
}

func (d *downstream) CreateMessage(ctx context.Context, p *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error) {
	return nil, errors.New("sampling is not available in agent runs")
}

func (d *downstream) Elicit(ctx context.Context, p *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	if p.Mode == "url" && p.URL != "" {
		d.r.askAuth(AuthEvent{Server: d.server, URL: p.URL})
		// Shown to the user; the caller waits for the outcome.
		return &mcp.ElicitResult{Action: "accept"}, nil
	}
	return &mcp.ElicitResult{Action: "cancel"}, nil
}

func (d *downstream) ListRoots(ctx context.Context, p *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
}

func (d *downstream) Log(ctx context.Context, p *mcp.LoggingMessageParams) error { return nil }

func (d *downstream) Progress(ctx context.Context, p *mcp.ProgressNotificationParams) error {
	return nil
}
