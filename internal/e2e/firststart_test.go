package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var setupLinkRE = regexp.MustCompile(`url="?(http://[^"\s]+/setup\?token=[^"\s]+)`)

// What README's "Sign-in and tokens" promises of a first start: an empty
// data directory gets secrets.json (0600) and switchboard.db, a one-time
// setup link is logged, it creates the admin, who can then sign in; /mcp
// asks for a token meanwhile.
func TestFirstStartSetupLink(t *testing.T) {
	data := filepath.Join(t.TempDir(), "switchboard-data")
	cfg := writeConfig(t, data, "")
	if err := os.Remove(data); err != nil { // serve creates it
		t.Fatal(err)
	}
	in := serve(t, "switchboard", cfg, freeAddr(t))

	for name, wantMode := range map[string]os.FileMode{"secrets.json": 0o600, "switchboard.db": 0} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatalf("first start did not create %s: %v", name, err)
		}
		if wantMode != 0 && fi.Mode().Perm() != wantMode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), wantMode)
		}
	}

	var link string
	for deadline := time.Now().Add(10 * time.Second); link == ""; {
		if m := setupLinkRE.FindStringSubmatch(in.log.String()); m != nil {
			link = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no setup link in the log:\n%s", in.log.String())
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !strings.HasPrefix(link, in.base+"/setup?token=") {
		t.Fatalf("setup link %s is not under %s", link, in.base)
	}
	if r := mcpPost(t, in.base+"/mcp", "", "", initializeMsg); r.status != http.StatusUnauthorized {
		t.Fatalf("/mcp without a token: %d, want 401", r.status)
	}

	b := newBrowser()
	if resp, page := b.do(t, http.MethodGet, link, nil); resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/setup"`) {
		t.Fatalf("setup page: %d %s", resp.StatusCode, page)
	}
	tok := strings.TrimPrefix(link, in.base+"/setup?token=")
	if u, err := url.QueryUnescape(tok); err == nil {
		tok = u
	}
	if resp, page := b.do(t, http.MethodPost, in.base+"/setup", url.Values{"token": {tok}, "username": {"root"}, "password": {password}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("creating the admin: %d %s", resp.StatusCode, page)
	}
	// One-time: the link is spent.
	if resp, _ := newBrowser().do(t, http.MethodGet, link, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("setup link after use: %d, want 400", resp.StatusCode)
	}

	_, tr := signIn(t, in.base, register(t, in.base), in.base+"/mcp", "root")
	sid := openSession(t, in.base+"/mcp", tr.Access)
	if names := toolNames(t, in.base+"/mcp", tr.Access, sid); len(names) == 0 {
		t.Fatal("the admin sees no tools")
	}
}
