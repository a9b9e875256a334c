package hub

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// urlPattern finds URLs in error text. Errors from HTTP clients quote the
// URL they failed on, and server URLs in configs often carry credentials in
// their query (Smithery-style ?api_key=) or user info.
var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redactURLs removes user info and query values from the URLs in s, so that
// an error can be shown in status, logs and tool results without the
// secrets a URL may hold.
func redactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, func(m string) string {
		u, err := url.Parse(m)
		if err != nil || (u.User == nil && u.RawQuery == "") {
			return m
		}
		u.User = nil
		q := u.RawQuery
		u.RawQuery = ""
		out := u.String()
		if q != "" {
			var keys []string
			for _, kv := range strings.Split(q, "&") {
				k, _, _ := strings.Cut(kv, "=")
				keys = append(keys, k+"=…")
			}
			out += "?" + strings.Join(keys, "&")
		}
		return out
	})
}

// redactedError shows its cause with URLs redacted; errors.Is and errors.As
// still see the cause.
type redactedError struct{ err error }

func (e redactedError) Error() string { return redactURLs(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

func redactErr(err error) error {
	if err == nil {
		return nil
	}
	if _, done := err.(redactedError); done {
		return err
	}
	// The authorization link is meant for the user, query and all.
	var ae *AuthorizationError
	if errors.As(err, &ae) {
		return err
	}
	return redactedError{err}
}
