package oauthclient

import (
	"net/http"
	"strings"
)

// challenge is one WWW-Authenticate challenge (RFC 9110 §11.6.1).
type challenge struct {
	scheme string            // lower case
	params map[string]string // keys lower case
}

// parseChallenges parses WWW-Authenticate header values. It is lenient:
// malformed input yields what could be read before the error.
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, v := range h.Values("WWW-Authenticate") {
		out = append(out, parseChallenge(v)...)
	}
	return out
}

func parseChallenge(s string) []challenge {
	var out []challenge
	p := &lexer{s: s}
	for {
		p.skip(" \t,")
		if p.done() {
			return out
		}
		scheme := p.token()
		if scheme == "" {
			return out // not a token: give up
		}
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		p.skip(" \t")
		for !p.done() {
			p.skip(" \t")
			save := p.i
			name := p.token()
			p.skip(" \t")
			if name == "" || !p.eat('=') {
				p.i = save
				if name != "" && len(ch.params) == 0 {
					p.token68() // e.g. "Basic dXNlcg=="; not used
				}
				break
			}
			if len(ch.params) == 0 && (p.done() || p.peek() == '=' || p.peek() == ',') {
				p.skip("=") // a token68 with base64 padding, not a parameter
				break
			}
			p.skip(" \t")
			var val string
			if p.peek() == '"' {
				val = p.quoted()
			} else {
				val = p.token68()
			}
			ch.params[strings.ToLower(name)] = val
			p.skip(" \t")
			if !p.eat(',') || !p.paramFollows() {
				break
			}
		}
		out = append(out, ch)
		if !p.done() && p.peek() != ',' && p.peek() != ' ' && p.peek() != '\t' {
			return out // garbage
		}
	}
}

// paramFollows reports whether the next item is "name=" (a parameter of the
// current challenge) rather than a new challenge's scheme.
func (p *lexer) paramFollows() bool {
	q := &lexer{s: p.s, i: p.i}
	q.skip(" \t,")
	if q.token() == "" {
		return false
	}
	q.skip(" \t")
	return q.eat('=')
}

type lexer struct {
	s string
	i int
}

func (p *lexer) done() bool { return p.i >= len(p.s) }

func (p *lexer) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *lexer) eat(b byte) bool {
	if p.peek() == b && !p.done() {
		p.i++
		return true
	}
	return false
}

func (p *lexer) skip(set string) {
	for !p.done() && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// isTchar reports RFC 9110 §5.6.2 token characters.
func isTchar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

func (p *lexer) token() string {
	start := p.i
	for !p.done() && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// token68 also reads the '/' and '=' that base64 values contain.
func (p *lexer) token68() string {
	start := p.i
	for !p.done() && (isTchar(p.s[p.i]) || p.s[p.i] == '/' || p.s[p.i] == '=') {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *lexer) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if !p.done() {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// challengeParam returns the first value of a parameter in any challenge.
func challengeParam(chs []challenge, name string) string {
	for _, c := range chs {
		if v := c.params[name]; v != "" {
			return v
		}
	}
	return ""
}

// challengeScopes returns the scopes a Bearer or DPoP challenge names.
func challengeScopes(chs []challenge) []string {
	for _, c := range chs {
		if c.scheme != "bearer" && c.scheme != "dpop" {
			continue
		}
		if s := strings.Fields(c.params["scope"]); len(s) > 0 {
			return s
		}
	}
	return nil
}

func challengeError(chs []challenge) string { return challengeParam(chs, "error") }

func dpopChallenged(chs []challenge) bool {
	for _, c := range chs {
		if c.scheme == "dpop" {
			return true
		}
	}
	return false
}
