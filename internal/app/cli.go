package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/config"
	"github.com/switchboard-mcp/switchboard/internal/hub"
	"github.com/switchboard-mcp/switchboard/internal/tools"
)

// WriteServers prints each server's status and the built-in tools the
// configuration leaves out, as a table or, with asJSON, as JSON.
func (a *App) WriteServers(w io.Writer, asJSON bool) error {
	st := a.hub.Statuses()
	// Which built-in tools the configuration leaves out, and why.
	missing := a.UnavailableTools()
	if asJSON {
		return writeJSON(w, map[string]any{"servers": st, "unavailableTools": missing})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTRANSPORT\tSTATE\tTOOLS\tRESOURCES\tPROMPTS\tDETAIL")
	for _, s := range st {
		detail := s.LastError
		if detail == "" && s.ServerName != "" {
			detail = s.ServerName + " " + s.ServerVersion
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Transport, s.State, s.Tools, s.Resources+s.ResourceTemplates, s.Prompts, detail)
	}
	tw.Flush()
	for _, s := range st {
		if len(s.StderrTail) > 0 && s.State != hub.StateConnected {
			fmt.Fprintf(w, "\n%s stderr (last lines):\n  %s\n", s.Name, strings.Join(s.StderrTail, "\n  "))
		}
	}
	if len(missing) > 0 {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		slices.Sort(names)
		fmt.Fprintln(w, "\nbuilt-in tools not offered:")
		for _, n := range names {
			fmt.Fprintf(w, "  %s: %s\n", n, missing[n])
		}
	}
	return nil
}

// WriteTools prints every tool of every server (or of server, if not "")
// to w, and notes about servers that are not connected to errw.
func (a *App) WriteTools(w, errw io.Writer, server string, asJSON bool) error {
	type row struct {
		Server      string `json:"server"`
		Name        string `json:"name"`
		Qualified   string `json:"qualifiedName"`
		Description string `json:"description,omitempty"`
		InputSchema any    `json:"inputSchema,omitempty"`
	}
	var rows []row
	for _, c := range a.hub.Conns() {
		if server != "" && server != c.Name() {
			continue
		}
		cat := c.Catalog()
		if cat == nil {
			continue
		}
		for _, t := range cat.Tools {
			rows = append(rows, row{c.Name(), t.Name, hub.QualifiedName(c.Name(), t.Name), t.Description, t.InputSchema})
		}
	}
	if server != "" {
		if _, err := a.hub.Conn(server); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(w, map[string]any{"tools": rows})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tDESCRIPTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Server, r.Name, firstLine(r.Description, 80))
	}
	tw.Flush()
	for _, s := range a.hub.Statuses() {
		if s.State != hub.StateConnected && (server == "" || server == s.Name) {
			fmt.Fprintf(errw, "note: %s is %s: %s\n", s.Name, s.State, s.LastError)
		}
	}
	return nil
}

// Call calls tool of server with arguments and prints the result to w: its
// text or, with asJSON, the whole result. A tool error is an error.
func (a *App) Call(ctx context.Context, w io.Writer, server, tool string, arguments map[string]any, asJSON bool) error {
	c, err := a.hub.Conn(server)
	if err != nil {
		return err
	}
	res, err := c.CallTool(ctx, hub.Caller{Downstream: cliDownstream{}}, &mcp.CallToolParams{Name: tool, Arguments: arguments})
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else {
		printResult(w, res)
	}
	if res.IsError {
		return errors.New("the tool reported an error")
	}
	return nil
}

func printResult(w io.Writer, res *mcp.CallToolResult) {
	printed := false
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			fmt.Fprintln(w, c.Text)
			printed = true
		case *mcp.ImageContent:
			fmt.Fprintf(w, "[image %s, %d bytes]\n", c.MIMEType, len(c.Data))
		case *mcp.AudioContent:
			fmt.Fprintf(w, "[audio %s, %d bytes]\n", c.MIMEType, len(c.Data))
		case *mcp.ResourceLink:
			fmt.Fprintf(w, "[resource link %s]\n", c.URI)
		case *mcp.EmbeddedResource:
			fmt.Fprintf(w, "[resource %s]\n", c.Resource.URI)
		}
	}
	if res.StructuredContent != nil {
		b, _ := json.MarshalIndent(res.StructuredContent, "", "  ")
		if printed {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, string(b))
	}
}

// cliDownstream answers what a server asks of a terminal user: nothing can
// be sampled or asked interactively, so such requests are declined.
type cliDownstream struct{}

func (cliDownstream) CreateMessage(context.Context, *mcp.CreateMessageWithToolsParams) (*mcp.CreateMessageWithToolsResult, error) {
	return nil, errors.New("the command line cannot answer sampling requests")
}
func (cliDownstream) Elicit(context.Context, *mcp.ElicitParams) (*mcp.ElicitResult, error) {
	return &mcp.ElicitResult{Action: "decline"}, nil
}
func (cliDownstream) ListRoots(context.Context, *mcp.ListRootsParams) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []*mcp.Root{}}, nil
}
func (cliDownstream) Log(context.Context, *mcp.LoggingMessageParams) error { return nil }
func (cliDownstream) Progress(context.Context, *mcp.ProgressNotificationParams) error {
	return nil
}
func (cliDownstream) ElicitationComplete(context.Context, *mcp.ElicitationCompleteParams) error {
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n-1] + "…"
	}
	return s
}

// ServeStdio serves the gateway over stdin and stdout until the client
// closes stdin or ctx ends. Acting as a user (Options.User), it serves
// that user's view; otherwise the per-user servers are left out, and
// errw says so once, with the reason for each.
func (a *App) ServeStdio(ctx context.Context, stdin io.Reader, stdout, errw io.Writer) error {
	t := stdioTransport(stdin, stdout)
	var err error
	if p := a.user; p != nil {
		err = a.gw.ServeStdioAs(ctx, t, p.UserID, a.policy.key(*p), func(s string) bool { return a.policy.allows(*p, s) })
	} else {
		a.notePerUser(errw)
		err = a.gw.ServeStdio(ctx, t)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// notePerUser tells the operator which servers run per user, and so are
// not served without --user, and why each does.
func (a *App) notePerUser(w io.Writer) {
	var lines []string
	for _, c := range a.hub.Conns() {
		if c.Name() == hub.BuiltinName || !c.UserScoped() {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %s: %s", c.Name(), perUserReason(c.Config())))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "switchboard: %d per-user server(s) left out; serve them as a user with --user NAME:\n%s\n", len(lines), strings.Join(lines, "\n"))
}

// perUserReason says why a server connects once per user.
func perUserReason(s *config.Server) string {
	if s == nil {
		return "it connects per user"
	}
	var why []string
	if vars := hub.Variables(s); len(vars) > 0 {
		why = append(why, "it needs each user's "+strings.Join(vars, ", "))
	}
	var identity []string
	for _, p := range s.Placeholders() {
		if strings.HasPrefix(p, "LIBRECHAT_") {
			identity = append(identity, "{{"+p+"}}")
		}
	}
	if len(identity) > 0 {
		why = append(why, "it uses the user's identity ("+strings.Join(identity, ", ")+")")
	}
	if s.OBO != nil {
		why = append(why, "it acts on behalf of the user with their sign-in token")
	}
	if len(why) == 0 || s.OAuth != nil || (s.RequiresOAuth != nil && *s.RequiresOAuth) {
		why = append(why, "each user signs in to it (OAuth)")
	}
	return strings.Join(why, "; ")
}

// stdioTransport is the SDK's stdio transport for the process's own
// stdin, else a transport over the given streams (tests).
func stdioTransport(stdin io.Reader, stdout io.Writer) mcp.Transport {
	if f, ok := stdin.(*os.File); ok && f == os.Stdin {
		return &mcp.StdioTransport{}
	}
	return &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// ServeToolsStdio serves the built-in tools alone over stdin and stdout.
func ServeToolsStdio(ctx context.Context, opts *tools.Options, stdin io.Reader, stdout io.Writer) error {
	err := tools.NewServer(opts).Run(ctx, stdioTransport(stdin, stdout))
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// ToolsHandler serves the built-in tools alone over streamable HTTP, to
// loopback origins only (there is no sign-in).
func ToolsHandler(cfg *config.Config, opts *tools.Options) http.Handler {
	h := tools.NewHandler(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxRequestBytes)
		h.ServeHTTP(w, r)
	})
}

func loopbackOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
