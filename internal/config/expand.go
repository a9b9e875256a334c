package config

import (
	"fmt"
	"slices"
	"strings"
)

// unsetVarError is expandEnv's error for a variable that is not set and has
// no default.
type unsetVarError struct{ name string }

func (e *unsetVarError) Error() string {
	return "environment variable " + e.name + " is not set"
}

// expandEnv replaces ${NAME} and ${NAME:-default} in s with values from
// lookupEnv, as LibreChat does for its config. The default is used when NAME
// is unset or empty (as in the shell); it is not itself expanded and may
// contain balanced braces, e.g. ${ID:-{{LIBRECHAT_USER_ID}}}.
//
// "$${" is the escape for a literal "${". No other "$" is special, so values
// such as "pa$$word" or "$HOME" are kept as written, as LibreChat keeps them.
// Expanded values are not scanned again.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			return b.String(), nil
		}
		j += i
		if j > i && s[j-1] == '$' {
			b.WriteString(s[i : j-1])
			b.WriteString("${")
			i = j + 2
			continue
		}
		b.WriteString(s[i:j])
		end := closingBrace(s, j+2)
		if end < 0 {
			return "", fmt.Errorf("unterminated %q (write $${ for a literal ${)", "${")
		}
		ref := s[j+2 : end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !isVarName(name) {
			return "", fmt.Errorf("bad variable reference %q: want ${NAME} or ${NAME:-default} (write $${ for a literal ${)", "${"+ref+"}")
		}
		v, set := lookupEnv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !set:
			return "", &unsetVarError{name: name}
		}
		b.WriteString(v)
		i = end + 1
	}
}

// closingBrace returns the index of the '}' that closes a reference whose
// text starts at start, allowing balanced braces inside, or -1.
func closingBrace(s string, start int) int {
	depth := 0
	for k := start; k < len(s); k++ {
		switch s[k] {
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return k
			}
			depth--
		}
	}
	return -1
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// placeholders returns the names of the {{NAME}} placeholders in s, in order
// of appearance, repeats included. These are filled in per user by the hub
// (LibreChat's {{LIBRECHAT_USER_ID}}, {{LIBRECHAT_USER_EMAIL}}, ... and the
// server's customUserVars); NAME is letters, digits and '_'.
func placeholders(s string) []string {
	var names []string
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return names
		}
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return names
		}
		if isPlaceholderName(s[:j]) {
			names = append(names, s[:j])
			s = s[j+2:]
		}
	}
}

func isPlaceholderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && !('A' <= c && c <= 'Z') && !('a' <= c && c <= 'z') && !('0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// replacePlaceholders returns s with each {{NAME}} placeholder replaced by
// with; used to validate URLs that contain placeholders.
func replacePlaceholders(s, with string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		if name := s[i+2 : i+2+j]; isPlaceholderName(name) {
			b.WriteString(s[:i])
			b.WriteString(with)
			s = s[i+2+j+2:]
			continue
		}
		b.WriteString(s[:i+2])
		s = s[i+2:]
	}
}

// uniqueSorted returns names sorted without repeats.
func uniqueSorted(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
