// Package internal_test keeps the import graph of Switchboard's packages
// pointing one way (see ARCHITECTURE.md): a package may import only the
// internal packages listed for it. Every package is listed on its own,
// sub-packages included, and test helpers (packages whose name ends in
// "test") are imported by tests only.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchboard-mcp/switchboard/"

// below is what internal/app, the wiring, may import: every package under
// it.
var below = []string{
	"internal/httpguard",
	"internal/agent", "internal/authserver", "internal/authserver/idp", "internal/cluster", "internal/config",
	"internal/gateway", "internal/hub", "internal/hub/oauthclient", "internal/llm", "internal/ratelimit",
	"internal/secrets", "internal/ssrf", "internal/store", "internal/store/postgres", "internal/store/sqlite",
	"internal/store/sqlstore", "internal/tools", "internal/web", "internal/web/ui",
}

// allowed lists, per package, the internal packages its non-test files may
// import.
var allowed = map[string][]string{
	"cmd/switchboard":                    {"internal/app", "internal/config", "internal/bench", "internal/agent"},
	"cmd/switchboard-conformance-client": {"internal/hub/oauthclient", "internal/ssrf"},
	"internal/app":                       below,
	"internal/web":                       {"internal/hub", "internal/agent", "internal/authserver", "internal/httpguard"},
	"internal/web/ui":                    {"internal/agent", "internal/authserver"},
	"internal/agent":                     {"internal/llm", "internal/hub"},
	"internal/gateway":                   {"internal/hub", "internal/cluster", "internal/httpguard"},
	"internal/bench":                     {"internal/config", "internal/hub", "internal/gateway", "internal/tools"},
	"internal/hub":                       {"internal/config", "internal/secrets", "internal/ssrf", "internal/store", "internal/hub/oauthclient"},
	"internal/hub/oauthclient":           {"internal/ssrf"},
	"internal/tools":                     {"internal/config", "internal/hub", "internal/ssrf"},
	"internal/store":                     {"internal/secrets"},
	"internal/store/sqlstore":            {"internal/secrets", "internal/store"},
	"internal/store/sqlite":              {"internal/secrets", "internal/store", "internal/store/sqlstore"},
	"internal/store/postgres":            {"internal/secrets", "internal/store", "internal/store/sqlstore"},
	"internal/config":                    {},
	"internal/secrets":                   {},
	"internal/llm":                       {},
	"internal/authserver":                {"internal/secrets", "internal/ssrf", "internal/store", "internal/ratelimit", "internal/authserver/idp"},
	"internal/authserver/idp":            {},
	"internal/ssrf":                      {},
	"internal/ratelimit":                 {},
	"internal/cluster":                   {},
	"internal/httpguard":                 {},
	"internal/e2e":                       {}, // tests only

	// Test helpers: fakes of the outside world and test upstreams.
	"internal/authserver/idp/idptest":  {"internal/authserver/idp"},
	"internal/hub/hubtest":             {},
	"internal/hub/hubtest/stdioserver": {"internal/hub/hubtest"},
	"internal/llm/llmtest":             {},
	"internal/store/storetest":         {"internal/secrets", "internal/store"},
	"internal/tools/toolstest":         {},
}

// testHelper reports whether pkg is a test helper, which only tests (and
// other test helpers) may import.
func testHelper(pkg string) bool {
	for _, part := range strings.Split(pkg, "/") {
		if strings.HasSuffix(part, "test") {
			return true
		}
	}
	return false
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if pkg == "internal" {
			return nil
		}
		seen[pkg] = true
		list, ok := allowed[pkg]
		if !ok {
			t.Errorf("%s is not in the import-direction table of internal/imports_test.go: add it with what it may import", pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			dep, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), module)
			if !ok || dep == pkg {
				continue
			}
			if testHelper(dep) && !testHelper(pkg) {
				t.Errorf("%s imports the test helper %s, which only tests may import", filepath.ToSlash(filepath.Join(rel, filepath.Base(path))), dep)
				continue
			}
			if !slices.Contains(list, dep) {
				t.Errorf("%s imports %s, which %s may not import (allowed: %v)", filepath.ToSlash(filepath.Join(rel, filepath.Base(path))), dep, pkg, list)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowed {
		if !seen[pkg] && pkg != "internal/e2e" {
			t.Errorf("the import-direction table lists %s, which has no non-test Go files", pkg)
		}
	}
}
