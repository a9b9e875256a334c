// Command switchboard-conformance-client is the client side of the MCP
// conformance suite (`conformance client --command
// "switchboard-conformance-client"`): it acts as MCP_CONFORMANCE_SCENARIO
// asks, with the scenario's parameters from MCP_CONFORMANCE_CONTEXT, over the
// same streamable HTTP transport and OAuth client the hub uses upstream. It
// mirrors the go-sdk's conformance/everything-client, plus the extension
// scenarios (client credentials, DPoP, enterprise-managed authorization,
// workload identity) that client does not implement.
//
// Usage: switchboard-conformance-client [-v] URL
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hub/oauthclient"
	"github.com/switchboard-mcp/switchboard/internal/ssrf"
)

// version is what the client reports in initialize: the module version,
// or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// conformanceRedirectURL is the callback the suite's authorization servers
// redirect to; nothing listens there: the harness reads the redirect itself.
const conformanceRedirectURL = "http://localhost:3000/callback"

// conformanceClientMetadataURL is the client_id used where an authorization
// server supports Client ID Metadata Documents (the suite checks for it).
const conformanceClientMetadataURL = "https://conformance-test.local/client-metadata.json"

// conformancePolicy lets the harness reach the suite's servers on loopback.
var conformancePolicy = ssrf.Policy{AllowedAddresses: []string{"127.0.0.0/8", "::1/128"}, Timeout: 20 * time.Second}

func main() {
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: switchboard-conformance-client [-v] URL")
		os.Exit(2)
	}
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	if scenario == "" {
		fmt.Fprintln(os.Stderr, "switchboard-conformance-client: MCP_CONFORMANCE_SCENARIO is not set")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, flag.Arg(0), scenario, os.Getenv("MCP_CONFORMANCE_CONTEXT"), *verbose)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard-conformance-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, serverURL, scenario, rawContext string, verbose bool) error {
	var cc conformanceContext
	if rawContext != "" {
		if err := json.Unmarshal([]byte(rawContext), &cc); err != nil {
			return fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
		}
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	h := &conformanceHarness{url: serverURL, scenario: scenario, cc: cc, log: logger}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := h.run(ctx); err != nil {
		return fmt.Errorf("scenario %s: %w", scenario, err)
	}
	return nil
}

// conformanceContext is MCP_CONFORMANCE_CONTEXT, as far as scenarios use it.
type conformanceContext struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	Issuer           string `json:"issuer"`
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	IdPClientID      string `json:"idp_client_id"`
	IdPIDToken       string `json:"idp_id_token"`
	IdPIssuer        string `json:"idp_issuer"`
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
	ValidJWT         string `json:"valid_jwt"`
	ToolCalls        []struct {
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	} `json:"toolCalls"`
}

type conformanceHarness struct {
	url      string
	scenario string
	cc       conformanceContext
	log      *slog.Logger
}

func (h *conformanceHarness) run(ctx context.Context) error {
	if strings.HasPrefix(h.scenario, "auth/") {
		return h.auth(ctx)
	}
	switch h.scenario {
	case "tools_call":
		return h.callNamed(ctx, nil, "add_numbers", map[string]any{"a": 5, "b": 3})
	case "elicitation-sep1034-client-defaults":
		opts := &mcp.ClientOptions{ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
		}}
		return h.callNamed(ctx, opts, "test_client_elicitation_defaults", map[string]any{})
	case "sse-retry":
		return h.callNamed(ctx, nil, "test_reconnection", map[string]any{})
	case "request-metadata":
		cs, err := h.connect(ctx, nil, nil)
		if err != nil {
			return err
		}
		return cs.Close()
	case "json-schema-2020-12-preservation":
		return h.schemaEcho(ctx)
	case "sep-2322-client-request-state":
		return h.multiRoundTrip(ctx)
	case "http-standard-headers":
		return h.standardHeaders(ctx)
	case "http-custom-headers":
		return h.customHeaders(ctx)
	case "http-invalid-tool-headers":
		return h.invalidToolHeaders(ctx)
	}
	// initialize, json-schema-ref-no-deref and scenarios without client
	// actions of their own: connect and list tools.
	cs, err := h.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	_, err = cs.ListTools(ctx, nil)
	return err
}

// connect opens a session over the hub's transport: streamable HTTP with the
// OAuth client's round tripper when oc is non-nil.
func (h *conformanceHarness) connect(ctx context.Context, opts *mcp.ClientOptions, oc *oauthclient.Client) (*mcp.ClientSession, error) {
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if oc != nil {
		rt = oc.Transport(rt)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "switchboard-conformance", Version: version()}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: h.url, HTTPClient: &http.Client{Transport: rt}}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return cs, nil
}

func (h *conformanceHarness) callNamed(ctx context.Context, opts *mcp.ClientOptions, name string, args map[string]any) error {
	cs, err := h.connect(ctx, opts, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	if !slices.ContainsFunc(tools.Tools, func(t *mcp.Tool) bool { return t.Name == name }) {
		return fmt.Errorf("tool %q not found", name)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args}); err != nil {
		return fmt.Errorf("call %s: %w", name, err)
	}
	return nil
}

// schemaEcho sends the focal tool's input schema back as the server received
// it, so the referee sees which JSON Schema 2020-12 keywords survived.
func (h *conformanceHarness) schemaEcho(ctx context.Context) error {
	cs, err := h.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	i := slices.IndexFunc(tools.Tools, func(t *mcp.Tool) bool { return t.Name == "json_schema_2020_12_tool" })
	if i < 0 {
		return errors.New("tool json_schema_2020_12_tool not found")
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "json_schema_echo", Arguments: map[string]any{"schema": tools.Tools[i].InputSchema}})
	return err
}

// multiRoundTrip drives SEP-2322: the SDK answers embedded elicitations
// through the handler and echoes the request state.
func (h *conformanceHarness) multiRoundTrip(ctx context.Context) error {
	opts := &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{}},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirmed": true}}, nil
		},
	}
	cs, err := h.connect(ctx, opts, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	for _, name := range []string{"test_mrtr_echo_state", "test_mrtr_no_state", "test_mrtr_unrelated", "test_mrtr_no_result_type"} {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}}); err != nil {
			h.log.Info("call rejected (expected for some cases)", slog.String("tool", name), slog.String("error", err.Error()))
		}
	}
	return nil
}

func (h *conformanceHarness) standardHeaders(ctx context.Context) error {
	cs, err := h.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	if tools, err := cs.ListTools(ctx, nil); err == nil && len(tools.Tools) > 0 {
		cs.CallTool(ctx, &mcp.CallToolParams{Name: tools.Tools[0].Name, Arguments: map[string]any{}})
	}
	if res, err := cs.ListResources(ctx, nil); err == nil && len(res.Resources) > 0 {
		cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: res.Resources[0].URI})
	}
	if ps, err := cs.ListPrompts(ctx, nil); err == nil && len(ps.Prompts) > 0 {
		cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: ps.Prompts[0].Name, Arguments: map[string]string{}})
	}
	return nil
}

func (h *conformanceHarness) customHeaders(ctx context.Context) error {
	cs, err := h.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	for _, call := range h.cc.ToolCalls {
		args := call.Arguments
		if args == nil {
			args = map[string]any{}
		}
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: call.Name, Arguments: args}); err != nil {
			h.log.Info("call failed", slog.String("tool", call.Name), slog.String("error", err.Error()))
		}
	}
	return nil
}

func (h *conformanceHarness) invalidToolHeaders(ctx context.Context) error {
	cs, err := h.connect(ctx, nil, nil)
	if err != nil {
		return err
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	for _, t := range tools.Tools {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.Name, Arguments: map[string]any{"region": "us-west1"}}); err != nil {
			h.log.Info("call rejected", slog.String("tool", t.Name), slog.String("error", err.Error()))
		}
	}
	return nil
}

// auth runs an authorization scenario: connect through the OAuth client
// configured for the scenario's grant, list tools and call test-tool.
func (h *conformanceHarness) auth(ctx context.Context) error {
	opts, err := h.oauthOptions()
	if err != nil {
		return err
	}
	oc, err := oauthclient.New(h.url, opts)
	if err != nil {
		return err
	}
	cs, err := h.connect(ctx, nil, oc)
	if err != nil {
		return err
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test-tool", Arguments: map[string]any{}}); err != nil {
		return fmt.Errorf("call test-tool: %w", err)
	}
	return nil
}

func (h *conformanceHarness) oauthOptions() (*oauthclient.Options, error) {
	pol := conformancePolicy
	o := &oauthclient.Options{
		SSRF:   &pol,
		Logger: h.log,
	}
	cc := h.cc
	switch {
	case h.scenario == "auth/enterprise-managed-authorization" || cc.IdPIDToken != "":
		o.Grant = oauthclient.GrantEnterprise
		o.Client = &oauthclient.ClientIdentity{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret}
		idToken := cc.IdPIDToken
		o.Enterprise = &oauthclient.Enterprise{
			IDToken:       func(context.Context) (string, error) { return idToken, nil },
			TokenEndpoint: cc.IdPTokenEndpoint,
			ClientID:      cc.IdPClientID,
		}
	case h.scenario == "auth/wif-jwt-bearer" || cc.ValidJWT != "":
		o.Grant = oauthclient.GrantJWTBearer
		if cc.ClientID != "" {
			o.Client = &oauthclient.ClientIdentity{ClientID: cc.ClientID}
		}
		jwt := cc.ValidJWT
		o.Assertion = func(context.Context) (string, error) { return jwt, nil }
	case strings.HasPrefix(h.scenario, "auth/client-credentials") || cc.PrivateKeyPEM != "":
		o.Grant = oauthclient.GrantClientCredentials
		ci := &oauthclient.ClientIdentity{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret, SigningAlg: cc.SigningAlgorithm}
		if cc.PrivateKeyPEM != "" {
			k, err := oauthclient.ParsePrivateKeyPEM([]byte(cc.PrivateKeyPEM))
			if err != nil {
				return nil, fmt.Errorf("private_key_pem: %w", err)
			}
			ci.PrivateKey = k
		}
		o.Client = ci
	default:
		o.RedirectURL = conformanceRedirectURL
		o.ClientMetadataURL = conformanceClientMetadataURL
		o.Authorize = h.followToCallback
		if cc.ClientID != "" {
			o.Client = &oauthclient.ClientIdentity{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret, Issuer: cc.Issuer}
		}
	}
	return o, nil
}

// followToCallback plays the browser: the suite's authorization servers
// approve at once, so following redirects up to the callback URL yields
// the authorization response.
func (h *conformanceHarness) followToCallback(ctx context.Context, authURL string) (string, error) {
	pol := conformancePolicy
	pol.MaxRedirects = -1
	hc := ssrf.NewClient(&pol)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	next := authURL
	for range 5 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return "", fmt.Errorf("authorization endpoint answered %s without a redirect", resp.Status)
		}
		u, err := req.URL.Parse(loc)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(u.String(), conformanceRedirectURL) {
			return u.String(), nil
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", fmt.Errorf("refused redirect to %s", (&url.URL{Scheme: u.Scheme}).String())
		}
		next = u.String()
	}
	return "", errors.New("too many redirects before the callback")
}
