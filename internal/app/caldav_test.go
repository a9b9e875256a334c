package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/tools/toolstest"
)

// Under serve, the CalDAV calendar tools are listed and write to each
// signed-in user's own calendar with the credentials the user stored for
// the built-in server.
func TestCalDAVToolsUnderServe(t *testing.T) {
	dav, backend := toolstest.NewCalDAV(t, map[string]string{"alice": "pw-a", "bob": "pw-b"}, time.Now())
	ta := startApp(t, "", fmt.Sprintf(`mcpSettings:
  allowedAddresses: ["127.0.0.1/32"]
tools:
  calendar:
    caldav:
      url: %s/
`, dav.URL))
	_, aliceKey := ta.addUser(t, "alice", store.RoleUser)
	_, bobKey := ta.addUser(t, "bob", store.RoleUser)
	_, carolKey := ta.addUser(t, "carol", store.RoleUser)

	// Alice names her calendar; Bob relies on the configured server and
	// discovery; Carol has stored nothing.
	for _, c := range []struct{ key, body string }{
		{aliceKey, fmt.Sprintf(`{"values":{"CALDAV_URL":%q,"CALDAV_USERNAME":"alice","CALDAV_PASSWORD":"pw-a"}}`, dav.URL+"/dav/alice/calendars/default/")},
		{bobKey, `{"values":{"CALDAV_USERNAME":"bob","CALDAV_PASSWORD":"pw-b"}}`},
	} {
		if st, body := ta.do(t, http.MethodPut, "/api/servers/switchboard/credentials", c.key, c.body); st/100 != 2 {
			t.Fatalf("PUT credentials: %d %s", st, body)
		}
	}
	st, body := ta.do(t, http.MethodGet, "/api/servers", carolKey, "")
	if st != http.StatusOK || !strings.Contains(body, "CALDAV_PASSWORD") {
		t.Errorf("carol's server list does not ask for the CalDAV credentials: %d %s", st, body)
	}

	for _, tt := range []struct {
		user, key string
		wantErr   string // "": the event is created
	}{
		{"alice", aliceKey, ""},
		{"bob", bobKey, ""},
		{"carol", carolKey, "CALDAV_USERNAME"},
	} {
		t.Run(tt.user, func(t *testing.T) {
			cs := ta.mcpClient(t, "/mcp/switchboard", tt.key)
			ctx := t.Context()
			list, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range list.Tools {
				names = append(names, tool.Name)
			}
			for _, want := range []string{"create_calendar_schedule", "list_calendar_schedules"} {
				if !slices.Contains(names, want) {
					t.Fatalf("tools = %v, want %s", names, want)
				}
			}
			title := tt.user + "'s review"
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "create_calendar_schedule", Arguments: map[string]any{"title": title, "start": "2026-11-19T15:00:00+09:00"}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				if !res.IsError || !strings.Contains(toolText(res), tt.wantErr) {
					t.Errorf("create as %s: %s, want an error naming %s", tt.user, toolText(res), tt.wantErr)
				}
				return
			}
			if res.IsError {
				t.Fatalf("create as %s: %s", tt.user, toolText(res))
			}
			if got := backend.Summaries(tt.user); !slices.Equal(got, []string{title}) {
				t.Errorf("%s's calendar holds %v, want [%s]", tt.user, got, title)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_calendar_schedules", Arguments: map[string]any{"from": "2026-11-18", "to": "2026-11-30"}})
			if err != nil || res.IsError {
				t.Fatalf("list as %s: %v %s", tt.user, err, toolText(res))
			}
			data, _ := json.Marshal(res.StructuredContent)
			if !strings.Contains(string(data), title) {
				t.Errorf("list as %s: %s, want %q", tt.user, data, title)
			}
		})
	}
}

// mcpClient connects an MCP client to path with key.
func (ta *testApp) mcpClient(t *testing.T, path, key string) *mcp.ClientSession {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: ta.srv.URL + path, HTTPClient: &http.Client{Transport: bearer{key, tr}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
