package hub

import (
	"bytes"
	"strings"
	"sync"
)

// ring is a bounded buffer that keeps the last bytes written to it, used for a
// stdio server's stderr. Writes never block and never fail.
type ring struct {
	mu   sync.Mutex // guards the fields below
	buf  []byte
	size int
	full bool
	pos  int
	// onLine, if set, receives each complete line (without the newline).
	onLine  func(string)
	partial []byte
}

// newRing returns a ring of size bytes. The buffer is allocated on the
// first write: most bindings (HTTP ones) never write to theirs.
func newRing(size int, onLine func(string)) *ring {
	return &ring{size: size, onLine: onLine}
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	if r.buf == nil {
		r.buf = make([]byte, r.size)
	}
	n := len(p)
	data := p
	if len(data) > r.size {
		data = data[len(data)-r.size:]
	}
	for len(data) > 0 {
		c := copy(r.buf[r.pos:], data)
		r.pos += c
		data = data[c:]
		if r.pos == r.size {
			r.pos = 0
			r.full = true
		}
	}
	var lines []string
	if r.onLine != nil {
		r.partial = append(r.partial, p...)
		for {
			i := bytes.IndexByte(r.partial, '\n')
			if i < 0 {
				break
			}
			lines = append(lines, string(r.partial[:i]))
			r.partial = r.partial[i+1:]
		}
		if len(r.partial) > 1024 { // a line without end: emit what we have
			lines = append(lines, string(r.partial))
			r.partial = r.partial[:0]
		}
	}
	onLine := r.onLine
	r.mu.Unlock()
	for _, l := range lines {
		onLine(l)
	}
	return n, nil
}

// Tail returns up to n last lines.
func (r *ring) Tail(n int) []string {
	r.mu.Lock()
	var b []byte
	if r.full {
		b = append(append(b, r.buf[r.pos:]...), r.buf[:r.pos]...)
	} else {
		b = append(b, r.buf[:r.pos]...)
	}
	full := r.full
	r.mu.Unlock()
	s := strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if full && len(lines) > 1 {
		lines = lines[1:] // the first line was cut by the wrap
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
