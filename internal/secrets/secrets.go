// Package secrets encrypts credentials and tokens at rest: AES-256-GCM
// envelope encryption under a key ring whose first key encrypts and whose
// every key decrypts. Each ciphertext carries the id of its key, and its
// associated data binds it to its owner and row so that a ciphertext copied
// elsewhere does not decrypt.
//
// store and authserver import it; it imports the standard library only.
package secrets
