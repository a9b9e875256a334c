// Package internal_test keeps the import graph of Switchboard's packages
// pointing one way (see ARCHITECTURE.md): a package may import only the
// internal packages listed for it.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/switchboard-mcp/switchboard/"

// allowed lists, per package, the internal packages its non-test files may
// import. A package missing here may import nothing internal.
var allowed = map[string][]string{
	"cmd/switchboard":                    {"*"},
	"cmd/switchboard-conformance-client": {"internal/hub", "internal/ssrf"},
	"internal/app":                       {"*"},
	"internal/web":                       {"internal/hub", "internal/agent", "internal/authserver", "internal/httpguard"},
	"internal/agent":                     {"internal/llm", "internal/hub"},
	"internal/gateway":                   {"internal/hub", "internal/cluster", "internal/httpguard"},
	"internal/bench":                     {"internal/config", "internal/hub", "internal/gateway", "internal/tools"},
	"internal/hub":                       {"internal/config", "internal/secrets", "internal/ssrf", "internal/store"},
	"internal/tools":                     {"internal/config", "internal/hub", "internal/ssrf"},
	"internal/store":                     {"internal/secrets"},
	"internal/config":                    {},
	"internal/secrets":                   {},
	"internal/llm":                       {},
	"internal/authserver":                {"internal/secrets", "internal/ssrf", "internal/store", "internal/ratelimit"},
	"internal/ssrf":                      {},
	"internal/ratelimit":                 {},
	"internal/cluster":                   {},
	"internal/httpguard":                 {},
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
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
		rel = filepath.ToSlash(rel)
		pkg := owner(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			dep, ok := strings.CutPrefix(p, module)
			if !ok || owner(dep) == pkg {
				continue
			}
			if !permitted(pkg, owner(dep)) {
				t.Errorf("%s imports %s, which %s may not import (allowed: %v)", rel, dep, pkg, allowed[pkg])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// owner maps a directory to the package that owns it: sub-packages such as
// internal/hub/hubtest belong to their parent for this check.
func owner(dir string) string {
	parts := strings.Split(dir, "/")
	if len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return dir
}

func permitted(pkg, dep string) bool {
	list, ok := allowed[pkg]
	if !ok {
		return false
	}
	for _, a := range list {
		if a == "*" || a == dep {
			return true
		}
	}
	return false
}
