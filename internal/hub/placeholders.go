package hub

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-mcp/switchboard/internal/config"
)

// User is what the hub knows of a signed-in user for placeholders, with
// LibreChat's names: {{LIBRECHAT_USER_ID}}, {{LIBRECHAT_USER_EMAIL}}, ...
type User struct {
	ID       string
	Name     string
	Username string
	Email    string
	Role     string
	Provider string // the identity provider the user signs in with ("local" for a password)
	// Fields holds further user fields by their LibreChat placeholder
	// suffix, e.g. "GOOGLEID", "GITHUBID", "EMAILVERIFIED". Nil: none.
	Fields map[string]string
	// IdPAccessToken is the user's current access token at their identity
	// provider, for {{LIBRECHAT_OPENID_ACCESS_TOKEN}} and
	// {{SWITCHBOARD_IDP_ACCESS_TOKEN}}. Empty: those placeholders stay as
	// written, as in LibreChat when the user has no valid token.
	IdPAccessToken string
	IdPIDToken     string
}

// ErrHeaderValue is returned when a filled-in header value would contain a
// line break or NUL, which could add headers of the caller's choosing.
var ErrHeaderValue = errors.New("header value contains a line break or NUL")

// errArgOption refuses a user's value that would turn an argument into an
// option of the server's program.
var errArgOption = errors.New("a value entered by a user must not start an argument with '-'")

// placeholderVars returns the values of the {{NAME}} placeholders for one
// user, in LibreChat's order of precedence: the server's customUserVars,
// then user fields, then the identity-provider token. userTyped names the
// values that a user entered, which may not start an argument.
func placeholderVars(custom map[string]string, u *User) (vars map[string]string, userTyped map[string]bool) {
	vars = map[string]string{}
	userTyped = map[string]bool{}
	if u != nil {
		set := func(name, v string) {
			if _, taken := vars[name]; !taken {
				vars[name] = v
			}
		}
		// LibreChat skips {{LIBRECHAT_USER_ID}} when the id is empty.
		if u.ID != "" {
			set("LIBRECHAT_USER_ID", u.ID)
		}
		set("LIBRECHAT_USER_NAME", u.Name)
		set("LIBRECHAT_USER_USERNAME", u.Username)
		set("LIBRECHAT_USER_EMAIL", u.Email)
		set("LIBRECHAT_USER_ROLE", u.Role)
		set("LIBRECHAT_USER_PROVIDER", u.Provider)
		for _, k := range slices.Sorted(maps.Keys(u.Fields)) {
			set("LIBRECHAT_USER_"+strings.ToUpper(k), u.Fields[k])
		}
		if u.IdPAccessToken != "" {
			for _, n := range []string{"LIBRECHAT_OPENID_ACCESS_TOKEN", "LIBRECHAT_OPENID_TOKEN", "SWITCHBOARD_IDP_ACCESS_TOKEN"} {
				set(n, u.IdPAccessToken)
			}
			set("LIBRECHAT_OPENID_ID_TOKEN", u.IdPIDToken)
			set("LIBRECHAT_OPENID_USER_ID", u.ID)
			set("LIBRECHAT_OPENID_USER_EMAIL", u.Email)
			name := u.Name
			if name == "" {
				name = u.Username
			}
			set("LIBRECHAT_OPENID_USER_NAME", name)
		}
	}
	// customUserVars come first in LibreChat's processing, so they win.
	for k, v := range custom {
		vars[k] = v
		userTyped[k] = true
	}
	return vars, userTyped
}

// fill replaces each {{NAME}} in s whose NAME is in vars, in one pass: a
// substituted value is never scanned again, so a value that itself holds
// "{{…}}" or "${…}" is passed on literally. Unknown placeholders stay as
// written, as in LibreChat. typedAt reports whether a user-typed value was
// substituted at the very start of s.
func fill(s string, vars map[string]string, userTyped map[string]bool) (out string, typedAt0 bool) {
	if !strings.Contains(s, "{{") {
		return s, false
	}
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			b.WriteString(s[i:])
			return b.String(), typedAt0
		}
		j += i
		k := strings.Index(s[j+2:], "}}")
		if k < 0 {
			b.WriteString(s[i:])
			return b.String(), typedAt0
		}
		name := s[j+2 : j+2+k]
		v, ok := vars[name]
		if !ok {
			// Not ours: keep "{{" and look for the next placeholder just
			// after it, so "{{{{X}}" still finds {{X}}.
			b.WriteString(s[i : j+2])
			i = j + 2
			continue
		}
		b.WriteString(s[i:j])
		if b.Len() == 0 && userTyped[name] && v != "" {
			typedAt0 = true
		}
		b.WriteString(v)
		i = j + 2 + k + 2
	}
}

// resolveServer returns a copy of srv with the user's placeholders filled
// in: url, headers, env, args, oauth and oauth_headers, never command or
// cwd. ${ENV} references were expanded when the admin's config was loaded;
// values from users are not expanded again.
func resolveServer(srv *config.Server, custom map[string]string, u *User) (*config.Server, error) {
	vars, typed := placeholderVars(custom, u)
	out := *srv
	str := func(s string) string { v, _ := fill(s, vars, typed); return v }
	out.URL = str(srv.URL)
	var err error
	if out.Headers, err = fillHeaders(srv.Headers, vars, typed, "headers"); err != nil {
		return nil, err
	}
	if out.OAuthHeaders, err = fillHeaders(srv.OAuthHeaders, vars, typed, "oauth_headers"); err != nil {
		return nil, err
	}
	if srv.Env != nil {
		out.Env = make(map[string]string, len(srv.Env))
		for k, v := range srv.Env {
			fv := str(v)
			if strings.ContainsRune(fv, 0) {
				return nil, fmt.Errorf("env %s: value contains NUL", k)
			}
			out.Env[k] = fv
		}
	}
	if srv.Args != nil {
		out.Args = make([]string, len(srv.Args))
		for i, a := range srv.Args {
			// Each argument stays one argument: the hub passes argv to
			// exec directly, never through a shell.
			fa, typedAt0 := fill(a, vars, typed)
			if typedAt0 && strings.HasPrefix(fa, "-") {
				return nil, fmt.Errorf("args[%d]: %w", i, errArgOption)
			}
			if strings.ContainsRune(fa, 0) {
				return nil, fmt.Errorf("args[%d]: value contains NUL", i)
			}
			out.Args[i] = fa
		}
	}
	if o := srv.OAuth; o != nil {
		oc := *o
		for _, p := range []*string{&oc.AuthorizationURL, &oc.TokenURL, &oc.ClientID, &oc.ClientSecret, &oc.Scope, &oc.RedirectURI, &oc.RevocationEndpoint, &oc.Audience} {
			*p = str(*p)
		}
		out.OAuth = &oc
	}
	return &out, nil
}

func fillHeaders(h map[string]string, vars map[string]string, typed map[string]bool, what string) (map[string]string, error) {
	if h == nil {
		return nil, nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		fv, _ := fill(v, vars, typed)
		ev, err := headerValue(fv)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", what, k, err)
		}
		out[k] = ev
	}
	return out, nil
}

// headerValue checks a filled-in header value and encodes it for the wire.
// Line breaks and NUL are refused. A value outside Latin-1 is sent as "b64:"
// followed by the standard base64 of its UTF-8 bytes, LibreChat's convention
// for user names and other values in any script; Latin-1 values are sent as
// Latin-1 bytes, as Node.js sends them.
func headerValue(v string) (string, error) {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", ErrHeaderValue
	}
	latin1 := true
	ascii := true
	for _, r := range v {
		if r >= utf8.RuneSelf {
			ascii = false
		}
		if r > 0xFF {
			latin1 = false
			break
		}
	}
	switch {
	case ascii:
		return v, nil
	case !latin1 || !utf8.ValidString(v):
		return "b64:" + base64.StdEncoding.EncodeToString([]byte(v)), nil
	}
	b := make([]byte, 0, len(v))
	for _, r := range v {
		b = append(b, byte(r))
	}
	return string(b), nil
}
