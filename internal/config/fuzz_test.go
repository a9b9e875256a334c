package config

import (
	"strings"
	"testing"
)

func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${A}", "${A:-x}", "$${A}", "${", "${}", "${A:-{{U}}}", "{{LIBRECHAT_USER_ID}}",
		"a${B}b${A}c", "${A:-{", "}}{{", "$$$${A}", "{{A}}}}{{",
	} {
		f.Add(s)
	}
	lookup := env(map[string]string{"A": "1", "B": ""})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expandEnv(s, lookup)
		if err == nil && !strings.Contains(s, "${") && out != s {
			t.Errorf("expandEnv(%q) = %q, want it unchanged", s, out)
		}
		// Placeholders are the hub's business: without "$" they pass
		// through untouched.
		if !strings.Contains(s, "$") {
			if got, want := placeholders(out), placeholders(s); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("placeholders changed: %q -> %q", want, got)
			}
		}
		if r := replacePlaceholders(s, "x"); !strings.Contains(s, "{{") && r != s {
			t.Errorf("replacePlaceholders(%q) = %q, want it unchanged", s, r)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"librechat_servers.yaml", "librechat_full.yaml", "switchboard.json"} {
		data, err := testdataFS.ReadFile("testdata/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(defaultYAML)
	f.Add([]byte("a: &x\n  <<: *x\n"))
	f.Add([]byte("mcpServers:\n  a: &a\n    <<: [*a, *a]\n"))
	f.Add([]byte("mcpServers: {a: {url: \"ws://x\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, env(map[string]string{"A": "1"}))
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		if err != nil {
			_ = err.Error()
			return
		}
		_ = Explain(c)
		for _, s := range c.Servers {
			s.UserScoped()
			s.PendingFeatures()
		}
	})
}
