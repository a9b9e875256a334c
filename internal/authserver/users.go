package authserver

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	minPassword  = 8
	maxPassword  = 1024
)

// ErrWeakPassword is returned for passwords shorter than 8 characters.
var ErrWeakPassword = errors.New("password must have at least 8 characters")

func hashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword compares in constant time; it also reads hashes written
// with other parameters.
func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// CreateUser creates a local account. Usernames are unique regardless of
// case (store.ErrConflict otherwise).
func (s *Server) CreateUser(ctx context.Context, username, password string, role store.Role) (*store.User, error) {
	username = strings.TrimSpace(username)
	if username == "" || utf8.RuneCountInString(username) > 64 || strings.ContainsAny(username, " \t\r\n") {
		return nil, errors.New("username must be 1 to 64 characters without spaces")
	}
	if utf8.RuneCountInString(password) < minPassword {
		return nil, ErrWeakPassword
	}
	if len(password) > maxPassword {
		return nil, errors.New("password is too long")
	}
	if role != store.RoleAdmin && role != store.RoleUser {
		return nil, fmt.Errorf("unknown role %q", role)
	}
	h, err := hashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Username: username, Role: role, PasswordHash: h}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user %q: %w", username, err)
	}
	return u, nil
}

// authenticate checks a local username and password. It spends the same
// time on unknown users as on known ones.
func (s *Server) authenticate(ctx context.Context, username, password string) (*store.User, bool) {
	u, err := s.st.UserByUsername(ctx, strings.TrimSpace(username))
	if err != nil || u.PasswordHash == "" || len(password) > maxPassword {
		checkPassword(s.dummyHash, password)
		return nil, false
	}
	if !checkPassword(u.PasswordHash, password) || u.Disabled {
		return nil, false
	}
	return u, true
}

const (
	kindSetup = "authserver.setup"
	setupTTL  = 24 * time.Hour
)

// ErrUsersExist: the setup link is only for a store without an admin.
var ErrUsersExist = errors.New("setup link: an admin exists already")

// hasAdmin reports whether any enabled admin exists. Users who signed in
// with an identity provider before an admin existed do not count, so
// their sign-in leaves the setup link valid.
func (s *Server) hasAdmin(ctx context.Context) (bool, error) {
	users, err := s.st.ListUsers(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range users {
		if u.Role == store.RoleAdmin && !u.Disabled {
			return true, nil
		}
	}
	return false, nil
}

// SetupLink returns a one-time URL that creates the first admin account.
// It fails with ErrUsersExist once an admin exists; users from identity
// providers who are not admins do not end it.
func (s *Server) SetupLink(ctx context.Context) (string, error) {
	admin, err := s.hasAdmin(ctx)
	if err != nil {
		return "", err
	}
	if admin {
		return "", ErrUsersExist
	}
	tok := randomToken()
	if err := s.st.PutEphemeral(ctx, kindSetup, hashToken(tok), []byte("admin"), s.now().Add(setupTTL)); err != nil {
		return "", err
	}
	return s.issuer + "/setup?token=" + tok, nil
}

func (s *Server) handleSetupPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 100 {
		s.errorPage(w, r, http.StatusBadRequest, "This setup link is invalid.")
		return
	}
	if _, err := s.st.GetEphemeral(r.Context(), kindSetup, hashToken(tok), s.now()); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This setup link is invalid, expired or was already used.")
		return
	}
	s.renderPage(w, r, http.StatusOK, &pageData{Page: "setup", CSRF: tok})
}

// handleSetup creates the first admin. The setup token is the form's
// secret; it is consumed only when the account is created.
func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Malformed form.")
		return
	}
	tok := r.PostForm.Get("token")
	key := hashToken(tok)
	if _, err := s.st.GetEphemeral(ctx, kindSetup, key, s.now()); tok == "" || err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This setup link is invalid, expired or was already used.")
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	retry := func(m string) {
		s.renderPage(w, r, http.StatusBadRequest, &pageData{Page: "setup", CSRF: tok, Username: username, Error: m})
	}
	if admin, err := s.hasAdmin(ctx); err != nil || admin {
		s.errorPage(w, r, http.StatusConflict, "An admin account exists already; the setup link is no longer valid.")
		return
	}
	if len([]rune(password)) < minPassword {
		retry(ErrWeakPassword.Error())
		return
	}
	if _, err := s.st.TakeEphemeral(ctx, kindSetup, key, s.now()); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "This setup link was already used.")
		return
	}
	if _, err := s.CreateUser(ctx, username, password, store.RoleAdmin); err != nil {
		s.log.Warn("setup: creating admin", errAttr(err))
		s.errorPage(w, r, http.StatusBadRequest, "The account could not be created: "+err.Error())
		return
	}
	s.renderPage(w, r, http.StatusOK, &pageData{Page: "done", Message: msg(pageLang(r), "setup_done")})
}
