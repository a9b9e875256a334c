package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
)

const credentialsUsage = "usage: switchboard credentials set SERVER VAR --user USERNAME (value on stdin) | credentials clear SERVER --user USERNAME | credentials status --user USERNAME"

// cmdCredentials manages a user's values for per-user servers:
//
//	switchboard credentials set SERVER VAR --user USERNAME   value from the first line of stdin
//	switchboard credentials clear SERVER --user USERNAME     values and OAuth token (revoked)
//	switchboard credentials status --user USERNAME           per-server state as that user sees it
func cmdCredentials(ctx context.Context, args []string, e *env) error {
	fs := newFlags("credentials", e)
	cfgPath := fs.String("config", "", "config file")
	username := fs.String("user", "", "the user (username or email) whose values these are")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *username == "" {
		return usageError{credentialsUsage}
	}
	ad, err := adminState(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer ad.Close()
	switch {
	case pos[0] == "set" && len(pos) == 3:
		// The value is read from stdin so that it stays out of shell
		// history and process listings.
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 64<<10)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		value := strings.TrimRight(line, "\r\n")
		if value == "" {
			return usageError{"no value on standard input"}
		}
		return ad.SetCredential(ctx, e.stdout, *username, pos[1], pos[2], value)
	case pos[0] == "clear" && len(pos) == 2:
		return ad.ClearCredentials(ctx, e.stdout, *username, pos[1])
	case pos[0] == "status" && len(pos) == 1:
		return ad.WriteCredentialStatus(ctx, e.stdout, *username)
	}
	return usageError{credentialsUsage}
}
