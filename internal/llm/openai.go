package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"
)

const openAIBaseURL = "https://api.openai.com/v1/"

// openAIProvider speaks OpenAI-compatible chat completions.
type openAIProvider struct {
	name    string
	client  openai.Client
	dialect dialect
	// official is true for api.openai.com, which wants
	// max_completion_tokens instead of the deprecated max_tokens.
	official bool
	retry    retry
}

var _ Provider = (*openAIProvider)(nil)

func newOpenAI(name string, cfg ProviderConfig, hc *http.Client, r retry) *openAIProvider {
	base := cfg.BaseURL
	if base == "" {
		base = openAIBaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		// Set even when empty so that OPENAI_API_KEY from the environment
		// is never sent to another vendor's endpoint.
		option.WithAPIKey(cfg.APIKey),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // retry.open decides, knowing whether tokens were streamed
		option.WithHeaderDel("OpenAI-Organization"),
		option.WithHeaderDel("OpenAI-Project"),
	}
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	host := ""
	if u, err := url.Parse(base); err == nil {
		host = u.Hostname()
	}
	d := dialectOpenAI
	if strings.HasSuffix(host, "ntruss.com") {
		d = dialectClova
	}
	return &openAIProvider{name: name, client: openai.NewClient(opts...), dialect: d, official: host == "api.openai.com", retry: r}
}

// hcx007 reports whether model is CLOVA Studio's reasoning model, which
// must get reasoning_effort "none" when tools are offered (WIRE.md).
func hcx007(model string) bool { return strings.HasPrefix(model, "HCX-007") }

func (p *openAIProvider) params(req *Request) openai.ChatCompletionNewParams {
	d := p.dialect
	if hcx007(req.Model) || strings.HasPrefix(req.Model, "HCX-") {
		d = dialectClova
	}
	var msgs []openai.ChatCompletionMessageParamUnion
	if req.System != "" {
		msgs = append(msgs, openai.SystemMessage(req.System))
	}
	for _, m := range req.Messages {
		switch m.Role {
		case RoleUser:
			msgs = append(msgs, openai.UserMessage(m.Text))
		case RoleAssistant:
			a := openai.ChatCompletionAssistantMessageParam{}
			if m.Text != "" || len(m.ToolCalls) == 0 {
				a.Content.OfString = param.NewOpt(m.Text)
			}
			for _, c := range m.ToolCalls {
				a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
						ID:       c.ID,
						Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: c.Name, Arguments: string(normalizeArgs(c.Arguments))},
					},
				})
			}
			msgs = append(msgs, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		case RoleTool:
			if m.ToolResult == nil {
				continue
			}
			msgs = append(msgs, openai.ToolMessage(toolResultText(m.ToolResult), m.ToolResult.CallID))
		}
	}
	params := openai.ChatCompletionNewParams{
		Model:         shared.ChatModel(req.Model),
		Messages:      msgs,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)},
	}
	for _, t := range req.Tools {
		fd := shared.FunctionDefinitionParam{Name: t.Name, Parameters: SanitizeSchema(t.Schema, d)}
		if t.Description != "" {
			fd.Description = param.NewOpt(t.Description)
		}
		params.Tools = append(params.Tools, openai.ChatCompletionFunctionTool(fd))
	}
	if req.Temperature != nil {
		params.Temperature = param.NewOpt(*req.Temperature)
	}
	if req.MaxTokens > 0 {
		// HCX-007 takes max_completion_tokens only (CLOVA Studio's own API
		// documents maxCompletionTokens for it; unverified for the
		// OpenAI-compatible endpoint).
		if p.official || hcx007(req.Model) {
			params.MaxCompletionTokens = param.NewOpt(int64(req.MaxTokens))
		} else {
			params.MaxTokens = param.NewOpt(int64(req.MaxTokens))
		}
	}
	effort := req.ReasoningEffort
	if hcx007(req.Model) && len(req.Tools) > 0 {
		effort = "none"
	}
	if effort != "" {
		params.ReasoningEffort = shared.ReasoningEffort(effort)
	}
	return params
}

// toolResultText marks an error result in words: chat completions has no
// is_error flag for tool messages.
func toolResultText(r *ToolResult) string {
	if r.IsError && !strings.HasPrefix(strings.ToLower(r.Content), "error") {
		return "Error: " + r.Content
	}
	return r.Content
}

func (p *openAIProvider) Stream(ctx context.Context, req *Request) (Stream, error) {
	params := p.params(req)
	return p.retry.open(ctx, func(ctx context.Context) (Stream, error) {
		s := &openAIStream{p: p, model: req.Model, sdk: p.client.Chat.Completions.NewStreaming(ctx, params), byWire: make(map[int64]int)}
		s.q = queue{step: s.step, close: s.sdk.Close}
		if err := s.q.prime(); err != nil {
			return nil, p.translate(ctx, err, req.Model)
		}
		return s, nil
	})
}

type openAIStream struct {
	p      *openAIProvider
	model  string
	sdk    *ssestream.Stream[openai.ChatCompletionChunk]
	q      queue
	byWire map[int64]int // the API's tool call index -> ours
	calls  int
	ended  bool // ToolCallEnd sent for every call
	reason FinishReason
	usage  *Usage
}

func (s *openAIStream) Next() bool   { return s.q.Next() }
func (s *openAIStream) Event() Event { return s.q.Event() }
func (s *openAIStream) Close() error { return s.q.Close() }
func (s *openAIStream) Err() error {
	if err := s.q.Err(); err != nil {
		return s.p.translate(context.Background(), err, s.model)
	}
	return nil
}

func (s *openAIStream) step() ([]Event, bool, error) {
	if !s.sdk.Next() {
		if err := s.sdk.Err(); err != nil {
			return nil, false, err
		}
		var evs []Event
		evs = s.endCalls(evs)
		if s.usage != nil {
			evs = append(evs, Event{Kind: UsageReport, Usage: *s.usage})
		}
		reason := s.reason
		if s.calls > 0 && (reason == "" || reason == FinishStop) {
			// Some servers (older Ollama) say "stop" after tool calls.
			reason = FinishToolCalls
		}
		if reason == "" {
			reason = FinishStop
		}
		return append(evs, Event{Kind: Finish, Reason: reason}), false, nil
	}
	chunk := s.sdk.Current()
	var evs []Event
	if chunk.JSON.Usage.Valid() && (chunk.Usage.PromptTokens != 0 || chunk.Usage.CompletionTokens != 0) {
		s.usage = &Usage{Input: int(max(chunk.Usage.PromptTokens, 0)), Output: int(max(chunk.Usage.CompletionTokens, 0))}
	}
	for _, ch := range chunk.Choices {
		if ch.Index != 0 {
			continue
		}
		d := ch.Delta
		if r := reasoningText(d); r != "" {
			evs = append(evs, Event{Kind: ReasoningDelta, Text: r})
		}
		if d.Content != "" {
			evs = append(evs, Event{Kind: TextDelta, Text: d.Content})
		}
		if d.Refusal != "" {
			evs = append(evs, Event{Kind: TextDelta, Text: d.Refusal})
		}
		for _, tc := range d.ToolCalls {
			if s.ended {
				// Fragments after finish_reason would reach calls
				// already ended (and perhaps already run): dropped.
				break
			}
			i, ok := s.byWire[tc.Index]
			if !ok {
				i = s.calls
				s.calls++
				s.byWire[tc.Index] = i
				id := tc.ID
				if id == "" {
					id = fmt.Sprintf("call_%d", i)
				}
				evs = append(evs, Event{Kind: ToolCallStart, Index: i, ID: id, Name: tc.Function.Name})
			}
			if tc.Function.Arguments != "" {
				evs = append(evs, Event{Kind: ToolCallDelta, Index: i, Text: tc.Function.Arguments})
			}
		}
		if ch.FinishReason != "" {
			s.reason = normalizeFinish(ch.FinishReason)
			evs = s.endCalls(evs)
		}
	}
	return evs, true, nil
}

func (s *openAIStream) endCalls(evs []Event) []Event {
	if s.ended {
		return evs
	}
	s.ended = s.calls > 0
	for i := range s.calls {
		evs = append(evs, Event{Kind: ToolCallEnd, Index: i})
	}
	return evs
}

// reasoningText returns the reasoning a delta carries: "reasoning_content"
// (vLLM, DeepSeek, CLOVA Studio) or "reasoning" (Ollama, OpenRouter).
func reasoningText(d openai.ChatCompletionChunkChoiceDelta) string {
	for _, k := range []string{"reasoning_content", "reasoning"} {
		f, ok := d.JSON.ExtraFields[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal([]byte(f.Raw()), &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

func normalizeFinish(r string) FinishReason {
	switch r {
	case "tool_calls", "function_call", "tool_use":
		return FinishToolCalls
	case "length", "max_tokens":
		return FinishLength
	case "content_filter", "refusal":
		return FinishContentFilter
	}
	return FinishStop
}

func (p *openAIProvider) translate(ctx context.Context, err error, model string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	var oe *openai.Error
	if errors.As(err, &oe) {
		msg := oe.Message
		if msg == "" {
			msg = apiMessage(oe.RawJSON())
		}
		out := &APIError{Provider: p.name, Model: model, Status: oe.StatusCode, Message: msg, Kind: kindForStatus(oe.StatusCode)}
		if oe.Response != nil {
			out.retryAfter = parseRetryAfter(oe.Response.Header)
		}
		return out
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		return &APIError{Provider: p.name, Model: model, Message: apiMessage(string(se.Event.Data)), Kind: ErrUnavailable}
	}
	return fmt.Errorf("%s: %w: %v", p.name, ErrUnavailable, err)
}

// apiMessage digs the human message out of an error body such as
// {"error":{"message":"…"}}, {"message":"…"} or CLOVA Studio's
// {"status":{"code":"40001","message":"…"}}.
func apiMessage(raw string) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Status  struct {
			Message string `json:"message"`
		} `json:"status"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return strings.TrimSpace(raw)
	}
	if len(v.Error) > 0 {
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			return s
		}
		if m := apiMessage(string(v.Error)); m != "" {
			return m
		}
	}
	if v.Message != "" {
		return v.Message
	}
	return v.Status.Message
}
