package config

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// LLM is the llm section: the model providers the agent host may use.
type LLM struct {
	Default   string         // "provider/model"
	Providers []*LLMProvider // in file order
}

// LLMProvider is one model API.
type LLMProvider struct {
	Name       string
	Pos        Position
	Type       string // openai | anthropic
	BaseURL    string
	APIKey     string
	Models     []string
	Headers    map[string]string
	MaxRetries int
	RetryDelay time.Duration
}

// Agent is one agent of the agents section.
type Agent struct {
	Name          string
	Pos           Position
	Instructions  string
	Model         string // "provider/model"; empty: llm.default
	Temperature   *float64
	MaxTokens     int
	Language      string // ko | en
	Servers       []string
	Tools         map[string][]string // per-server allow-lists
	Capabilities  map[string]bool
	MaxIterations int
}

var (
	llmKeys         = []string{"default", "providers"}
	llmProviderKeys = []string{"type", "baseURL", "apiKey", "models", "headers", "maxRetries", "retryDelay"}
	agentKeys       = []string{"name", "instructions", "model", "temperature", "maxTokens", "language", "servers", "tools", "capabilities", "maxIterations"}
)

func (d *decoder) llmSection(c *Config, n ast.Node) {
	fields, _ := d.mapping(n, "llm")
	for _, f := range fields {
		switch f.key {
		case "default":
			c.LLM.Default, _ = d.str(f.value, "llm.default")
		case "providers":
			pf, _ := d.mapping(f.value, "llm.providers")
			for _, p := range pf {
				if prov := d.llmProvider(p); prov != nil {
					c.LLM.Providers = append(c.LLM.Providers, prov)
				}
			}
		default:
			d.unknownKey(f, "llm", llmKeys)
		}
	}
	if c.LLM.Default != "" {
		prov, _, ok := strings.Cut(c.LLM.Default, "/")
		if !ok || !slices.ContainsFunc(c.LLM.Providers, func(p *LLMProvider) bool { return p.Name == prov }) {
			d.errorf(n, "llm.default %q must be \"provider/model\" naming one of llm.providers", c.LLM.Default)
		}
	}
}

func (d *decoder) llmProvider(pf field) *LLMProvider {
	where := "llm.providers." + pf.key
	p := &LLMProvider{Name: pf.key, Pos: d.pos(pf.keyN)}
	fields, ok := d.mapping(pf.value, where)
	if !ok {
		return nil
	}
	for _, f := range fields {
		what := where + "." + f.key
		switch f.key {
		case "type":
			p.Type = d.provider(f.value, what, []string{"openai", "anthropic"})
		case "baseURL":
			p.BaseURL = d.urlField(f.value, what)
		case "apiKey":
			p.APIKey, _ = d.str(f.value, what)
		case "models":
			p.Models, _ = d.strList(f.value, what, false)
		case "headers":
			p.Headers, _ = d.strMap(f.value, what)
		case "maxRetries":
			if v, present, ok := d.integer(f.value, what); present && ok {
				p.MaxRetries = int(v)
			}
		case "retryDelay":
			p.RetryDelay = d.duration(f.value, what)
		default:
			d.unknownKey(f, where, llmProviderKeys)
		}
	}
	if p.Type == "" {
		d.errorf(pf.keyN, "%s: type is required (openai or anthropic)", where)
		return nil
	}
	return p
}

func (d *decoder) agentsSection(c *Config, n ast.Node) {
	r := d.resolve(n)
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		if !isNull(r) {
			d.errorf(r, "agents must be a list of agents, got %s", kind(r))
		}
		return
	}
	seen := map[string]bool{}
	for _, item := range seq.Values {
		a := d.agent(item)
		if a == nil {
			continue
		}
		if seen[a.Name] {
			d.errorf(item, "agents: duplicate agent name %q", a.Name)
			continue
		}
		seen[a.Name] = true
		c.Agents = append(c.Agents, a)
	}
}

func (d *decoder) agent(n ast.Node) *Agent {
	a := &Agent{Pos: d.pos(n)}
	fields, ok := d.mapping(n, "an agent")
	if !ok {
		return nil
	}
	for _, f := range fields {
		what := "agents." + f.key
		switch f.key {
		case "name":
			a.Name, _ = d.str(f.value, what)
		case "instructions":
			a.Instructions, _ = d.str(f.value, what)
		case "model":
			a.Model, _ = d.str(f.value, what)
		case "temperature":
			s, ok := d.strMode(f.value, what, true)
			if ok && s != "" {
				t, err := strconv.ParseFloat(s, 64)
				if err != nil || t < 0 || t > 2 {
					d.errorf(d.resolve(f.value), "%s must be a number from 0 to 2", what)
				} else {
					a.Temperature = &t
				}
			}
		case "maxTokens":
			if v, present, ok := d.integer(f.value, what); present && ok {
				a.MaxTokens = int(v)
			}
		case "language":
			a.Language = d.provider(f.value, what, []string{"ko", "en"})
		case "servers":
			a.Servers, _ = d.strList(f.value, what, false)
		case "tools":
			tf, _ := d.mapping(f.value, what)
			a.Tools = map[string][]string{}
			for _, t := range tf {
				a.Tools[t.key], _ = d.strList(t.value, what+"."+t.key, false)
			}
		case "capabilities":
			cf, _ := d.mapping(f.value, what)
			a.Capabilities = map[string]bool{}
			for _, cp := range cf {
				v, _, _ := d.boolean(cp.value, what+"."+cp.key)
				a.Capabilities[cp.key] = v
			}
		case "maxIterations":
			if v, present, ok := d.integer(f.value, what); present && ok {
				a.MaxIterations = int(v)
			}
		default:
			d.unknownKey(f, "agents", agentKeys)
		}
	}
	if a.Name == "" {
		d.errorf(n, "agents: every agent needs a name")
		return nil
	}
	return a
}
