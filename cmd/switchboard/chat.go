package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/agent"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

// cmdChat is `switchboard chat`: an interactive (or, with -p, one-shot)
// chat with an agent, in this process or against a running Switchboard.
func cmdChat(ctx context.Context, args []string, e *env) error {
	fs := newFlags("chat", e)
	cfgPath := fs.String("config", "", "config file (local mode)")
	agentName := fs.String("agent", "", "agent to chat with")
	model := fs.String("model", "", "model as provider/model (default: llm.default)")
	var servers stringList
	fs.Var(&servers, "server", "server whose tools the chat may use (repeatable; default: all in the chat menu)")
	prompt := fs.String("p", "", "ask one question, print the answer and exit")
	asJSON := fs.Bool("json", false, "print the run's events as JSON lines")
	remote := fs.String("url", "", "base URL of a running Switchboard to chat through (default: run locally)")
	token := fs.String("token", "", "bearer token or personal API key for --url (default: $SWITCHBOARD_TOKEN)")
	lang := fs.String("lang", "ko", "language of labels and answers: ko or en")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	opts := agent.ChatOptions{
		Agent: *agentName, Model: *model, Servers: servers, Prompt: *prompt, JSON: *asJSON, Language: *lang,
	}
	if *remote != "" {
		opts.Remote = strings.TrimRight(*remote, "/")
		opts.Token = *token
		if opts.Token == "" {
			opts.Token, _ = e.lookupEnv("SWITCHBOARD_TOKEN")
		}
		opts.HTTPClient = http.DefaultClient
	} else {
		a, err := localApp(ctx, *cfgPath, e)
		if err != nil {
			return err
		}
		defer a.Close()
		if len(a.Config().LLM.Providers) == 0 {
			return errors.New("no model configured: add an llm section to the config (see README), or use --url to chat through a running Switchboard")
		}
		host, err := a.AgentHost(newLogger(e.stderr, slog.LevelWarn))
		if err != nil {
			return err
		}
		defer host.Close()
		opts.Host = host
	}
	// Ctrl-C cancels the current run (main leaves SIGINT to this command).
	if opts.Prompt == "" && e.stdin == os.Stdin {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		defer signal.Stop(sig)
		intr := make(chan struct{}, 1)
		opts.Interrupt = intr
		go func() {
			for range sig {
				select {
				case intr <- struct{}{}:
				default:
				}
			}
		}()
	}
	return agent.Chat(ctx, e.stdin, e.stdout, opts)
}
