package authserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Signing keys live in the store (private halves encrypted by it), so that
// replicas share them and restarts keep tokens valid. Each replica caches
// the ring and reloads it every minute, or at once when a token names a kid
// it does not know (another replica rotated).
const (
	keyReloadEvery   = time.Minute
	keyMissReloadGap = 5 * time.Second
	clockLeeway      = 30 * time.Second
)

type signingKey struct {
	id      string
	priv    *ecdsa.PrivateKey
	jwk     json.RawMessage
	retired time.Time
}

type keyRing struct {
	s *Server

	mu     sync.Mutex    // guards the fields below
	keys   []*signingKey // newest first, as the store returns them
	loaded time.Time
}

func (k *keyRing) init(ctx context.Context) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	if _, err := k.signer(ctx); err == nil {
		return nil
	}
	return k.rotate(ctx)
}

func (k *keyRing) reload(ctx context.Context) error {
	stored, err := k.s.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := k.s.now()
	var keys []*signingKey
	for _, sk := range stored {
		// A retired key verifies until every token it signed has expired.
		if !sk.RetiredAt.IsZero() && now.After(sk.RetiredAt.Add(k.s.accessTTL+clockLeeway)) {
			continue
		}
		if sk.Algorithm != string(jose.ES256) {
			continue
		}
		pk, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
		if err != nil {
			return fmt.Errorf("parse key %s: %w", sk.ID, err)
		}
		ec, ok := pk.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("key %s is %T, want ECDSA", sk.ID, pk)
		}
		keys = append(keys, &signingKey{id: sk.ID, priv: ec, jwk: sk.PublicJWK, retired: sk.RetiredAt})
	}
	k.mu.Lock()
	k.keys, k.loaded = keys, now
	k.mu.Unlock()
	return nil
}

func (k *keyRing) snapshot(ctx context.Context) []*signingKey {
	k.mu.Lock()
	stale := k.s.now().Sub(k.loaded) > keyReloadEvery
	keys := k.keys
	k.mu.Unlock()
	if stale {
		if err := k.reload(ctx); err != nil {
			k.s.log.Warn("reloading signing keys", errAttr(err))
			return keys
		}
		k.mu.Lock()
		keys = k.keys
		k.mu.Unlock()
	}
	return keys
}

func (k *keyRing) signer(ctx context.Context) (*signingKey, error) {
	for _, sk := range k.snapshot(ctx) {
		if sk.retired.IsZero() {
			return sk, nil
		}
	}
	return nil, errors.New("no active signing key")
}

func (k *keyRing) lookup(ctx context.Context, kid string) *signingKey {
	find := func(keys []*signingKey) *signingKey {
		for _, sk := range keys {
			if sk.id == kid {
				return sk
			}
		}
		return nil
	}
	if sk := find(k.snapshot(ctx)); sk != nil {
		return sk
	}
	k.mu.Lock()
	recent := k.s.now().Sub(k.loaded) < keyMissReloadGap
	k.mu.Unlock()
	if recent {
		return nil
	}
	if err := k.reload(ctx); err != nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return find(k.keys)
}

// rotate creates a new signing key and retires the others; retired keys stay
// in the JWKS and keep verifying until their tokens have expired.
func (k *keyRing) rotate(ctx context.Context) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return err
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	pj, err := pub.MarshalJSON()
	if err != nil {
		return err
	}
	old, err := k.s.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := k.s.now()
	if err := k.s.st.SaveSigningKey(ctx, &store.SigningKey{
		ID: pub.KeyID, Algorithm: string(jose.ES256), PrivateKey: der, PublicJWK: pj, CreatedAt: now,
	}); err != nil {
		return err
	}
	for _, o := range old {
		if o.RetiredAt.IsZero() {
			if err := k.s.st.RetireSigningKey(ctx, o.ID, now); err != nil {
				return err
			}
		}
	}
	return k.reload(ctx)
}

// RotateSigningKey makes a new key sign access tokens. Tokens signed by the
// old keys stay valid until they expire; the JWKS lists both meanwhile.
func (s *Server) RotateSigningKey(ctx context.Context) error {
	if err := s.keys.rotate(ctx); err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	s.log.Info("rotated the access-token signing key")
	return nil
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	keys := []json.RawMessage{}
	for _, sk := range s.keys.snapshot(r.Context()) {
		keys = append(keys, sk.jwk)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// accessClaims are an access token's claims (RFC 9068 profile).
type accessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	SID      string `json:"sid,omitempty"` // refresh-token family
	// Answer names the token response the access token came in with a
	// refresh token (answerOf); see markDelivered.
	Answer string `json:"sb_ans,omitempty"`
}

func (s *Server) issueAccessToken(ctx context.Context, userID, clientID, resource string, scopes []string, family, answer string) (token string, exp time.Time, err error) {
	sk, err := s.keys.signer(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: sk.priv, KeyID: sk.id}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp = now.Add(s.accessTTL)
	c := accessClaims{
		Claims: jwt.Claims{
			Issuer:   s.issuer,
			Subject:  userID,
			Audience: jwt.Audience{resource},
			Expiry:   jwt.NewNumericDate(exp),
			IssuedAt: jwt.NewNumericDate(now),
			ID:       randomToken()[:22],
		},
		ClientID: clientID,
		Scope:    strings.Join(scopes, " "),
		SID:      family,
		Answer:   answer,
	}
	token, err = jwt.Signed(signer).Claims(c).Serialize()
	return token, exp, err
}

var errInvalidToken = errors.New("invalid access token")

// parseAccessToken verifies a JWT's signature, issuer and times. The
// audience is the caller's to check. Only ES256 is accepted: go-jose
// refuses "none", HS256 and every other algorithm before looking at keys.
func (s *Server) parseAccessToken(ctx context.Context, raw string) (*accessClaims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return nil, errInvalidToken
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "" && !strings.EqualFold(typ, "at+jwt") {
		return nil, errInvalidToken
	}
	sk := s.keys.lookup(ctx, h.KeyID)
	if sk == nil {
		return nil, errInvalidToken
	}
	var c accessClaims
	if err := tok.Claims(&sk.priv.PublicKey, &c); err != nil {
		return nil, errInvalidToken
	}
	if c.Expiry == nil || c.Subject == "" || c.ID == "" {
		return nil, errInvalidToken
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, Time: s.now()}, clockLeeway); err != nil {
		return nil, errInvalidToken
	}
	return &c, nil
}
