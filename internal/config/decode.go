package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// decoder walks the YAML syntax tree of one file and collects every error.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	errs      ErrorList
	anchors   map[string]ast.Node
	merges    int // mappings merged so far, see maxMerges
}

// maxMerges bounds how many mappings "<<" merge keys may pull in per file:
// merges of merges grow exponentially (YAML's "billion laughs").
const maxMerges = 1000

func (d *decoder) pos(n ast.Node) Position {
	if n == nil {
		return Position{File: d.file}
	}
	return d.tokenPos(n.GetToken())
}

func (d *decoder) tokenPos(tk *token.Token) Position {
	if tk == nil || tk.Position == nil {
		return Position{File: d.file}
	}
	return Position{File: d.file, Line: tk.Position.Line, Col: tk.Position.Column}
}

func (d *decoder) errorf(n ast.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) errorAt(p Position, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// tokenError is implemented by goccy/go-yaml's syntax errors.
type tokenError interface {
	GetToken() *token.Token
	GetMessage() string
}

// parse returns the body of the file's only document, or nil when the file
// is empty.
func (d *decoder) parse(data []byte) ast.Node {
	// Duplicate keys are reported by mapping, with both positions, and
	// without stopping at the first.
	// Editors on Windows may start a file with a byte order mark, which
	// would otherwise become part of the first key.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		var te tokenError
		if errors.As(err, &te) {
			d.errorAt(d.tokenPos(te.GetToken()), "yaml: %s", te.GetMessage())
		} else {
			d.errorAt(Position{File: d.file}, "yaml: %v", err)
		}
		return nil
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, ok := doc.Body.(*ast.CommentGroupNode); ok {
			continue
		}
		if body != nil {
			d.errorf(doc.Body, "a config file holds one YAML document; found another")
			continue
		}
		body = doc.Body
	}
	d.anchors = map[string]ast.Node{}
	collectAnchors(body, d.anchors)
	return body
}

func collectAnchors(n ast.Node, anchors map[string]ast.Node) {
	switch n := n.(type) {
	case *ast.AnchorNode:
		if n.Name != nil {
			anchors[n.Name.GetToken().Value] = n.Value
		}
		collectAnchors(n.Value, anchors)
	case *ast.TagNode:
		collectAnchors(n.Value, anchors)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			collectAnchors(mv.Value, anchors)
		}
	case *ast.MappingValueNode:
		collectAnchors(n.Value, anchors)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			collectAnchors(v, anchors)
		}
	}
}

// resolve looks through anchors, tags and aliases to the node that holds the
// value. An alias to an unknown anchor resolves to nil after an error.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			name := ""
			if v.Value != nil {
				name = v.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.errorf(v, "unknown alias *%s", name)
				return nil
			}
			n = target
		default:
			return n
		}
	}
	d.errorf(n, "too many nested aliases")
	return nil
}

func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// kind names a node's type for error messages.
func kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	default:
		return "an unsupported YAML node"
	}
}

// field is one key of a mapping.
type field struct {
	key   string
	keyN  ast.Node // for positions
	value ast.Node // unresolved
}

// mapping returns the fields of n, a mapping, in file order, with "<<" merge
// keys applied (explicit keys win). what names the value in error messages.
// A null value is an empty mapping. ok is false after a type error.
func (d *decoder) mapping(n ast.Node, what string) (fields []field, ok bool) {
	return d.mappingMerging(n, what, nil)
}

// mappingMerging is mapping; merging holds the mappings whose merge keys
// are being applied, to refuse a mapping that merges itself.
func (d *decoder) mappingMerging(n ast.Node, what string, merging []*ast.MappingNode) ([]field, bool) {
	r := d.resolve(n)
	if isNull(r) {
		return nil, true
	}
	m, isMap := r.(*ast.MappingNode)
	if !isMap {
		d.errorf(r, "%s must be a mapping, got %s", what, kind(r))
		return nil, false
	}
	explicit := map[string]ast.Node{}
	for _, mv := range m.Values {
		if mv.Key == nil || mv.Key.IsMergeKey() {
			continue
		}
		key, ok := d.keyText(mv.Key)
		if !ok {
			continue
		}
		if first, dup := explicit[key]; dup {
			d.errorf(mv.Key, "duplicate key %q (first defined at %d:%d)", key, d.pos(first).Line, d.pos(first).Col)
			continue
		}
		explicit[key] = mv.Key
	}
	var fields []field
	seen := map[string]bool{}
	for _, mv := range m.Values {
		if mv.Key == nil {
			continue
		}
		if mv.Key.IsMergeKey() {
			for _, src := range d.mergeSources(mv.Value) {
				if sm, ok := d.resolve(src).(*ast.MappingNode); ok && (sm == m || slices.Contains(merging, sm)) {
					d.errorf(src, "a mapping cannot merge itself")
					continue
				}
				if d.merges++; d.merges > maxMerges {
					if d.merges == maxMerges+1 {
						d.errorf(src, "too many merges (more than %d)", maxMerges)
					}
					continue
				}
				merged, _ := d.mappingMerging(src, "a merged value", append(merging, m))
				for _, f := range merged {
					if _, ok := explicit[f.key]; ok || seen[f.key] {
						continue
					}
					seen[f.key] = true
					fields = append(fields, f)
				}
			}
			continue
		}
		key, ok := d.keyText(mv.Key)
		if !ok || seen[key] || explicit[key] != mv.Key {
			continue
		}
		seen[key] = true
		fields = append(fields, field{key: key, keyN: mv.Key, value: mv.Value})
	}
	return fields, true
}

// mergeSources returns the mappings named by the value of a "<<" key: one
// alias or a list of them.
func (d *decoder) mergeSources(n ast.Node) []ast.Node {
	if seq, ok := d.resolve(n).(*ast.SequenceNode); ok {
		return seq.Values
	}
	return []ast.Node{n}
}

func (d *decoder) keyText(k ast.Node) (string, bool) {
	switch r := d.resolve(k).(type) {
	case *ast.StringNode:
		return r.Value, true
	case ast.ScalarNode:
		if tk := r.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	d.errorf(k, "mapping keys must be plain values, got %s", kind(d.resolve(k)))
	return "", false
}

// unknownKey reports a key that is not in known, suggesting the closest.
func (d *decoder) unknownKey(f field, where string, known []string) {
	if s := suggest(f.key, known); s != "" {
		d.errorf(f.keyN, "unknown key %q in %s; did you mean %q?", f.key, where, s)
		return
	}
	d.errorf(f.keyN, "unknown key %q in %s", f.key, where)
}

// rawString returns a scalar's text without expanding it. Numbers and
// booleans are accepted only when lenient, as the text written in the file
// (an env value of 0755 stays "0755", as Node would see it from a quoted
// string). present is false for null.
func (d *decoder) rawString(n ast.Node, what string, lenient bool) (s string, present, ok bool) {
	r := d.resolve(n)
	switch v := r.(type) {
	case nil, *ast.NullNode:
		return "", false, true
	case *ast.StringNode:
		return v.Value, true, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true, true
		}
		return v.Value.Value, true, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if lenient {
			return v.GetToken().Value, true, true
		}
	}
	d.errorf(r, "%s must be a string, got %s", what, kind(r))
	return "", true, false
}

// str returns a string value with ${VAR} references expanded.
func (d *decoder) str(n ast.Node, what string) (string, bool) {
	return d.strMode(n, what, false)
}

func (d *decoder) strMode(n ast.Node, what string, lenient bool) (string, bool) {
	s, present, ok := d.rawString(n, what, lenient)
	if !present || !ok {
		return "", ok
	}
	out, err := expandEnv(s, d.lookupEnv)
	if err != nil {
		d.errorf(d.resolve(n), "%s: %v", what, err)
		return "", false
	}
	return out, true
}

// expandedScalar returns the text of a scalar that is to be read as a number
// or boolean: written as such, or as a string holding ${VAR} references.
func (d *decoder) expandedScalar(r ast.Node, what string) (string, bool) {
	s, ok := r.(*ast.StringNode)
	if !ok || !strings.Contains(s.Value, "${") {
		return "", false
	}
	out, err := expandEnv(s.Value, d.lookupEnv)
	if err != nil {
		d.errorf(r, "%s: %v", what, err)
		return "", false
	}
	return strings.TrimSpace(out), true
}

// boolean returns a boolean value; present is false for null.
func (d *decoder) boolean(n ast.Node, what string) (v, present, ok bool) {
	r := d.resolve(n)
	switch b := r.(type) {
	case nil, *ast.NullNode:
		return false, false, true
	case *ast.BoolNode:
		return b.Value, true, true
	}
	if s, expanded := d.expandedScalar(r, what); expanded {
		if v, err := strconv.ParseBool(s); err == nil {
			return v, true, true
		}
		d.errorf(r, "%s must be true or false, got %q", what, s)
		return false, true, false
	}
	d.errorf(r, "%s must be true or false, got %s", what, kind(r))
	return false, true, false
}

// integer returns a whole number; present is false for null.
func (d *decoder) integer(n ast.Node, what string) (v int64, present, ok bool) {
	r := d.resolve(n)
	switch x := r.(type) {
	case nil, *ast.NullNode:
		return 0, false, true
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			return i, true, true
		case uint64:
			if i <= math.MaxInt64 {
				return int64(i), true, true
			}
		}
		d.errorf(r, "%s is too large", what)
		return 0, true, false
	case *ast.FloatNode:
		if x.Value == math.Trunc(x.Value) && math.Abs(x.Value) < 1<<62 {
			return int64(x.Value), true, true
		}
		d.errorf(r, "%s must be a whole number, got %s", what, x.GetToken().Value)
		return 0, true, false
	}
	if s, expanded := d.expandedScalar(r, what); expanded {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, true, true
		}
		d.errorf(r, "%s must be a whole number, got %q", what, s)
		return 0, true, false
	}
	if s, ok := r.(*ast.StringNode); ok && s.Token != nil && s.Token.Type == token.StringType && isDigits(s.Value) {
		// The YAML parser keeps integers too large for 64 bits as strings.
		d.errorf(r, "%s is too large", what)
		return 0, true, false
	}
	d.errorf(r, "%s must be a whole number, got %s", what, kind(r))
	return 0, true, false
}

func isDigits(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// strList returns a list of strings, each expanded. lenient accepts numbers
// and booleans as their text.
func (d *decoder) strList(n ast.Node, what string, lenient bool) ([]string, bool) {
	r := d.resolve(n)
	if isNull(r) {
		return nil, true
	}
	seq, isSeq := r.(*ast.SequenceNode)
	if !isSeq {
		d.errorf(r, "%s must be a list of strings, got %s", what, kind(r))
		return nil, false
	}
	out := make([]string, 0, len(seq.Values))
	ok := true
	for i, v := range seq.Values {
		s, good := d.strMode(v, fmt.Sprintf("%s[%d]", what, i), lenient)
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

// strMap returns a mapping of string to string, values expanded. Numbers and
// booleans are accepted as values (YAML "PORT: 8080" is meant as a string).
func (d *decoder) strMap(n ast.Node, what string) (map[string]string, bool) {
	fields, ok := d.mapping(n, what)
	if !ok || len(fields) == 0 {
		return nil, ok
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		s, good := d.strMode(f.value, fmt.Sprintf("%s.%s", what, f.key), true)
		ok = ok && good
		out[f.key] = s
	}
	return out, ok
}

// suggest returns the entry of known closest to key when it is near enough to
// be a typo, else "".
func suggest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	best, bestDist := "", math.MaxInt
	lk := strings.ToLower(key)
	for _, k := range known {
		dist := editDistance(lk, strings.ToLower(k))
		// Short names need a closer match, or every short key would
		// look like a typo of some other.
		limit := min(2, max(1, len(k)/3))
		if dist <= limit && dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein plus swaps of adjacent bytes, so "titel" is 1 from "title").
func editDistance(a, b string) int {
	// rows[i%3] is row i of the usual dynamic programming table.
	var rows [3][]int
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur, prev, prev2 := rows[i%3], rows[(i-1)%3], rows[(i+1)%3]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
	}
	return rows[len(a)%3][len(b)]
}
