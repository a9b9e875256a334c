package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/gateway"
	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// legacyProtocol is the revision the downstream test clients speak. The
// SDK client would otherwise open a stateless 2026-07-28 connection; sessions
// whose server-to-client traffic must find its way back are a pre-2026 notion.
const legacyProtocol = "2025-11-25"

// waitFor bounds every wait in these tests.
const waitFor = 20 * time.Second

// testEnv is a gateway over two real upstream servers: "alpha", the test
// binary re-executed as a stdio child, and "beta", an in-process streamable
// HTTP server.
type testEnv struct {
	url  string // of the gateway
	hub  *hub.Hub
	beta *noteLog // what the beta upstream notes
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{beta: &noteLog{}}
	beta := newUpstream("beta", e.beta.add)
	betaHTTP := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return beta }, nil))
	t.Cleanup(betaHTTP.Close)

	cfg := &config.Config{Servers: []*config.Server{
		{Name: "alpha", Type: config.Stdio, Command: os.Args[0], Env: map[string]string{upstreamEnv: "1"}, Startup: true, ChatMenu: true},
		{Name: "beta", Type: config.StreamableHTTP, URL: betaHTTP.URL, Startup: true, ChatMenu: true},
	}}
	// Wired as cmd/switchboard's newApp does; gw is set before the hub
	// starts, so the callbacks never see it nil.
	var gw *gateway.Gateway
	h := hub.New(cfg, &hub.Options{})
	gw = gateway.New(h, nil)
	t.Cleanup(func() {
		h.Close()
		gw.Close()
	})
	h.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	for _, st := range h.Statuses() {
		if st.State != hub.StateConnected {
			t.Fatalf("server %s is %s: %s (stderr %q)", st.Name, st.State, st.LastError, st.StderrTail)
		}
	}
	gw.Sync()
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.hub = h
	return e
}

// noted reports whether server's upstream has noted line. alpha writes its
// notes to stderr, which the hub keeps.
func (e *testEnv) noted(t *testing.T, server, line string) bool {
	if server == "beta" {
		return e.beta.has(line)
	}
	c, err := e.hub.Conn(server)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(c.Status().StderrTail, line)
}

func (e *testEnv) waitNoted(t *testing.T, server, line string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !e.noted(t, server, line) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never noted %q", server, line)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type noteLog struct {
	mu    sync.Mutex // guards lines
	lines []string
}

func (l *noteLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *noteLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.lines, s)
}

// event is a server-to-client message as one downstream client saw it.
type event struct {
	Method string
	Text   string // what identifies the message: its text, log data or URI
	Token  any    `json:",omitempty"` // progress token
}

// party is one downstream client of the aggregate endpoint, with an identity
// ("A", "B") that its answers carry.
type party struct {
	name string
	cs   *mcp.ClientSession

	changed chan struct{} // signalled after each new event

	mu     sync.Mutex // guards the fields below
	events []event
	hold   chan struct{} // non-nil: server-to-client requests wait until it is closed
	callID any           // JSON-RPC id of the last tools/call sent
}

func connectParty(t *testing.T, url, name string) *party {
	t.Helper()
	p := &party{name: name, changed: make(chan struct{}, 1)}
	client := mcp.NewClient(&mcp.Implementation{Name: "party-" + name, Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{
				Content: &mcp.TextContent{Text: name + " answers: " + samplingText(req.Params)},
				Model:   "model-" + name, Role: "assistant",
			}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": name + " answers: " + req.Params.Message}}, nil
		},
		// The middleware below records every message; the handlers are set
		// as a real client's would be.
		LoggingMessageHandler:       func(context.Context, *mcp.LoggingMessageRequest) {},
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {},
		ResourceUpdatedHandler:      func(context.Context, *mcp.ResourceUpdatedNotificationRequest) {},
	})
	client.AddRoots(&mcp.Root{URI: "file:///party-" + name, Name: name})
	client.AddReceivingMiddleware(p.record)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: &callIDRecorder{p: p}},
	}, &mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { cs.Close() })
	p.cs = cs
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatalf("%s: set logging level: %v", name, err)
	}
	return p
}

func samplingText(p *mcp.CreateMessageParams) string {
	if p == nil || len(p.Messages) == 0 {
		return ""
	}
	if tc, ok := p.Messages[0].Content.(*mcp.TextContent); ok {
		return tc.Text
	}
	return ""
}

// record notes each server-to-client message and, while a hold is set,
// keeps server-to-client requests waiting, which keeps the tool call that
// caused them in flight.
func (p *party) record(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		ev := event{Method: method}
		isRequest := true
		switch params := req.GetParams().(type) {
		case *mcp.CreateMessageParams:
			ev.Text = samplingText(params)
		case *mcp.CreateMessageWithToolsParams:
			// The SDK client decodes sampling requests in this form.
			if len(params.Messages) > 0 && len(params.Messages[0].Content) > 0 {
				if tc, ok := params.Messages[0].Content[0].(*mcp.TextContent); ok {
					ev.Text = tc.Text
				}
			}
		case *mcp.ElicitParams:
			ev.Text = params.Message
		case *mcp.ListRootsParams:
		case *mcp.LoggingMessageParams:
			ev.Text = fmt.Sprint(params.Data)
			isRequest = false
		case *mcp.ProgressNotificationParams:
			ev.Text, ev.Token = params.Message, params.ProgressToken
			isRequest = false
		case *mcp.ResourceUpdatedNotificationParams:
			ev.Text = params.URI
			isRequest = false
		default:
			if method != "roots/list" {
				return next(ctx, method, req)
			}
		}
		p.mu.Lock()
		p.events = append(p.events, ev)
		hold := p.hold
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
		if isRequest && hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(waitFor):
				return nil, errors.New("held too long")
			}
		}
		return next(ctx, method, req)
	}
}

func (p *party) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

func (p *party) setHold(c chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = c
}

func (p *party) lastCallID() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.callID
}

// waitEvents waits until at least n events arrived after mark from, and
// returns all events after from.
func (p *party) waitEvents(t *testing.T, from, n int) []event {
	t.Helper()
	if !p.waitEventsFor(from, n, waitFor) {
		p.mu.Lock()
		got := slices.Clone(p.events[from:])
		p.mu.Unlock()
		t.Fatalf("%s: got %d events, want %d: %+v", p.name, len(got), n, got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events[from:])
}

// waitEventsFor reports whether at least n events arrived after mark from
// within d.
func (p *party) waitEventsFor(from, n int, d time.Duration) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		got := len(p.events) - from
		p.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-p.changed:
		case <-timeout.C:
			return false
		}
	}
}

// call calls a tool of the aggregate view and returns its text.
func (p *party) call(ctx context.Context, tool string, args upstreamArgs, token any) (string, error) {
	params := &mcp.CallToolParams{Name: tool, Arguments: args}
	if token != nil {
		params.SetProgressToken(token)
	}
	res, err := p.cs.CallTool(ctx, params)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", b.String())
	}
	return b.String(), nil
}

// callIDRecorder notes the JSON-RPC id of each tools/call a party sends, so
// that a test can show that two sessions' concurrent calls share an id. It
// works on the HTTP requests because wrapping the SDK connection would hide
// its session hooks.
type callIDRecorder struct{ p *party }

func (r *callIDRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		var msg struct {
			Method string `json:"method"`
			ID     any    `json:"id"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
			r.p.mu.Lock()
			r.p.callID = msg.ID
			r.p.mu.Unlock()
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// feature is one kind of server-to-client traffic and the tool that causes it.
type feature struct {
	tool string
	// want returns what a call by party on server returns and the events
	// the party sees because of it.
	want func(party, server string, token any) (string, []event)
}

var features = []feature{
	{"sample", func(p, s string, _ any) (string, []event) {
		q := "gwtest-" + s + " asks " + p
		return p + " answers: " + q, []event{{Method: "sampling/createMessage", Text: q}}
	}},
	{"ask", func(p, s string, _ any) (string, []event) {
		q := "gwtest-" + s + " asks " + p
		return "accept: " + p + " answers: " + q, []event{{Method: "elicitation/create", Text: q}}
	}},
	{"roots", func(p, s string, _ any) (string, []event) {
		return "file:///party-" + p, []event{{Method: "roots/list"}}
	}},
	{"log", func(p, s string, _ any) (string, []event) {
		var evs []event
		for _, level := range []string{"info", "debug"} {
			evs = append(evs, event{Method: "notifications/message", Text: fmt.Sprintf("gwtest-%s %s log for %s", s, level, p)})
		}
		return "logged", evs
	}},
	{"progress", func(p, s string, tok any) (string, []event) {
		if n, ok := tok.(int); ok {
			tok = float64(n) // as JSON numbers decode
		}
		var evs []event
		for i := 1; i <= 3; i++ {
			evs = append(evs, event{Method: "notifications/progress", Text: fmt.Sprintf("gwtest-%s progress %d for %s", s, i, p), Token: tok})
		}
		return "done", evs
	}},
}

func featureNamed(tool string) feature {
	for _, f := range features {
		if f.tool == tool {
			return f
		}
	}
	panic("no feature " + tool)
}

// leg is one party's call in a round.
type leg struct {
	p      *party
	server string
	token  any // progress token; nil for none
}

// runConcurrently makes the legs' calls of f at the same time and checks
// that each party got its own answer and saw exactly the messages its own
// call caused.
//
// Concurrency asserted: every leg's tools/call is in flight at the gateway,
// the hub and its upstream at once. Each call is held at its first
// server-to-client message (a request waits in the client for hold, a
// notification tool waits upstream for the gate file) until every party has
// received that first message; only then are they let go. The parties'
// calls also carry the same JSON-RPC id, which the test checks.
func runConcurrently(t *testing.T, f feature, legs ...leg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	gate := filepath.Join(t.TempDir(), "gate")
	hold := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	defer release()

	type outcome struct {
		text string
		err  error
	}
	outs := make([]outcome, len(legs))
	marks := make([]int, len(legs))
	var wg sync.WaitGroup
	for i, l := range legs {
		l.p.setHold(hold)
		marks[i] = l.p.mark()
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, err := l.p.call(ctx, l.server+"__"+f.tool, upstreamArgs{Tag: l.p.name, Gate: gate}, l.token)
			outs[i] = outcome{text, err}
		}()
	}
	for i, l := range legs {
		l.p.waitEvents(t, marks[i], 1)
	}
	// Every call is now in flight; their ids collide.
	if a, b := legs[0].p.lastCallID(), legs[1].p.lastCallID(); !cmp.Equal(a, b) {
		t.Errorf("tools/call ids differ (%v, %v): the sessions are out of step and the test does not show colliding ids", a, b)
	}
	release()
	wg.Wait()
	for i, l := range legs {
		l.p.setHold(nil)
		wantText, wantEvents := f.want(l.p.name, l.server, l.token)
		if outs[i].err != nil {
			t.Errorf("%s calls %s__%s: %v", l.p.name, l.server, f.tool, outs[i].err)
		} else if outs[i].text != wantText {
			t.Errorf("%s calls %s__%s = %q, want %q", l.p.name, l.server, f.tool, outs[i].text, wantText)
		}
		got := l.p.waitEvents(t, marks[i], len(wantEvents))
		if diff := cmp.Diff(wantEvents, got, cmpopts.SortSlices(func(a, b event) bool { return a.Text < b.Text })); diff != "" {
			t.Errorf("%s calling %s__%s saw (-want +got):\n%s", l.p.name, l.server, f.tool, diff)
		}
	}
}

// TestRouting drives the aggregate endpoint with two downstream sessions at
// once against a stdio and an HTTP upstream, and checks that sampling,
// elicitation, roots, logging, progress, subscriptions and cancellation each
// reach the session that caused them.
func TestRouting(t *testing.T) {
	e := newTestEnv(t)
	a := connectParty(t, e.url+"/mcp", "A")
	b := connectParty(t, e.url+"/mcp", "B")

	t.Run("tools", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		var want []string
		for _, s := range []string{"alpha", "beta"} {
			for _, tool := range []string{"ask", "log", "progress", "roots", "sample", "slow", "touch"} {
				want = append(want, s+"__"+tool)
			}
		}
		// Both sessions list tools so that their request ids stay in step.
		for _, p := range []*party{a, b} {
			var got []string
			for tool, err := range p.cs.Tools(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, tool.Name)
			}
			if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(x, y string) bool { return x < y })); diff != "" {
				t.Errorf("%s: tools (-want +got):\n%s", p.name, diff)
			}
		}
	})

	// Each party calls a different upstream at the same time, then they
	// swap. The upstream connection then has one call in flight, which is
	// all the hub can attribute a sampling, elicitation, roots or log
	// message to: stdio and pre-2026 HTTP servers send them without naming
	// the request they belong to (see hub.inflight).
	for _, f := range features {
		for _, pair := range [][2]string{{"alpha", "beta"}, {"beta", "alpha"}} {
			t.Run(fmt.Sprintf("%s/A-%s,B-%s", f.tool, pair[0], pair[1]), func(t *testing.T) {
				var ta, tb any
				if f.tool == "progress" {
					ta, tb = "A-"+pair[0], "B-"+pair[1]
				}
				runConcurrently(t, f, leg{a, pair[0], ta}, leg{b, pair[1], tb})
			})
		}
	}

	// Progress carries a token, so both parties' calls may share one
	// upstream connection, and may even use the same token.
	for _, s := range []string{"alpha", "beta"} {
		t.Run("progress/same-upstream/"+s, func(t *testing.T) {
			runConcurrently(t, featureNamed("progress"), leg{a, s, 7}, leg{b, s, 7})
		})
	}

	for _, s := range []string{"alpha", "beta"} {
		t.Run("cancel/"+s, func(t *testing.T) {
			testCancel(t, e, a, b, s)
		})
	}

	t.Run("subscribe", func(t *testing.T) {
		testSubscribe(t, a, b)
	})
}

// testCancel: A cancels a slow call on server; the upstream sees the
// cancellation, and B's sampling call on the same upstream, in flight at the
// time, completes with B's answer.
func testCancel(t *testing.T, e *testEnv, a, b *party, server string) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	tag := "A-" + server
	slowCtx, cancelSlow := context.WithCancel(ctx)
	defer cancelSlow()
	slowErr := make(chan error, 1)
	go func() {
		_, err := a.call(slowCtx, server+"__slow", upstreamArgs{Tag: tag}, nil)
		slowErr <- err
	}()
	e.waitNoted(t, server, "slow started "+tag)

	// B's call starts after A's, so the hub attributes its sampling
	// request to B even with A's call in flight on the same connection.
	hold := make(chan struct{})
	defer func() {
		select {
		case <-hold:
		default:
			close(hold)
		}
	}()
	b.setHold(hold)
	defer b.setHold(nil)
	markA, markB := a.mark(), b.mark()
	sampleOut := make(chan string, 1)
	sampleErr := make(chan error, 1)
	go func() {
		text, err := b.call(ctx, server+"__sample", upstreamArgs{Tag: "B"}, nil)
		sampleOut <- text
		sampleErr <- err
	}()
	b.waitEvents(t, markB, 1)

	cancelSlow()
	e.waitNoted(t, server, "slow cancelled "+tag)
	if err := <-slowErr; !errors.Is(err, context.Canceled) {
		t.Errorf("A's cancelled call returned %v, want context.Canceled", err)
	}
	if e.noted(t, server, "slow cancelled B") {
		t.Errorf("%s: B's call was cancelled too", server)
	}

	close(hold)
	want, wantEvents := featureNamed("sample").want("B", server, nil)
	if got, err := <-sampleOut, <-sampleErr; err != nil || got != want {
		t.Errorf("B's concurrent sample = %q, %v; want %q", got, err, want)
	}
	if diff := cmp.Diff(wantEvents, b.waitEvents(t, markB, len(wantEvents))); diff != "" {
		t.Errorf("B saw (-want +got):\n%s", diff)
	}
	if got := a.waitEvents(t, markA, 0); len(got) != 0 {
		t.Errorf("A saw %+v, want nothing", got)
	}
}

// testSubscribe: A subscribes to alpha's test://watched, B to beta's, which
// the aggregate view shows as switchboard://beta/test://watched because alpha
// took the plain URI. Each touch must reach only its subscriber. Touches
// alternate and each waits for its notification, so a misdirected one would
// show up before the next expected one on the same stream.
func testSubscribe(t *testing.T, a, b *party) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	betaURI := "switchboard://beta/" + watchedURI
	subs := []struct {
		p   *party
		uri string
	}{{a, watchedURI}, {b, betaURI}}
	for _, s := range subs {
		if err := s.p.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: s.uri}); err != nil {
			t.Fatalf("%s subscribes %s: %v", s.p.name, s.uri, err)
		}
	}
	markA, markB := a.mark(), b.mark()
	steps := []struct {
		server string
		p      *party
		mark   int
		n      int // events p has after this step
	}{
		{"alpha", a, markA, 1},
		{"beta", b, markB, 1},
		{"alpha", a, markA, 2},
		{"beta", b, markB, 2},
	}
	for _, st := range steps {
		if _, err := a.call(ctx, st.server+"__touch", upstreamArgs{Tag: "A"}, nil); err != nil {
			t.Fatalf("touch %s: %v", st.server, err)
		}
		if !st.p.waitEventsFor(st.mark, st.n, waitFor) {
			t.Fatalf("%s, subscribed to %s's resource, got no resources/updated after %s__touch", st.p.name, st.server, st.server)
		}
	}
	upd := func(uri string) event { return event{Method: "notifications/resources/updated", Text: uri} }
	if diff := cmp.Diff([]event{upd(watchedURI), upd(watchedURI)}, a.waitEvents(t, markA, 2)); diff != "" {
		t.Errorf("A (subscribed to alpha's resource) saw (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]event{upd(betaURI), upd(betaURI)}, b.waitEvents(t, markB, 2)); diff != "" {
		t.Errorf("B (subscribed to beta's resource) saw (-want +got):\n%s", diff)
	}
	for _, s := range subs {
		if err := s.p.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: s.uri}); err != nil {
			t.Errorf("%s unsubscribes %s: %v", s.p.name, s.uri, err)
		}
	}
}

// TestTransparent checks that /mcp/beta shows beta as it is: its tool names
// and its identity.
func TestTransparent(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "transparent", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.url + "/mcp/beta"},
		&mcp.ClientSessionOptions{ProtocolVersion: legacyProtocol})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"ask", "log", "progress", "roots", "sample", "slow", "touch"}, names); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	want := &mcp.Implementation{Name: "gwtest-beta", Version: "1.2.3"}
	if diff := cmp.Diff(want, cs.InitializeResult().ServerInfo); diff != "" {
		t.Errorf("serverInfo (-want +got):\n%s", diff)
	}
}

// TestOrigin checks that browser requests from foreign origins are refused
// and loopback origins are served.
func TestOrigin(t *testing.T) {
	e := newTestEnv(t)
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"browser","version":"1"}}}`
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", http.StatusForbidden},
		{"http://localhost:3000", http.StatusOK},
		{"", http.StatusOK},
	} {
		name := tt.origin
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.url+"/mcp", strings.NewReader(initialize))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
			// End the session the request opened.
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				del, _ := http.NewRequest(http.MethodDelete, e.url+"/mcp", nil)
				del.Header.Set("Mcp-Session-Id", id)
				if resp, err := http.DefaultClient.Do(del); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
}

// TestLogLevelPerSession checks that one session's logging/setLevel does not
// silence another's: A asks for debug, then B for errors only, and A's call
// must still bring A its info and debug messages.
func TestLogLevelPerSession(t *testing.T) {
	e := newTestEnv(t)
	a := connectParty(t, e.url+"/mcp", "A")
	b := connectParty(t, e.url+"/mcp", "B")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := b.cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "error"}); err != nil {
		t.Fatal(err)
	}
	logf := featureNamed("log")
	for _, s := range []string{"alpha", "beta"} {
		t.Run(s, func(t *testing.T) {
			mark := a.mark()
			wantText, wantEvents := logf.want("A", s, nil)
			got, err := a.call(ctx, s+"__log", upstreamArgs{Tag: "A"}, nil)
			if err != nil || got != wantText {
				t.Fatalf("A calls %s__log = %q, %v; want %q", s, got, err, wantText)
			}
			if !a.waitEventsFor(mark, len(wantEvents), 2*time.Second) {
				t.Errorf("A (level debug) got %+v after B set level error, want %+v", a.waitEvents(t, mark, 0), wantEvents)
			}
		})
	}
}
