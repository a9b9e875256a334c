package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// notesConfig is a per-user HTTP server: each user's NOTES_TOKEN goes in a
// header, which the server's one tool answers with.
func notesConfig(t *testing.T) string {
	notes := newToolServer(t, func(r *http.Request) string { return r.Header.Get("X-Notes-Token") })
	return fmt.Sprintf(`mcpServers:
  notes:
    type: streamable-http
    url: %q
    headers:
      X-Notes-Token: "{{NOTES_TOKEN}}"
    customUserVars:
      NOTES_TOKEN:
        title: Notes token
        description: 'Create one at <a href="https://notes.example/settings">Settings</a>'
`, notes.URL+"/")
}

// stdioSession runs ServeStdio of a and connects a client to it; the
// client and the app end with the test.
func stdioSession(t *testing.T, a *App) (*mcp.ClientSession, *bytes.Buffer) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- a.ServeStdio(ctx, inR, outW, &stderr)
		outW.Close()
	}()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		inW.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
		a.Close()
	})
	return cs, &stderr
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// Issue 9, item 4: switchboard stdio --user NAME serves that local user's
// per-user servers with their own values; each user sees only theirs.
// Without --user the per-user server is left out, and stderr says which
// and why.
func TestStdioAsUser(t *testing.T) {
	cfg := writeConfig(t, "", notesConfig(t))
	ad, err := OpenAdmin(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := ad.AddUser(t.Context(), u, "correct horse battery staple", "user"); err != nil {
			t.Fatal(err)
		}
		if err := ad.SetCredential(t.Context(), io.Discard, u, "notes", "NOTES_TOKEN", u+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	ad.Close()

	for _, user := range []string{"alice", "bob"} {
		t.Run(user, func(t *testing.T) {
			a, err := New(t.Context(), cfg, &Options{User: user})
			if err != nil {
				t.Fatal(err)
			}
			a.Start(t.Context(), 10*time.Second)
			cs, _ := stdioSession(t, a)
			// Start connected the user's servers: the first list has them.
			if names := toolNames(t, cs); !slices.Contains(names, "notes__lookup") {
				t.Fatalf("first tools/list as %s: %v, want notes__lookup", user, names)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "notes__lookup", Arguments: map[string]any{}})
			if err != nil || res.IsError || len(res.Content) != 1 {
				t.Fatalf("notes__lookup: %v %+v", err, res)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; got != user+"-secret" {
				t.Errorf("%s's call sent %q, want their own value", user, got)
			}
		})
	}

	t.Run("no user", func(t *testing.T) {
		a, err := New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Start(t.Context(), 10*time.Second)
		cs, stderr := stdioSession(t, a)
		if names := toolNames(t, cs); slices.Contains(names, "notes__lookup") {
			t.Errorf("the operator sees a per-user tool: %v", names)
		}
		if got := stderr.String(); !strings.Contains(got, "notes: it needs each user's NOTES_TOKEN") || !strings.Contains(got, "--user") {
			t.Errorf("stderr does not say notes is left out and why:\n%s", got)
		}
	})

	t.Run("unknown user", func(t *testing.T) {
		if _, err := New(t.Context(), cfg, &Options{User: "carol"}); err == nil || !strings.Contains(err.Error(), `"carol"`) {
			t.Errorf("New as an unknown user: %v, want an error naming them", err)
		}
	})
}
