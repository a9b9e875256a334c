// Package secrets encrypts credentials and tokens at rest: AES-256-GCM
// envelope encryption under a key ring whose first key encrypts and whose
// every key decrypts. Each ciphertext carries the id of its key, and its
// associated data binds it to its owner and row so that a ciphertext copied
// elsewhere does not decrypt.
//
// store and authserver import it; it imports the standard library only.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Errors callers branch on.
var (
	// ErrUnknownKey: the ciphertext was sealed by a key that is not in the ring.
	ErrUnknownKey = errors.New("secrets: sealed by a key that is not in the key ring")
	// ErrDecrypt: the ciphertext is malformed, was tampered with, or its
	// associated data or key does not match.
	ErrDecrypt = errors.New("secrets: cannot decrypt: wrong key, wrong associated data or damaged ciphertext")
)

// KeySize is the length of a key's secret: AES-256.
const KeySize = 32

// version is the first byte of every ciphertext, so that the format can
// change without guessing.
const version byte = 1

const nonceSize = 12 // the GCM standard nonce, random per Seal

// maxKeyID keeps the id length in one byte of the header.
const maxKeyID = 255

// Key is one AES-256 key of a ring.
type Key struct {
	ID     string // names the key inside every ciphertext it seals; 1 to 255 bytes
	Secret []byte // KeySize bytes
}

// Keyring seals with its first key and opens with any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	primary string
	ids     []string // in the order given
	aeads   map[string]cipher.AEAD
	macKey  []byte // the primary key's secret, from which MAC derives its keys
}

// NewKeyring returns a ring whose first key seals. Keys are copied.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secrets: key ring has no keys")
	}
	k := &Keyring{primary: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, key := range keys {
		if key.ID == "" || len(key.ID) > maxKeyID {
			return nil, fmt.Errorf("secrets: key %d: id must be 1 to %d bytes long", i+1, maxKeyID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("secrets: key %q: secret is %d bytes, want %d (AES-256)", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("secrets: key id %q appears twice", key.ID)
		}
		block, err := aes.NewCipher(append([]byte(nil), key.Secret...))
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
		k.ids = append(k.ids, key.ID)
	}
	k.macKey = append([]byte(nil), keys[0].Secret...)
	return k, nil
}

// MAC authenticates data for one purpose: HMAC-SHA256 under a key derived
// from the primary key with HKDF-SHA256 (RFC 5869), the purpose as its info.
// Processes sharing the key file thus share MAC keys without another secret,
// and a MAC made for one purpose proves nothing for another. Compare MACs
// with hmac.Equal. Rotating the primary key changes every MAC.
func (k *Keyring) MAC(purpose string, data []byte) []byte {
	key, err := hkdf.Key(sha256.New, k.macKey, nil, "switchboard mac: "+purpose, sha256.Size)
	if err != nil {
		// Only for lengths HKDF cannot produce; sha256.Size always fits.
		panic("secrets: hkdf: " + err.Error())
	}
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// PrimaryID is the id of the key that seals.
func (k *Keyring) PrimaryID() string { return k.primary }

// IDs lists the ids of the ring's keys, the primary first.
func (k *Keyring) IDs() []string {
	return slices.Clone(k.ids)
}

// Has reports whether the ring holds a key with this id.
func (k *Keyring) Has(id string) bool {
	_, ok := k.aeads[id]
	return ok
}

// Seal encrypts plaintext with the primary key. The result is
//
//	version (1 byte) | key-id length (1 byte) | key id | nonce (12 bytes) | ciphertext and tag
//
// and the header (version and key id) is authenticated along with aad, so
// that a ciphertext cannot be relabelled with another key id.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.primary]
	id := k.primary
	out := make([]byte, 0, 2+len(id)+nonceSize+len(plaintext)+aead.Overhead())
	out = append(out, version, byte(len(id)))
	out = append(out, id...)
	header := len(out)
	out = out[:header+nonceSize]
	if _, err := rand.Read(out[header:]); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	return aead.Seal(out, out[header:], plaintext, associated(out[:header], aad)), nil
}

// Open decrypts what Seal returned for the same aad. It returns
// ErrUnknownKey when the sealing key is not in the ring and ErrDecrypt for
// anything else that does not verify.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	id, header, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, id)
	}
	rest := ciphertext[header:]
	if len(rest) < nonceSize+aead.Overhead() {
		return nil, ErrDecrypt
	}
	plain, err := aead.Open(nil, rest[:nonceSize], rest[nonceSize:], associated(ciphertext[:header], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// KeyID returns the id of the key that sealed ciphertext, without
// decrypting it, so that re-encryption can find what an old key sealed.
func (k *Keyring) KeyID(ciphertext []byte) (string, error) {
	id, _, err := parseHeader(ciphertext)
	return id, err
}

func parseHeader(c []byte) (id string, n int, err error) {
	if len(c) < 2 || c[0] != version {
		return "", 0, ErrDecrypt
	}
	n = 2 + int(c[1])
	if c[1] == 0 || len(c) < n {
		return "", 0, ErrDecrypt
	}
	return string(c[2:n]), n, nil
}

// associated is what GCM authenticates: the header, then the caller's data.
// The header is self-delimiting, so the concatenation is unambiguous.
func associated(header, aad []byte) []byte {
	return append(append(make([]byte, 0, len(header)+len(aad)), header...), aad...)
}

// AAD encodes parts (for example table, row key and column) as associated
// data. Each part is length-prefixed, so ("ab", "c") and ("a", "bc") differ.
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}
