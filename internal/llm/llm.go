// Package llm owns Switchboard's connection to large language models: one
// small streaming Provider interface, implemented for OpenAI-compatible chat
// completions (OpenAI, NAVER CLOVA Studio, Ollama, vLLM) and for Anthropic
// Messages with the vendors' official Go SDKs, plus the per-provider tool
// schema sanitizer and the provider registry built from the llm: config.
//
// It imports only the standard library and the provider SDKs; the agent
// imports it. llm/llmtest holds scripted fake servers for tests.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Provider streams model answers.
type Provider interface {
	// Stream sends req and returns the answer as it arrives. Errors that
	// happen before the first event (bad key, unknown model, refused request,
	// exhausted rate-limit retries) are returned here, as *APIError.
	Stream(ctx context.Context, req *Request) (Stream, error)
}

// Stream is one streamed answer. Next advances to the next event and
// returns false at the end or on an error, which Err then reports. Close
// releases the connection; it may be called at any time, more than once.
type Stream interface {
	Next() bool
	Event() Event
	Err() error
	Close() error
}

// Role is a message's author.
type Role string

const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries one tool result (Message.ToolResult).
	RoleTool Role = "tool"
)

// Request is one call of a model.
type Request struct {
	Model    string // without the "provider/" prefix
	System   string
	Messages []Message
	Tools    []Tool
	// Temperature nil: the API's default.
	Temperature *float64
	// MaxTokens 0: the API's default (Anthropic requires a value;
	// DefaultAnthropicMaxTokens is sent).
	MaxTokens int
	// ReasoningEffort is passed to OpenAI-compatible APIs as reasoning_effort
	// ("none", "low", "medium", "high"). Empty: not sent, except for HCX-007
	// with tools, which gets "none" (see WIRE.md). Anthropic ignores it.
	ReasoningEffort string
}

// Message is one entry of the conversation.
type Message struct {
	Role Role
	Text string
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall
	// ToolResult is set for RoleTool.
	ToolResult *ToolResult
}

// ToolCall is one call the model made.
type ToolCall struct {
	ID        string
	Name      string
	Arguments json.RawMessage // a JSON object; "{}" when the model sent nothing
}

// ToolResult answers a ToolCall.
type ToolResult struct {
	CallID  string
	Content string
	IsError bool
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	Schema      map[string]any // JSON schema of the arguments (an object)
}

// EventKind says what an Event carries.
type EventKind int

const (
	TextDelta      EventKind = iota + 1 // Text
	ReasoningDelta                      // Text
	ToolCallStart                       // Index, ID, Name
	ToolCallDelta                       // Index, Text (a fragment of the arguments JSON)
	ToolCallEnd                         // Index
	UsageReport                         // Usage; may come more than once, the last one counts
	Finish                              // Reason; the last event
)

func (k EventKind) String() string {
	switch k {
	case TextDelta:
		return "text"
	case ReasoningDelta:
		return "reasoning"
	case ToolCallStart:
		return "tool_call_start"
	case ToolCallDelta:
		return "tool_call_delta"
	case ToolCallEnd:
		return "tool_call_end"
	case UsageReport:
		return "usage"
	case Finish:
		return "finish"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one piece of a streamed answer. Index numbers the turn's tool
// calls from 0 in the order the model started them.
type Event struct {
	Kind   EventKind
	Text   string
	Index  int
	ID     string
	Name   string
	Usage  Usage
	Reason FinishReason
}

// Usage counts tokens.
type Usage struct {
	Input  int `json:"input"`
	Output int `json:"output"`
}

// FinishReason says why the model stopped, normalized across providers.
type FinishReason string

const (
	FinishStop          FinishReason = "stop"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishLength        FinishReason = "length"
	FinishContentFilter FinishReason = "content_filter"
)

// Errors an *APIError wraps, to branch on with errors.Is.
var (
	ErrAuth         = errors.New("the API key was refused")
	ErrUnknownModel = errors.New("unknown model")
	ErrRefused      = errors.New("request refused")
	ErrRateLimited  = errors.New("rate limited")
	ErrUnavailable  = errors.New("model API unavailable")
)

// APIError is an error answer of a model API.
type APIError struct {
	Provider string
	Model    string
	Status   int    // HTTP status; 0 for an error event inside the stream
	Message  string // the API's own message, safe to show
	Kind     error  // one of the Err values above

	retryAfter time.Duration // from the Retry-After header
}

func (e *APIError) Error() string {
	msg := e.Kind.Error()
	if e.Kind == ErrUnknownModel && e.Model != "" {
		msg += " " + fmt.Sprintf("%q", e.Model)
	}
	s := fmt.Sprintf("%s: %s", e.Provider, msg)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *APIError) Unwrap() error { return e.Kind }

func kindForStatus(status int) error {
	switch {
	case status == 401 || status == 403:
		return ErrAuth
	case status == 404:
		return ErrUnknownModel
	case status == 429:
		return ErrRateLimited
	case status >= 500:
		return ErrUnavailable
	default:
		return ErrRefused
	}
}

// Turn accumulates a streamed answer. Add every event to it in order.
type Turn struct {
	Text      string
	Reasoning string
	ToolCalls []ToolCall // in Index order
	Usage     Usage
	Reason    FinishReason
	args      map[int][]byte
}

// Add folds e into the turn.
func (t *Turn) Add(e Event) {
	switch e.Kind {
	case TextDelta:
		t.Text += e.Text
	case ReasoningDelta:
		t.Reasoning += e.Text
	case ToolCallStart:
		for len(t.ToolCalls) <= e.Index {
			t.ToolCalls = append(t.ToolCalls, ToolCall{})
		}
		t.ToolCalls[e.Index].ID, t.ToolCalls[e.Index].Name = e.ID, e.Name
	case ToolCallDelta:
		if t.args == nil {
			t.args = make(map[int][]byte)
		}
		t.args[e.Index] = append(t.args[e.Index], e.Text...)
	case ToolCallEnd:
		if e.Index < len(t.ToolCalls) {
			t.ToolCalls[e.Index].Arguments = normalizeArgs(t.args[e.Index])
		}
	case UsageReport:
		t.Usage = e.Usage
	case Finish:
		t.Reason = e.Reason
		for i := range t.ToolCalls {
			if t.ToolCalls[i].Arguments == nil {
				t.ToolCalls[i].Arguments = normalizeArgs(t.args[i])
			}
		}
	}
}

func normalizeArgs(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return json.RawMessage(b)
}
