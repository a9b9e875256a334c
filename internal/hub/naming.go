package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxNameLen is the longest tool name LLM APIs accept (OpenAI, Anthropic).
const MaxNameLen = 64

// Separator joins a server name and a tool or prompt name in the aggregated
// view.
const Separator = "__"

// Ref names an item of one upstream server.
type Ref struct {
	Server string
	Name   string
}

// QualifiedName returns the aggregated name of server's item name:
// "{server}__{name}" when that fits the 64-character [A-Za-z0-9_-] limit,
// otherwise a shortened, sanitized form ending in a hash of the original pair.
// The result depends only on its arguments, so it is stable across restarts.
func QualifiedName(server, name string) string {
	return qualify(server, name, 8)
}

func qualify(server, name string, hashLen int) string {
	raw := server + Separator + name
	clean := sanitize(raw)
	if clean == raw && len(raw) <= MaxNameLen {
		return raw
	}
	sum := sha256.Sum256([]byte(server + "\x00" + name))
	h := hex.EncodeToString(sum[:])[:hashLen]
	keep := MaxNameLen - len(h) - 1
	if len(clean) > keep {
		clean = clean[:keep]
	}
	return clean + "_" + h
}

func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Names is a lookup table between aggregated names and upstream items.
// Routing always goes through it; names are never split on the separator.
type Names struct {
	toRef  map[string]Ref
	toName map[Ref]string
}

// NewNames builds the table for refs, given in a stable order (config order,
// then the server's own order). A name that would collide with an earlier
// one gets a longer hash until it is unique.
func NewNames(refs []Ref) *Names {
	n := &Names{toRef: make(map[string]Ref, len(refs)), toName: make(map[Ref]string, len(refs))}
	for _, r := range refs {
		if _, dup := n.toName[r]; dup {
			continue
		}
		name := QualifiedName(r.Server, r.Name)
		for hl := 12; ; hl += 4 {
			if _, taken := n.toRef[name]; !taken {
				break
			}
			name = qualify(r.Server, r.Name+"\x00", min(hl, 40))
		}
		n.toRef[name] = r
		n.toName[r] = name
	}
	return n
}

// Lookup returns the item an aggregated name stands for.
func (n *Names) Lookup(name string) (Ref, bool) {
	r, ok := n.toRef[name]
	return r, ok
}

// Name returns the aggregated name of an item.
func (n *Names) Name(r Ref) (string, bool) {
	s, ok := n.toName[r]
	return s, ok
}
