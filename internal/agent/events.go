package agent

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// Event types.
const (
	EventRunStarted     = "run.started"
	EventMessageDelta   = "message.delta"
	EventReasoningDelta = "reasoning.delta"
	EventToolStarted    = "tool.started"
	EventToolFinished   = "tool.finished"
	EventAuthRequired   = "auth.required"
	EventRunFinished    = "run.finished"
	EventError          = "error"
)

// Event is one thing that happened in a run. Seq numbers a run's events
// from 1 without gaps; Type says which of the optional fields are set.
type Event struct {
	Type  string    `json:"type"`
	RunID string    `json:"runId"`
	Seq   int       `json:"seq"`
	Time  time.Time `json:"time"`

	// run.started
	ConversationID string `json:"conversationId,omitempty"`
	Agent          string `json:"agent,omitempty"`
	Model          string `json:"model,omitempty"`
	Language       string `json:"language,omitempty"`

	// message.delta, reasoning.delta
	Delta string `json:"delta,omitempty"`

	// tool.started, tool.finished
	Tool *ToolEvent `json:"tool,omitempty"`

	// auth.required
	Auth *AuthEvent `json:"auth,omitempty"`

	// run.finished
	Result *Result `json:"result,omitempty"`

	// error: a message for the user in the run's language.
	Message string `json:"message,omitempty"`
}

// ToolEvent describes a tool call.
type ToolEvent struct {
	CallID    string          `json:"callId"`
	Server    string          `json:"server"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Summary   string          `json:"summary"`
	// tool.finished only
	IsError    bool  `json:"isError,omitempty"`
	DurationMS int64 `json:"durationMs,omitempty"`
}

// AuthEvent asks the user to authorize a server.
type AuthEvent struct {
	Server string `json:"server"`
	URL    string `json:"url,omitempty"`
}

// Result is a run's outcome.
type Result struct {
	// Text is the answer: every message.delta of the run joined.
	Text       string      `json:"text"`
	References []Reference `json:"references"`
	Usage      llm.Usage   `json:"usage"`
	// Stop is "done", "max_iterations", "cancelled" or "error".
	Stop       string `json:"stop"`
	Iterations int    `json:"iterations"`
}

// eventLog keeps every event of a run so that a client can resume after
// any sequence number.
type eventLog struct {
	mu     sync.Mutex // guards the fields below
	events []Event
	done   bool
	wake   chan struct{} // closed and replaced on every append
}

func newEventLog() *eventLog { return &eventLog{wake: make(chan struct{})} }

func (l *eventLog) append(e Event) Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return e
	}
	e.Seq = len(l.events) + 1
	l.events = append(l.events, e)
	if e.Type == EventRunFinished || e.Type == EventError {
		l.done = true
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return e
}

// since returns the events after seq, whether the log is complete, and a
// channel closed when more arrive.
func (l *eventLog) since(seq int) ([]Event, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 0 {
		seq = 0
	}
	var out []Event
	if seq < len(l.events) {
		out = append(out, l.events[seq:]...)
	}
	return out, l.done, l.wake
}

// Follow calls fn with every event after seq, in order, until the run has
// ended, fn returns an error, or ctx is done.
func (r *Run) Follow(ctx context.Context, after int, fn func(Event) error) error {
	r.attach()
	defer r.detachClient()
	for {
		evs, done, wake := r.log.since(after)
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
			after = e.Seq
		}
		if done && len(evs) == 0 {
			return nil
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Events returns the events recorded so far.
func (r *Run) Events() []Event {
	evs, _, _ := r.log.since(0)
	return evs
}
