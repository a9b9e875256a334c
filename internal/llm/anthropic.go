package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/packages/param"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"
)

// DefaultAnthropicMaxTokens is sent when a Request sets no MaxTokens:
// the Messages API requires max_tokens.
const DefaultAnthropicMaxTokens = 4096

// anthropicProvider speaks the Anthropic Messages API.
type anthropicProvider struct {
	name   string
	client anthropic.Client
	retry  retry
}

var _ Provider = (*anthropicProvider)(nil)

func newAnthropic(name string, cfg ProviderConfig, hc *http.Client, r retry) *anthropicProvider {
	opts := []option.RequestOption{
		// The key comes from the config only, never from ANTHROPIC_API_KEY.
		option.WithoutEnvironmentDefaults(),
		option.WithHTTPClient(hc),
		option.WithMaxRetries(0), // retry.open decides, knowing whether tokens were streamed
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(strings.TrimSuffix(cfg.BaseURL, "/")+"/"))
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	return &anthropicProvider{name: name, client: anthropic.NewClient(opts...), retry: r}
}

func (p *anthropicProvider) params(req *Request) anthropic.MessageNewParams {
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model(req.Model),
		MaxTokens: int64(req.MaxTokens),
	}
	if params.MaxTokens <= 0 {
		params.MaxTokens = DefaultAnthropicMaxTokens
	}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	if req.Temperature != nil {
		params.Temperature = param.NewOpt(*req.Temperature)
	}
	for _, m := range req.Messages {
		switch m.Role {
		case RoleUser:
			params.Messages = append(params.Messages, anthropic.NewUserMessage(anthropic.NewTextBlock(m.Text)))
		case RoleAssistant:
			var blocks []anthropic.ContentBlockParamUnion
			if m.Text != "" {
				blocks = append(blocks, anthropic.NewTextBlock(m.Text))
			}
			for _, c := range m.ToolCalls {
				blocks = append(blocks, anthropic.NewToolUseBlock(c.ID, normalizeArgs(c.Arguments), c.Name))
			}
			if len(blocks) == 0 {
				continue
			}
			params.Messages = append(params.Messages, anthropic.NewAssistantMessage(blocks...))
		case RoleTool:
			if m.ToolResult == nil {
				continue
			}
			b := anthropic.NewToolResultBlock(m.ToolResult.CallID, m.ToolResult.Content, m.ToolResult.IsError)
			// All results of one assistant turn go in one user message.
			if n := len(params.Messages); n > 0 && params.Messages[n-1].Role == anthropic.MessageParamRoleUser && isToolResults(params.Messages[n-1]) {
				params.Messages[n-1].Content = append(params.Messages[n-1].Content, b)
				continue
			}
			params.Messages = append(params.Messages, anthropic.NewUserMessage(b))
		}
	}
	for _, t := range req.Tools {
		s := SanitizeSchema(t.Schema, dialectAnthropic)
		schema := anthropic.ToolInputSchemaParam{ExtraFields: map[string]any{}}
		for k, v := range s {
			switch k {
			case "type":
			case "properties":
				schema.Properties = v
			case "required":
				schema.Required = toStrings(v)
			default:
				schema.ExtraFields[k] = v
			}
		}
		tp := anthropic.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tp.Description = param.NewOpt(t.Description)
		}
		params.Tools = append(params.Tools, anthropic.ToolUnionParam{OfTool: &tp})
	}
	return params
}

func isToolResults(m anthropic.MessageParam) bool {
	for _, b := range m.Content {
		if b.OfToolResult == nil {
			return false
		}
	}
	return len(m.Content) > 0
}

func toStrings(v any) []string {
	switch a := v.(type) {
	case []string:
		return a
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (p *anthropicProvider) Stream(ctx context.Context, req *Request) (Stream, error) {
	params := p.params(req)
	return p.retry.open(ctx, func(ctx context.Context) (Stream, error) {
		s := &anthropicStream{p: p, model: req.Model, sdk: p.client.Messages.NewStreaming(ctx, params), byBlock: make(map[int64]int)}
		s.q = queue{step: s.step, close: s.sdk.Close}
		if err := s.q.prime(); err != nil {
			return nil, p.translate(ctx, err, req.Model)
		}
		return s, nil
	})
}

type anthropicStream struct {
	p       *anthropicProvider
	model   string
	sdk     *ssestream.Stream[anthropic.MessageStreamEventUnion]
	q       queue
	byBlock map[int64]int // content block index -> tool call index
	calls   int
	usage   Usage
	reason  FinishReason
}

func (s *anthropicStream) Next() bool   { return s.q.Next() }
func (s *anthropicStream) Event() Event { return s.q.Event() }
func (s *anthropicStream) Close() error { return s.q.Close() }
func (s *anthropicStream) Err() error {
	if err := s.q.Err(); err != nil {
		return s.p.translate(context.Background(), err, s.model)
	}
	return nil
}

func (s *anthropicStream) step() ([]Event, bool, error) {
	if !s.sdk.Next() {
		if err := s.sdk.Err(); err != nil {
			return nil, false, err
		}
		// The stream ended without message_stop: report what we have.
		return s.finish(), false, nil
	}
	ev := s.sdk.Current()
	switch ev.Type {
	case "message_start":
		s.usage.Input = int(max(ev.Message.Usage.InputTokens, 0))
		s.usage.Output = int(max(ev.Message.Usage.OutputTokens, 0))
	case "content_block_start":
		switch ev.ContentBlock.Type {
		case "tool_use":
			i := s.calls
			s.calls++
			s.byBlock[ev.Index] = i
			id := ev.ContentBlock.ID
			if id == "" {
				// The tool_result must name the call: never send it back empty.
				id = fmt.Sprintf("toolu_%d", i)
			}
			return []Event{{Kind: ToolCallStart, Index: i, ID: id, Name: ev.ContentBlock.Name}}, true, nil
		case "text":
			if ev.ContentBlock.Text != "" {
				return []Event{{Kind: TextDelta, Text: ev.ContentBlock.Text}}, true, nil
			}
		case "thinking":
			if ev.ContentBlock.Thinking != "" {
				return []Event{{Kind: ReasoningDelta, Text: ev.ContentBlock.Thinking}}, true, nil
			}
		}
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			return []Event{{Kind: TextDelta, Text: ev.Delta.Text}}, true, nil
		case "thinking_delta":
			return []Event{{Kind: ReasoningDelta, Text: ev.Delta.Thinking}}, true, nil
		case "input_json_delta":
			if i, ok := s.byBlock[ev.Index]; ok && ev.Delta.PartialJSON != "" {
				return []Event{{Kind: ToolCallDelta, Index: i, Text: ev.Delta.PartialJSON}}, true, nil
			}
		}
	case "content_block_stop":
		if i, ok := s.byBlock[ev.Index]; ok {
			// Forgotten, so that a repeated stop or a late delta cannot
			// touch the ended call.
			delete(s.byBlock, ev.Index)
			return []Event{{Kind: ToolCallEnd, Index: i}}, true, nil
		}
	case "message_delta":
		if ev.Usage.OutputTokens > 0 {
			s.usage.Output = int(ev.Usage.OutputTokens)
		}
		if ev.Usage.InputTokens > 0 {
			s.usage.Input = int(ev.Usage.InputTokens)
		}
		if ev.Delta.StopReason != "" {
			s.reason = normalizeFinish(string(ev.Delta.StopReason))
		}
	case "message_stop":
		return s.finish(), false, nil
	}
	return nil, true, nil
}

func (s *anthropicStream) finish() []Event {
	reason := s.reason
	if reason == "" || (s.calls > 0 && reason == FinishStop) {
		reason = FinishStop
		if s.calls > 0 {
			reason = FinishToolCalls
		}
	}
	return []Event{{Kind: UsageReport, Usage: s.usage}, {Kind: Finish, Reason: reason}}
}

func (p *anthropicProvider) translate(ctx context.Context, err error, model string) error {
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
	var e *anthropic.Error
	if errors.As(err, &e) {
		out := &APIError{Provider: p.name, Model: model, Status: e.StatusCode, Message: apiMessage(e.RawJSON())}
		switch e.Type() {
		case "authentication_error", "permission_error":
			out.Kind = ErrAuth
		case "not_found_error":
			out.Kind = ErrUnknownModel
		case "rate_limit_error":
			out.Kind = ErrRateLimited
		case "overloaded_error", "api_error":
			out.Kind = ErrUnavailable
		case "invalid_request_error", "request_too_large":
			out.Kind = ErrRefused
		default:
			out.Kind = kindForStatus(e.StatusCode)
			if e.StatusCode == 0 {
				out.Kind = ErrUnavailable
			}
		}
		if e.Response != nil {
			out.retryAfter = parseRetryAfter(e.Response.Header)
		}
		return out
	}
	return fmt.Errorf("%s: %w: %v", p.name, ErrUnavailable, err)
}
