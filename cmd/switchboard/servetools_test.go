package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestServeToolsStdioAndHTTP(t *testing.T) {
	inTempDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// stdio
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve-tools"}, &env{stdin: inR, stdout: outW, stderr: io.Discard, lookupEnv: os.LookupEnv, getwd: os.Getwd})
		outW.Close()
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_current_time", Arguments: map[string]any{"timezone": "UTC"}})
	if err != nil || res.IsError {
		t.Fatalf("get_current_time over stdio: %v %+v", err, res)
	}
	cs.Close()
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("serve-tools (stdio): %v", err)
	}

	// HTTP on a loopback address
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hctx, hcancel := context.WithCancel(ctx)
	hdone := make(chan error, 1)
	e, _, _ := testEnv(nil)
	go func() { hdone <- run(hctx, []string{"serve-tools", "--http", addr}, e) }()
	var hcs *mcp.ClientSession
	deadline := time.Now().Add(10 * time.Second)
	for {
		hcs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/"}, nil)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	tl, err := hcs.ListTools(ctx, nil)
	if err != nil || len(tl.Tools) == 0 || tl.Tools[0].Name == "" {
		t.Fatalf("tools over HTTP: %v %+v", err, tl)
	}
	hcs.Close()
	hcancel()
	if err := <-hdone; err != nil {
		t.Errorf("serve-tools (http): %v", err)
	}

	// Not on a public address: there is no sign-in.
	err = run(ctx, []string{"serve-tools", "--http", "0.0.0.0:0"}, e)
	var u usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("public address: err = %v; want a usage error about loopback", err)
	}
}
