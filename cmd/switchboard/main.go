// Command switchboard is an MCP hub, gateway and agent host in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
)

func main() {
	// A soft memory limit keeps a gateway holding many sessions from
	// growing without bound; GOMEMLIMIT in the environment wins. (A higher
	// GOGC was measured: fewer collections on the hot path, but twice the
	// memory per idle session, so the default stays.)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(256 << 20)
	}
	// Interrupt ends the process, except in the interactive chat, where
	// Ctrl-C cancels the current answer instead.
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if len(os.Args) > 1 && os.Args[1] == "chat" && !slices.Contains(os.Args, "-p") {
		sigs = sigs[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	err := run(ctx, os.Args[1:], &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		lookupEnv: os.LookupEnv, getwd: os.Getwd,
	})
	stop()
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}
