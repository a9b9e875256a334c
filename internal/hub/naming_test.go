package hub_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func TestQualifiedName(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		server, name string
		want         string // "" when the name is shortened: then only its prefix is checked
		prefix       string
	}{
		{server: "github", name: "create_issue", want: "github__create_issue"},
		{server: "my-server", name: "Tool-1", want: "my-server__Tool-1"},
		{server: "s", name: strings.Repeat("n", 61), want: "s__" + strings.Repeat("n", 61)}, // exactly 64
		{server: "s", name: strings.Repeat("n", 62), prefix: "s__" + strings.Repeat("n", 52) + "_"},
		{server: "fs", name: "read.file", prefix: "fs__read_file_"},
		{server: "my server", name: "tool", prefix: "my_server__tool_"},
		{server: "kr", name: "검색", prefix: "kr__" + strings.Repeat("_", len("검색")) + "_"},
		{server: long, name: "x", prefix: long[:55] + "_"},
		{server: "a", name: "b/c", prefix: "a__b_c_"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20s/%.20s", tt.server, tt.name), func(t *testing.T) {
			got := hub.QualifiedName(tt.server, tt.name)
			if !validName.MatchString(got) {
				t.Errorf("QualifiedName(%q, %q) = %q, not a valid tool name", tt.server, tt.name, got)
			}
			if again := hub.QualifiedName(tt.server, tt.name); again != got {
				t.Errorf("QualifiedName is not stable: %q then %q", got, again)
			}
			if tt.want != "" {
				if got != tt.want {
					t.Errorf("QualifiedName(%q, %q) = %q, want %q", tt.server, tt.name, got, tt.want)
				}
				return
			}
			if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+8 {
				t.Errorf("QualifiedName(%q, %q) = %q, want %q and an 8-digit hash", tt.server, tt.name, got, tt.prefix)
			}
		})
	}
}

// Names that sanitize or truncate to the same text stay apart by their hash.
func TestQualifiedNameDistinct(t *testing.T) {
	long := strings.Repeat("t", 80)
	pairs := [][2]hub.Ref{
		{{"a", "b.c"}, {"a", "b c"}},
		{{"a", "b.c"}, {"a", "b_c"}},
		{{"srv", long + "1"}, {"srv", long + "2"}},
		{{"x y", "z"}, {"x.y", "z"}},
		{{"a", "b"}, {"a", "b_"}},
	}
	for _, p := range pairs {
		a, b := hub.QualifiedName(p[0].Server, p[0].Name), hub.QualifiedName(p[1].Server, p[1].Name)
		if a == b {
			t.Errorf("%v and %v are both named %q", p[0], p[1], a)
		}
	}
}

func TestNewNames(t *testing.T) {
	tests := []struct {
		name string
		refs []hub.Ref
		want map[hub.Ref]string // "" for a name that must only be valid and unique
	}{
		{
			name: "plain",
			refs: []hub.Ref{{"github", "create_issue"}, {"github", "list"}, {"fs", "list"}},
			want: map[hub.Ref]string{
				{"github", "create_issue"}: "github__create_issue",
				{"github", "list"}:         "github__list",
				{"fs", "list"}:             "fs__list",
			},
		},
		{
			// The separator may occur in server and tool names: the first
			// keeps the plain name, the second gets a hash.
			name: "separator in names",
			refs: []hub.Ref{{"a__b", "c"}, {"a", "b__c"}},
			want: map[hub.Ref]string{{"a__b", "c"}: "a__b__c", {"a", "b__c"}: ""},
		},
		{
			name: "trailing and leading underscores",
			refs: []hub.Ref{{"a_", "b"}, {"a", "_b"}},
			want: map[hub.Ref]string{{"a_", "b"}: "a___b", {"a", "_b"}: ""},
		},
		{
			// A tool named like another's shortened name.
			name: "name like a hash",
			refs: []hub.Ref{{"fs", "read.file"}, {"fs", strings.TrimPrefix(hub.QualifiedName("fs", "read.file"), "fs__")}},
			want: map[hub.Ref]string{{"fs", "read.file"}: hub.QualifiedName("fs", "read.file")},
		},
		{
			name: "duplicates",
			refs: []hub.Ref{{"s", "t"}, {"s", "t"}},
			want: map[hub.Ref]string{{"s", "t"}: "s__t"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := hub.NewNames(tt.refs)
			checkNames(t, n, tt.refs)
			for r, want := range tt.want {
				got, _ := n.Name(r)
				if want != "" && got != want {
					t.Errorf("Name(%v) = %q, want %q", r, got, want)
				}
			}
			again := hub.NewNames(tt.refs)
			for _, r := range tt.refs {
				a, _ := n.Name(r)
				b, _ := again.Name(r)
				if a != b {
					t.Errorf("Name(%v) is not stable: %q then %q", r, a, b)
				}
			}
		})
	}
	if _, ok := hub.NewNames(nil).Lookup("x__y"); ok {
		t.Error("empty table found a name")
	}
}

// checkNames asserts that every ref has a valid name of its own that leads
// back to it.
func checkNames(t *testing.T, n *hub.Names, refs []hub.Ref) {
	t.Helper()
	byName := make(map[string]hub.Ref)
	for _, r := range refs {
		name, ok := n.Name(r)
		if !ok {
			t.Errorf("no name for %v", r)
			continue
		}
		if !validName.MatchString(name) {
			t.Errorf("Name(%v) = %q, not a valid tool name", r, name)
		}
		if other, dup := byName[name]; dup && other != r {
			t.Errorf("%v and %v are both named %q", other, r, name)
		}
		byName[name] = r
		if diff := cmp.Diff(r, mustLookup(t, n, name)); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", name, diff)
		}
	}
}

func mustLookup(t *testing.T, n *hub.Names, name string) hub.Ref {
	t.Helper()
	r, ok := n.Lookup(name)
	if !ok {
		t.Errorf("Lookup(%q): not found", name)
	}
	return r
}

func FuzzQualifiedName(f *testing.F) {
	f.Add("github", "create_issue", "a", "b")
	f.Add("a__b", "c", "a", "b__c")
	f.Add("my server", "read.file", "my_server", "read_file")
	f.Add(strings.Repeat("s", 40), strings.Repeat("n", 40), strings.Repeat("s", 40), strings.Repeat("n", 41))
	f.Add("kr", "검색", "", "")
	f.Fuzz(func(t *testing.T, s1, n1, s2, n2 string) {
		q := hub.QualifiedName(s1, n1)
		if !validName.MatchString(q) {
			t.Fatalf("QualifiedName(%q, %q) = %q, not a valid tool name", s1, n1, q)
		}
		if hub.QualifiedName(s1, n1) != q {
			t.Fatalf("QualifiedName(%q, %q) is not stable", s1, n1)
		}
		if raw := s1 + hub.Separator + n1; len(raw) <= hub.MaxNameLen && validName.MatchString(raw) && q != raw {
			t.Fatalf("QualifiedName(%q, %q) = %q, want it unchanged", s1, n1, q)
		}
		// Whatever collides, the table keeps every item apart.
		refs := []hub.Ref{{s1, n1}, {s2, n2}, {s1, n2}, {s2, n1}}
		checkNames(t, hub.NewNames(refs), refs)
	})
}
