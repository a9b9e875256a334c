package llm

// dialect is a family of APIs with the same tolerance for JSON schemas.
type dialect int

const (
	dialectOpenAI    dialect = iota // OpenAI, Ollama, vLLM
	dialectClova                    // NAVER CLOVA Studio (HCX models)
	dialectAnthropic                // Anthropic Messages
)

// PlaceholderParam is the optional parameter added to a tool whose schema
// has no properties, for OpenAI-compatible APIs: OpenAI-style validators
// (and CLOVA Studio) refuse a function whose parameters object is empty.
// The model may leave it out; the agent removes it from the arguments
// before calling the tool (see StripPlaceholder).
const PlaceholderParam = "placeholder"

// Keywords removed from tool schemas, at every level of the schema.
//
//   - "$schema", "$id", "$comment": annotations with no meaning for the model;
//     OpenAI-compatible validators (vLLM's, CLOVA Studio's) have refused
//     "$schema" pointing at draft 2020-12, so none of the three is sent to
//     any API.
//   - CLOVA Studio only (unverified reports of refusals):
//     "additionalProperties" and "examples". Dropping them only relaxes
//     what the model is told; the MCP server still validates.
var (
	dropAlways = []string{"$schema", "$id", "$comment"}
	dropClova  = []string{"additionalProperties", "examples"}
)

// SanitizeSchema returns a copy of a tool's argument schema that the APIs of
// dialect d accept. The input is not modified. A nil schema becomes an
// empty object schema.
func SanitizeSchema(schema map[string]any, d dialect) map[string]any {
	out, _ := clean(schema, d).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	out["type"] = "object"
	props, _ := out["properties"].(map[string]any)
	if len(props) == 0 {
		if d == dialectAnthropic {
			// Anthropic accepts an object without properties.
			return out
		}
		out["properties"] = map[string]any{
			PlaceholderParam: map[string]any{
				"type":        "string",
				"description": "Not used; leave it out.",
			},
		}
		delete(out, "required")
	}
	return out
}

// clean copies a schema node, removing refused keywords. Maps whose keys
// are property names (properties, patternProperties, $defs, definitions)
// are copied key by key so that a property named like a keyword survives.
func clean(v any, d dialect) any {
	m, ok := v.(map[string]any)
	if !ok {
		if a, ok := v.([]any); ok {
			out := make([]any, len(a))
			for i, e := range a {
				out[i] = clean(e, d)
			}
			return out
		}
		return v
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		if dropped(k, d) {
			continue
		}
		switch k {
		case "properties", "patternProperties", "$defs", "definitions", "dependentSchemas":
			if pm, ok := val.(map[string]any); ok {
				cp := make(map[string]any, len(pm))
				for name, s := range pm {
					cp[name] = clean(s, d)
				}
				out[k] = cp
				continue
			}
		case "enum", "const", "default", "examples", "required":
			out[k] = val // values, not schemas
			continue
		}
		out[k] = clean(val, d)
	}
	return out
}

func dropped(k string, d dialect) bool {
	for _, s := range dropAlways {
		if k == s {
			return true
		}
	}
	if d == dialectClova {
		for _, s := range dropClova {
			if k == s {
				return true
			}
		}
	}
	return false
}

// StripPlaceholder removes PlaceholderParam from a call's arguments, which
// a model may fill in although the tool declares no parameters.
func StripPlaceholder(args map[string]any) {
	delete(args, PlaceholderParam)
}
