package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/switchboard-mcp/switchboard/internal/store"
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
	u, err := ad.Store().UserByUsername(ctx, *username)
	if errors.Is(err, store.ErrNotFound) {
		u, err = ad.Store().UserByEmail(ctx, *username)
	}
	if err != nil {
		return fmt.Errorf("user %q: %w", *username, err)
	}
	h := ad.NewHub()
	defer h.Close()
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
		if err := h.SetCredentials(ctx, u.ID, pos[1], map[string]string{pos[2]: value}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "saved %s for %s on %s\n", pos[2], u.Username, pos[1])
		return nil
	case pos[0] == "clear" && len(pos) == 2:
		if err := h.DeleteCredentials(ctx, u.ID, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "cleared %s's values for %s\n", u.Username, pos[1])
		return nil
	case pos[0] == "status" && len(pos) == 1:
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVER\tSTATE\tAUTHORIZATION\tMISSING\tDETAIL")
		for _, s := range h.StatusesFor(ctx, u.ID) {
			if !s.UserScoped {
				continue
			}
			detail := s.LastError
			if s.OAuthURL != "" {
				detail = "authorize at " + s.OAuthURL
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Authorization, strings.Join(s.MissingVariables, ","), detail)
		}
		return tw.Flush()
	}
	return usageError{credentialsUsage}
}
