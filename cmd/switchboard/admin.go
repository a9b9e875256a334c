package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/app"
)

// adminState opens the data directory and an authorization server over it
// for the administrative commands.
func adminState(ctx context.Context, cfgPath string, e *env) (*app.Admin, error) {
	cfg, err := loadConfig(cfgPath, e)
	if err != nil {
		return nil, err
	}
	return app.OpenAdmin(ctx, cfg, newLogger(e.stderr, slog.LevelWarn))
}

// cmdUsers: switchboard users add USERNAME [--role admin|user] [--password-stdin]
//
//	switchboard users list
func cmdUsers(ctx context.Context, args []string, e *env) error {
	fs := newFlags("users", e)
	cfgPath := fs.String("config", "", "config file")
	role := fs.String("role", "user", "role of the new user: admin or user")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (default: generate one and print it)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"usage: switchboard users add USERNAME [--role admin|user] [--password-stdin] | switchboard users list"}
	}
	ad, err := adminState(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer ad.Close()
	switch pos[0] {
	case "add":
		if len(pos) != 2 {
			return usageError{"usage: switchboard users add USERNAME"}
		}
		if *role != "admin" && *role != "user" {
			return usageError{fmt.Sprintf("unknown role %q: use admin or user", *role)}
		}
		password, generated := "", false
		if *fromStdin {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			password = strings.TrimRight(line, "\r\n")
		} else {
			b := make([]byte, 18)
			rand.Read(b)
			password, generated = base64.RawURLEncoding.EncodeToString(b), true
		}
		u, err := ad.AddUser(ctx, pos[1], password, *role)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created %s user %s (id %s)\n", u.Role, u.Username, u.ID)
		if generated {
			fmt.Fprintf(e.stdout, "password: %s\n", password)
		}
		return nil
	case "list":
		return ad.WriteUsers(ctx, e.stdout)
	}
	return usageError{fmt.Sprintf("unknown users command %q", pos[0])}
}

// cmdTokens: switchboard tokens create USERNAME [--name NAME]
func cmdTokens(ctx context.Context, args []string, e *env) error {
	fs := newFlags("tokens", e)
	cfgPath := fs.String("config", "", "config file")
	name := fs.String("name", "cli", "a name to recognise the key by")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "create" {
		return usageError{"usage: switchboard tokens create USER [--name NAME] (username or email)"}
	}
	ad, err := adminState(ctx, *cfgPath, e)
	if err != nil {
		return err
	}
	defer ad.Close()
	key, username, err := ad.CreateAPIKey(ctx, pos[1], *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", key)
	fmt.Fprintf(e.stderr, "personal API key for %s created; it is shown once. Use it as: Authorization: Bearer <key>\n", username)
	return nil
}

// cmdSecrets: switchboard secrets rotate [--continue]
//
// Rotation adds a new primary key to the key file, then re-encrypts every
// value sealed with an older key. It can be interrupted and resumed with
// --continue, which re-encrypts without adding another key.
func cmdSecrets(ctx context.Context, args []string, e *env) error {
	fs := newFlags("secrets", e)
	cfgPath := fs.String("config", "", "config file")
	cont := fs.Bool("continue", false, "resume an interrupted rotation without adding a key")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "rotate" {
		return usageError{"usage: switchboard secrets rotate [--continue]"}
	}
	cfg, err := loadConfig(*cfgPath, e)
	if err != nil {
		return err
	}
	return app.RotateSecrets(ctx, cfg, newLogger(e.stderr, slog.LevelWarn), *cont, e.stdout)
}
