package oauthclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// dpopKey is the key a Client binds its tokens to (RFC 9449). It lives as
// long as the Client: a DPoP-bound token is useless without it.
type dpopKey struct {
	signer jose.Signer
}

const dpopAlg = "ES256"

func newDPoPKey() (*dpopKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	// RFC 9449 §4.2: typ dpop+jwt, the public key in the jwk header.
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, opts)
	if err != nil {
		return nil, err
	}
	return &dpopKey{signer: s}, nil
}

// dpopClaims are RFC 9449 §4.2 proof claims.
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// proof returns a fresh proof for one request. accessToken is set when the
// proof accompanies a DPoP-bound token (ath, §4.2).
func (k *dpopKey) proof(method, target, nonce, accessToken string, now time.Time) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	// §4.2: htu is the target URI without query and fragment.
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	c := dpopClaims{JTI: randomString(), HTM: method, HTU: u.String(), IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		h := sha256.Sum256([]byte(accessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(h[:])
	}
	return jwt.Signed(k.signer).Claims(c).Serialize()
}

// dpopFor reports whether token requests to d's authorization server carry
// DPoP proofs.
func (c *Client) dpopFor(d *discovery) bool {
	if c.dpop == nil {
		return false
	}
	algs := d.as.DPoPSigningAlgValuesSupported
	if len(algs) > 0 && !slices.Contains(algs, dpopAlg) {
		return false
	}
	switch c.opts.DPoP {
	case DPoPAlways:
		return len(algs) > 0
	case DPoPNever:
		return false
	}
	c.mu.Lock()
	asked := c.useDPoP
	c.mu.Unlock()
	return asked || (d.prm != nil && d.prm.DPoPBoundAccessTokensRequired)
}

// clientAssertion is a private_key_jwt client assertion (RFC 7523 §2.2,
// §3). Its audience is the authorization server's issuer identifier.
func clientAssertion(ci *ClientIdentity, issuer string, now time.Time) (string, error) {
	alg := jose.SignatureAlgorithm(ci.SigningAlg)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: ci.PrivateKey}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	claims := jwt.Claims{
		Issuer:   ci.ClientID,
		Subject:  ci.ClientID,
		Audience: jwt.Audience{issuer},
		ID:       randomString(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}
	return jwt.Signed(s).Claims(claims).Serialize()
}

// algFor returns the JWS algorithm for a private key.
func algFor(k crypto.Signer) (string, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
	case *rsa.PrivateKey:
		return "RS256", nil
	case ed25519.PrivateKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("oauthclient: unsupported private key type %T", k)
}

// ParsePrivateKeyPEM parses a PKCS #8, SEC 1 (EC) or PKCS #1 (RSA) private
// key, for ClientIdentity.PrivateKey.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key encoding")
}
