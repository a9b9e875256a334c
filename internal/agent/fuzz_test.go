package agent_test

import (
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/agent"
)

// FuzzParseEventID checks the Last-Event-ID parser, which sees client input.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"run_abc:3", ":1", "run:", "run:-1", "a:b:c", "run_x:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		run, seq, err := agent.ParseEventIDForTest(s)
		if err != nil {
			return
		}
		if run == "" || seq < 0 || len(run) >= len(s) || s[len(run)] != ':' {
			t.Errorf("%q parsed as %q, %d", s, run, seq)
		}
	})
}
