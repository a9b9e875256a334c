package authserver

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// parseTokenForm reads an application/x-www-form-urlencoded body, rejecting
// repeated parameters (RFC 6749 §3.2).
func parseTokenForm(w http.ResponseWriter, r *http.Request) *oauthErr {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errInvalidRequest("malformed body")
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 && k != "resource" {
			return errInvalidRequest(k + " given more than once")
		}
	}
	return nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if e := parseTokenForm(w, r); e != nil {
		writeOAuthError(w, e, false)
		return
	}
	c, basic, e := s.authenticateClient(r.Context(), r)
	if e != nil {
		writeOAuthError(w, e, basic)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, e = s.redeemCode(r.Context(), r, c)
	case "refresh_token":
		if !slices.Contains(c.GrantTypes, "refresh_token") {
			e = &oauthErr{http.StatusBadRequest, "unauthorized_client", "the client may not use refresh tokens"}
			break
		}
		resp, e = s.refresh(r.Context(), r, c)
	case "":
		e = errInvalidRequest("grant_type is required")
	default:
		e = &oauthErr{http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type"}
	}
	if e != nil {
		writeOAuthError(w, e, basic)
		return
	}
	if err := s.st.TouchClient(r.Context(), c.ID, s.now()); err != nil {
		s.log.Warn("touching client", slogClient(c.ID), errAttr(err))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// familyOf derives the refresh-token family of a code from its hash, so
// that a replay racing the first redemption can revoke the family before
// MarkCodeIssued has recorded it.
func familyOf(codeHash string) string { return "fam_" + hashToken("family\x00" + codeHash)[:40] }

var errServer = &oauthErr{http.StatusInternalServerError, "server_error", "internal error"}

func (s *Server) redeemCode(ctx context.Context, r *http.Request, c *store.Client) (*tokenResponse, *oauthErr) {
	code := r.PostForm.Get("code")
	if code == "" || len(code) > 200 {
		return nil, errInvalidRequest("code is required")
	}
	now := s.now()
	hash := hashToken(code)
	ac, err := s.st.ConsumeAuthCode(ctx, hash, now)
	switch {
	case errors.Is(err, store.ErrUsed):
		// RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a replayed code revokes the
		// tokens its first redemption issued.
		fam := familyOf(hash)
		if ac != nil && ac.FamilyID != "" {
			fam = ac.FamilyID
		}
		if err := s.st.RevokeFamily(ctx, fam, now); err != nil {
			s.log.Error("revoking family of replayed code", errAttr(err))
		}
		s.cache.drop("fam:" + fam)
		s.log.Warn("authorization code replayed; its tokens are revoked", slogClient(c.ID))
		return nil, errInvalidGrant("the authorization code was already used")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return nil, errInvalidGrant("the authorization code is invalid or expired")
	case err != nil:
		s.log.Error("consuming authorization code", errAttr(err))
		return nil, errServer
	}
	if ac.ClientID != c.ID {
		return nil, errInvalidGrant("the authorization code was issued to another client")
	}
	// OAuth 2.1 §4.1.3: redirect_uri must be identical when the request had one
	// (Switchboard always requires it there).
	if r.PostForm.Get("redirect_uri") != ac.RedirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !verifyPKCE(r.PostForm.Get("code_verifier"), ac.CodeChallenge) {
		return nil, errInvalidGrant("PKCE verification failed")
	}
	if res := r.PostForm["resource"]; len(res) > 0 {
		got, ok := s.resolveResource(res[0])
		if len(res) > 1 || !ok || got != ac.Resource {
			return nil, &oauthErr{http.StatusBadRequest, "invalid_target", "resource does not match the authorization request"}
		}
	}
	u, err := s.st.UserByID(ctx, ac.UserID)
	if err != nil || u.Disabled {
		return nil, errInvalidGrant("the user cannot sign in")
	}
	fam := familyOf(hash)
	if err := s.st.MarkCodeIssued(ctx, hash, fam); err != nil {
		s.log.Error("marking code issued", errAttr(err))
		return nil, errServer
	}
	return s.issueTokens(ctx, c, ac.UserID, ac.Resource, ac.Scopes, ac.Scopes, fam, "")
}

// issueTokens issues an access token for scopes and, when the client may
// refresh, a refresh token for grantScopes in family fam. oldRaw is the
// refresh token being rotated, or empty.
func (s *Server) issueTokens(ctx context.Context, c *store.Client, userID, resource string, scopes, grantScopes []string, fam, oldRaw string) (*tokenResponse, *oauthErr) {
	now := s.now()
	resp := &tokenResponse{TokenType: "Bearer", Scope: strings.Join(scopes, " ")}
	if slices.Contains(c.GrantTypes, "refresh_token") {
		rt := "sbr_" + randomToken()
		next := &store.RefreshToken{
			Hash: hashToken(rt), FamilyID: fam, ClientID: c.ID, UserID: userID, Resource: resource,
			Scopes: grantScopes, ExpiresAt: now.Add(s.refreshTT), CreatedAt: now,
		}
		if oldRaw == "" {
			if err := s.st.SaveRefreshToken(ctx, next); err != nil {
				s.log.Error("saving refresh token", errAttr(err))
				return nil, errServer
			}
		} else {
			oldHash := hashToken(oldRaw)
			sealed, err := sealSuccessor(oldRaw, oldHash, rt)
			if err != nil {
				s.log.Error("sealing refresh token", errAttr(err))
				return nil, errServer
			}
			old, err := s.st.RotateRefreshToken(ctx, oldHash, next, sealed, now)
			if errors.Is(err, store.ErrUsed) && old != nil {
				if again, ok := s.retriedRotation(ctx, oldRaw, old, now); ok {
					rt = again
					err = nil
				}
			}
			if e := s.rotateError(ctx, old, err); e != nil {
				return nil, e
			}
		}
		resp.RefreshToken = rt
	}
	answer := ""
	if resp.RefreshToken != "" {
		answer = answerOf(hashToken(resp.RefreshToken))
	}
	at, exp, err := s.issueAccessToken(ctx, userID, c.ID, resource, scopes, fam, answer)
	if err != nil {
		s.log.Error("signing access token", errAttr(err))
		return nil, errServer
	}
	resp.AccessToken = at
	resp.ExpiresIn = int64(exp.Sub(now) / time.Second)
	return resp, nil
}

// rotationGrace is how long after a rotation the rotated refresh token is
// still accepted in place of its successor, as long as that successor was
// never used (see retriedRotation).
const rotationGrace = 30 * time.Second

// retriedRotation decides a refresh token presented again after it was
// rotated. RFC 9700 §4.14.2 has rotation detect a stolen token by its reuse
// and revoke the family; taken strictly, that also revokes the grant of a
// client whose answer to the rotation was lost (Switchboard stopped between
// committing the rotation and writing the response, or the connection
// dropped), which then retries with the token it still holds. §4.14 leaves
// the detection to the server's judgement, so the immediately previous token
// is accepted again within rotationGrace while its successor was never used,
// and the answer is the same successor (an idempotent retry, not a new
// independent token): whoever holds the old token gains nothing they would
// not have had from the lost answer, and a thief racing the client is still
// caught one step later, when the second of them uses the successor. Once
// the successor is used, or after the window, reuse revokes the family as
// before.
//
// A client that used the access token of the answer evidently received it:
// its presenting the old token again is no retry, and is treated as reuse
// (markDelivered).
//
// The successor is recoverable because the rotation stored it sealed with
// AES-256-GCM under a key derived from the rotated token (sealSuccessor),
// which only the client holds: the database alone reveals nothing.
func (s *Server) retriedRotation(ctx context.Context, oldRaw string, old *store.RefreshToken, now time.Time) (string, bool) {
	if old.Successor == nil || old.SuccessorHash == "" || old.UsedAt.IsZero() {
		return "", false
	}
	if since := now.Sub(old.UsedAt); since < 0 || since > rotationGrace {
		return "", false
	}
	next, err := s.st.RefreshTokenByHash(ctx, old.SuccessorHash)
	if err != nil || !next.UsedAt.IsZero() || (!next.ExpiresAt.IsZero() && !now.Before(next.ExpiresAt)) {
		return "", false
	}
	if _, err := s.st.GetEphemeral(ctx, kindDelivered, answerOf(old.SuccessorHash), now); err == nil {
		return "", false
	} else if !errors.Is(err, store.ErrNotFound) {
		s.log.Error("looking up whether a token response was delivered", errAttr(err))
		return "", false
	}
	rt, err := openSuccessor(oldRaw, old.Hash, old.Successor)
	if err != nil || hashToken(rt) != old.SuccessorHash {
		s.log.Warn("refresh token retried, but its successor cannot be recovered", slogClient(old.ClientID))
		return "", false
	}
	s.log.Info("refresh token retried within the grace window; the same successor is returned", slogClient(old.ClientID))
	return rt, true
}

// kindDelivered marks, for rotationGrace, a token response whose access
// token was used: its client has it, and the retry rule no longer applies.
const kindDelivered = "authserver.delivered"

// answerOf names the token response that handed out the refresh token of
// hash rtHash (its first answer and any retried one alike).
func answerOf(rtHash string) string { return hashToken("answer\x00" + rtHash)[:32] }

// markDelivered records that an access token of a response carrying a
// refresh token was used, while that matters: within rotationGrace of its
// issue (a retry of the rotation is judged against a response at least as
// old). Each replica writes it at most once per few seconds per response.
func (s *Server) markDelivered(ctx context.Context, c *accessClaims) {
	if c.Answer == "" || c.IssuedAt == nil {
		return
	}
	now := s.now()
	issued := c.IssuedAt.Time()
	if now.Sub(issued) > rotationGrace {
		return
	}
	key := "ans:" + c.Answer
	if _, seen := s.cache.get(key, now); seen {
		return
	}
	if err := s.st.PutEphemeral(ctx, kindDelivered, c.Answer, []byte{1}, issued.Add(rotationGrace+time.Second)); err != nil {
		s.log.Warn("recording a delivered token response", errAttr(err))
		return
	}
	s.cache.put(key, true, now)
}

// successorKey derives the key that seals a rotated token's successor from
// the rotated token itself (HKDF-SHA256, RFC 5869).
func successorKey(oldRaw string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(oldRaw), nil, "switchboard refresh-token successor", 32)
}

// sealSuccessor encrypts next under successorKey(oldRaw), bound to the
// rotated token's hash.
func sealSuccessor(oldRaw, oldHash, next string) ([]byte, error) {
	key, err := successorKey(oldRaw)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return gcm.Seal(nil, nil, []byte(next), []byte(oldHash)), nil
}

func openSuccessor(oldRaw, oldHash string, sealed []byte) (string, error) {
	key, err := successorKey(oldRaw)
	if err != nil {
		return "", err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return "", err
	}
	b, err := gcm.Open(nil, nil, sealed, []byte(oldHash))
	return string(b), err
}

// rotateError translates RotateRefreshToken's outcome; a reused token
// revokes its family (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).
func (s *Server) rotateError(ctx context.Context, old *store.RefreshToken, err error) *oauthErr {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrUsed):
		if old != nil {
			if err := s.st.RevokeFamily(ctx, old.FamilyID, s.now()); err != nil {
				s.log.Error("revoking family of reused refresh token", errAttr(err))
			}
			s.cache.drop("fam:" + old.FamilyID)
			s.log.Warn("refresh token reused; its family is revoked", slogClient(old.ClientID), slogString(logKeyUser, old.UserID))
		}
		return errInvalidGrant("the refresh token was already used")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return errInvalidGrant("the refresh token is invalid, expired or revoked")
	default:
		s.log.Error("rotating refresh token", errAttr(err))
		return errServer
	}
}

func (s *Server) refresh(ctx context.Context, r *http.Request, c *store.Client) (*tokenResponse, *oauthErr) {
	raw := r.PostForm.Get("refresh_token")
	if raw == "" || len(raw) > 200 {
		return nil, errInvalidRequest("refresh_token is required")
	}
	hash := hashToken(raw)
	old, err := s.st.RefreshTokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("the refresh token is invalid, expired or revoked")
	} else if err != nil {
		s.log.Error("looking up refresh token", errAttr(err))
		return nil, errServer
	}
	if old.ClientID != c.ID {
		return nil, errInvalidGrant("the refresh token was issued to another client")
	}
	if revoked, err := s.st.FamilyRevoked(ctx, old.FamilyID); err != nil || revoked {
		return nil, errInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	// The resource may be named again but not changed; scopes may narrow
	// (RFC 6749 §6) for the new access token, never widen.
	resource := old.Resource
	if res := r.PostForm["resource"]; len(res) > 0 {
		got, ok := s.resolveResource(res[0])
		if len(res) > 1 || !ok || got != old.Resource {
			return nil, &oauthErr{http.StatusBadRequest, "invalid_target", "resource is not part of this grant"}
		}
	}
	scopes := old.Scopes
	if sc := strings.Fields(r.PostForm.Get("scope")); len(sc) > 0 {
		if !scopesSubset(sc, old.Scopes) {
			return nil, &oauthErr{http.StatusBadRequest, "invalid_scope", "scope exceeds the grant"}
		}
		scopes = slices.Compact(slices.Sorted(slices.Values(sc)))
	}
	u, err := s.st.UserByID(ctx, old.UserID)
	if err != nil || u.Disabled {
		return nil, errInvalidGrant("the user cannot sign in")
	}
	return s.issueTokens(ctx, c, old.UserID, resource, scopes, old.Scopes, old.FamilyID, raw)
}

// handleRevoke is RFC 7009: refresh tokens revoke their family, access
// tokens go on the denylist until they expire. Unknown tokens, and tokens of
// other clients, get 200 as well (§2.2), leaking nothing.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if e := parseTokenForm(w, r); e != nil {
		writeOAuthError(w, e, false)
		return
	}
	c, basic, e := s.authenticateClient(r.Context(), r)
	if e != nil {
		writeOAuthError(w, e, basic)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, errInvalidRequest("token is required"), basic)
		return
	}
	ctx := r.Context()
	now := s.now()
	if len(tok) <= 200 {
		if rt, err := s.st.RefreshTokenByHash(ctx, hashToken(tok)); err == nil && rt.ClientID == c.ID {
			if err := s.st.RevokeFamily(ctx, rt.FamilyID, now); err != nil {
				s.log.Error("revoking refresh token family", errAttr(err))
				writeOAuthError(w, errServer, basic)
				return
			}
			s.cache.drop("fam:" + rt.FamilyID)
		}
	}
	if claims, err := s.parseAccessToken(ctx, tok); err == nil && claims.ClientID == c.ID {
		if err := s.st.RevokeAccessToken(ctx, claims.ID, claims.Expiry.Time()); err != nil {
			s.log.Error("revoking access token", errAttr(err))
			writeOAuthError(w, errServer, basic)
			return
		}
		s.cache.drop("jti:" + claims.ID)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
