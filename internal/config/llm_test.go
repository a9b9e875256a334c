package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLLMAndAgents(t *testing.T) {
	const in = `llm:
  default: clova/HCX-005
  providers:
    clova: {type: openai, baseURL: "https://clovastudio.stream.ntruss.com/v1/openai/", apiKey: "${CLOVA_STUDIO_API_KEY}"}
    claude: {type: anthropic, apiKey: k}
agents:
  - name: 일정 비서
    instructions: 사용자의 일정을 돕습니다.
    model: claude/claude-sonnet-4-5
    temperature: 0.2
    language: ko
    servers: [switchboard]
    tools: {switchboard: [get_current_time, create_calendar_schedule]}
    capabilities: {webSearch: false}
`
	got, err := Parse("l.yaml", []byte(in), env(map[string]string{"CLOVA_STUDIO_API_KEY": "secret"}))
	if err != nil {
		t.Fatal(err)
	}
	want := LLM{Default: "clova/HCX-005", Providers: []*LLMProvider{
		{Name: "clova", Pos: Position{"l.yaml", 4, 5}, Type: "openai", BaseURL: "https://clovastudio.stream.ntruss.com/v1/openai/", APIKey: "secret"},
		{Name: "claude", Pos: Position{"l.yaml", 5, 5}, Type: "anthropic", APIKey: "k"},
	}}
	if diff := cmp.Diff(want, got.LLM); diff != "" {
		t.Errorf("llm (-want +got):\n%s", diff)
	}
	temp := 0.2
	wantAgents := []*Agent{{
		Name: "일정 비서", Pos: Position{"l.yaml", 7, 9}, Instructions: "사용자의 일정을 돕습니다.", Model: "claude/claude-sonnet-4-5",
		Temperature: &temp, Language: "ko", Servers: []string{"switchboard"},
		Tools:        map[string][]string{"switchboard": {"get_current_time", "create_calendar_schedule"}},
		Capabilities: map[string]bool{"webSearch": false},
	}}
	if diff := cmp.Diff(wantAgents, got.Agents); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
}

func TestLLMErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"llm:\n  default: nope/x\n", `llm.default "nope/x" must be "provider/model"`},
		{"llm:\n  providers:\n    x: {baseURL: http://h}\n", "llm.providers.x: type is required"},
		{"agents:\n  - instructions: x\n", "every agent needs a name"},
		{"agents:\n  - {name: a, temprature: 1}\n", `did you mean "temperature"`},
		{"agents:\n  - {name: a, temperature: 3}\n", "from 0 to 2"},
	}
	for _, tt := range tests {
		_, err := Parse("l.yaml", []byte(tt.in), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want %q", tt.in, err, tt.want)
		}
	}
}
