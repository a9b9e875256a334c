package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testEnv(stdin io.Reader) (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{
		stdin: stdin, stdout: &out, stderr: &errb,
		lookupEnv: func(k string) (string, bool) { return os.LookupEnv(k) },
		getwd:     os.Getwd,
	}, &out, &errb
}

// inTempDir runs the test from an empty directory, so that no
// ./switchboard.yaml is picked up and the built-in default applies.
func inTempDir(t *testing.T) {
	t.Chdir(t.TempDir())
}

func TestCallBuiltinTime(t *testing.T) {
	inTempDir(t)
	e, out, _ := testEnv(nil)
	if err := run(t.Context(), []string{"call", "--json", "switchboard", "get_current_time", `{"timezone":"UTC"}`}, e); err != nil {
		t.Fatal(err)
	}
	var res struct {
		StructuredContent struct {
			Timezone string `json:"timezone"`
			Datetime string `json:"datetime"`
			Weekday  string `json:"weekday"`
			Unix     int64  `json:"unix"`
		} `json:"structuredContent"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	sc := res.StructuredContent
	got, err := time.Parse(time.RFC3339, sc.Datetime)
	if err != nil {
		t.Fatalf("datetime %q: %v", sc.Datetime, err)
	}
	if sc.Timezone != "UTC" || got.Unix() != sc.Unix || got.Weekday().String() != sc.Weekday {
		t.Errorf("inconsistent result: %+v", sc)
	}
}

func TestCallUnknownTimezoneIsToolError(t *testing.T) {
	inTempDir(t)
	e, out, _ := testEnv(nil)
	err := run(t.Context(), []string{"call", "switchboard", "get_current_time", `{"timezone":"Mars/Olympus"}`}, e)
	if err == nil || !strings.Contains(out.String(), "unknown time zone") {
		t.Fatalf("err = %v, output %q; want a tool error naming the zone", err, out)
	}
}

func TestToolsAndServers(t *testing.T) {
	inTempDir(t)
	e, out, _ := testEnv(nil)
	if err := run(t.Context(), []string{"tools"}, e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "get_current_time") {
		t.Errorf("tools output lacks get_current_time:\n%s", out)
	}
	out.Reset()
	if err := run(t.Context(), []string{"servers", "--json"}, e); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Servers []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Tools int    `json:"tools"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Servers) != 1 || st.Servers[0].Name != "switchboard" || st.Servers[0].State != "connected" || st.Servers[0].Tools < 1 {
		t.Errorf("servers = %+v", st.Servers)
	}
}

func TestConfigCheckReportsPosition(t *testing.T) {
	inTempDir(t)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("mcpServers:\n  files:\n    comand: npx\n"), 0o600)
	e, _, _ := testEnv(nil)
	err := run(t.Context(), []string{"config", "check", path}, e)
	if err == nil || !strings.Contains(err.Error(), path+":3:5") || !strings.Contains(err.Error(), "command") {
		t.Fatalf("err = %v; want %s:3:5 and a hint naming command", err, path)
	}
}

func TestServeRefusesNoAuthOnPublicAddress(t *testing.T) {
	inTempDir(t)
	e, _, _ := testEnv(nil)
	err := run(t.Context(), []string{"serve", "--insecure-no-auth", "--listen", "0.0.0.0:0"}, e)
	var u usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--insecure-no-auth") {
		t.Fatalf("err = %v; want a usage error naming --insecure-no-auth", err)
	}
}

func TestServeAndCallOverHTTP(t *testing.T) {
	inTempDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	e, _, _ := testEnv(nil)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--insecure-no-auth", "--listen", addr}, e) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	waitHTTP(t, "http://"+addr+"/healthz")

	client := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "switchboard__get_current_time", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}

	// The legacy HTTP+SSE transport serves the same aggregate.
	sseCS, err := client.Connect(ctx, &mcp.SSEClientTransport{Endpoint: "http://" + addr + "/sse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sseCS.Close()
	if res, err := sseCS.CallTool(ctx, &mcp.CallToolParams{Name: "switchboard__get_current_time", Arguments: map[string]any{}}); err != nil || res.IsError {
		t.Fatalf("call over SSE: %v %+v", err, res)
	}

	resp, err := http.Get("http://" + addr + "/api/servers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /api/servers: %s", resp.Status)
	}
}

func TestStdio(t *testing.T) {
	inTempDir(t)
	// client -> switchboard
	inR, inW := io.Pipe()
	// switchboard -> client
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e := &env{stdin: inR, stdout: outW, stderr: io.Discard, lookupEnv: os.LookupEnv, getwd: os.Getwd}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"stdio"}, e)
		outW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tl := range tools.Tools {
		found = found || tl.Name == "switchboard__get_current_time"
	}
	if !found {
		t.Errorf("tools over stdio: %v", tools.Tools)
	}
	cs.Close()
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stdio: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stdio did not end after the client closed")
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}
