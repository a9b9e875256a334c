package llm

func SanitizeSchemaForTest(s map[string]any, d string) map[string]any {
	return SanitizeSchema(s, map[string]dialect{"openai": dialectOpenAI, "clova": dialectClova, "anthropic": dialectAnthropic}[d])
}
