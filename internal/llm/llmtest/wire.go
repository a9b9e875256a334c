package llmtest

import "fmt"

// streamOpenAI writes t as chat.completion.chunk events ending in [DONE].
func streamOpenAI(s *sse, req Request, t Turn) {
	model := req.Model()
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"system_fingerprint": "fp_fake",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
	}
	s.send("", chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, r := range t.Reasoning {
		s.send("", chunk(map[string]any{"reasoning_content": r}, nil))
	}
	for _, x := range t.Text {
		s.send("", chunk(map[string]any{"content": x}, nil))
	}
	s.hold(t.Hold)
	for i, c := range t.ToolCalls {
		id := c.ID
		if id == "" {
			id = fmt.Sprintf("call_fake_%d", i)
		}
		s.send("", chunk(map[string]any{"tool_calls": []any{map[string]any{
			"index": i, "id": id, "type": "function", "function": map[string]any{"name": c.Name, "arguments": ""},
		}}}, nil))
		for _, a := range c.Args {
			s.send("", chunk(map[string]any{"tool_calls": []any{map[string]any{
				"index": i, "function": map[string]any{"arguments": a},
			}}}, nil))
		}
	}
	finish := t.Finish
	if finish == "" {
		finish = "stop"
		if len(t.ToolCalls) > 0 {
			finish = "tool_calls"
		}
	}
	s.send("", chunk(map[string]any{}, finish))
	if so, _ := req.Body["stream_options"].(map[string]any); so["include_usage"] == true {
		u := usageOf(t)
		s.send("", map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": u.Input, "completion_tokens": u.Output, "total_tokens": u.Input + u.Output},
		})
	}
	s.raw("data: [DONE]\n\n")
}

// streamAnthropic writes t as Messages API stream events.
func streamAnthropic(s *sse, req Request, t Turn) {
	u := usageOf(t)
	s.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "content": []any{}, "model": req.Model(),
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": u.Input, "output_tokens": 1},
	}})
	block := 0
	if len(t.Reasoning) > 0 {
		s.send("content_block_start", map[string]any{"type": "content_block_start", "index": block, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}})
		for _, r := range t.Reasoning {
			s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "thinking_delta", "thinking": r}})
		}
		s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "signature_delta", "signature": "c2lnbmF0dXJl"}})
		s.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": block})
		block++
	}
	if len(t.Text) > 0 {
		s.send("content_block_start", map[string]any{"type": "content_block_start", "index": block, "content_block": map[string]any{"type": "text", "text": ""}})
		s.send("ping", map[string]any{"type": "ping"})
		for _, x := range t.Text {
			s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "text_delta", "text": x}})
		}
		s.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": block})
		block++
	}
	s.hold(t.Hold)
	for i, c := range t.ToolCalls {
		id := c.ID
		if id == "" {
			id = fmt.Sprintf("toolu_fake_%d", i)
		}
		s.send("content_block_start", map[string]any{"type": "content_block_start", "index": block, "content_block": map[string]any{"type": "tool_use", "id": id, "name": c.Name, "input": map[string]any{}}})
		for _, a := range c.Args {
			s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": block, "delta": map[string]any{"type": "input_json_delta", "partial_json": a}})
		}
		s.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": block})
		block++
	}
	finish := t.Finish
	if finish == "" {
		finish = "end_turn"
		if len(t.ToolCalls) > 0 {
			finish = "tool_use"
		}
	}
	s.send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": finish, "stop_sequence": nil}, "usage": map[string]any{"output_tokens": u.Output}})
	s.send("message_stop", map[string]any{"type": "message_stop"})
}
