package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// keyFile is the JSON form of a key ring:
//
//	{"keys": [{"id": "k1", "secret": "<base64 of 32 bytes>"}, ...]}
//
// The first key seals; all of them open.
type keyFile struct {
	Keys []keyFileKey `json:"keys"`
}

type keyFileKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// LoadKeyFile reads a key ring from a key file. It refuses a file that
// others than its owner may read or write.
func LoadKeyFile(path string) (*Keyring, error) {
	f, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return f.keyring(path)
}

func readKeyFile(path string) (*keyFile, error) {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secrets key file %s does not exist (create one with GenerateKeyFile, or restore it from your backup if the database already holds data): %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets key file %s is not a regular file", path)
	}
	// Windows does not map permissions to mode bits; ACLs guard the file there.
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("secrets key file %s has permissions %#o, which let other users read it; run: chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("secrets key file %s: not valid JSON of the form {\"keys\":[{\"id\":...,\"secret\":...}]}: %v", path, err)
	}
	return &f, nil
}

func (f *keyFile) keyring(path string) (*Keyring, error) {
	keys := make([]Key, 0, len(f.Keys))
	for i, k := range f.Keys {
		secret, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("secrets key file %s: key %d (%q): secret is not base64: %v", path, i+1, k.ID, err)
		}
		keys = append(keys, Key{ID: k.ID, Secret: secret})
	}
	ring, err := NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return ring, nil
}

// GenerateKeyFile writes a new key file holding one random key, creating
// its directory if needed. It never replaces an existing file: losing a key
// loses everything it sealed.
func GenerateKeyFile(path string) (*Keyring, error) {
	f := &keyFile{}
	if err := f.addKey(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if err := writeKeyFile(path, f, false); err != nil {
		return nil, err
	}
	return f.keyring(path)
}

// AddKey puts a new random key first in the key file, so that it seals from
// now on, and keeps the others so that what they sealed still opens. The
// store's re-encryption then moves old ciphertexts to the new key.
func AddKey(path string) (*Keyring, error) {
	f, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.keyring(path); err != nil {
		return nil, err
	}
	if err := f.addKey(); err != nil {
		return nil, err
	}
	if err := writeKeyFile(path, f, true); err != nil {
		return nil, err
	}
	return f.keyring(path)
}

func (f *keyFile) addKey() error {
	secret := make([]byte, KeySize)
	idb := make([]byte, 6)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	if _, err := rand.Read(idb); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	k := keyFileKey{ID: "k-" + hex.EncodeToString(idb), Secret: base64.StdEncoding.EncodeToString(secret)}
	f.Keys = append([]keyFileKey{k}, f.Keys...)
	return nil
}

// writeKeyFile writes f to a temporary file with mode 0600 in the same
// directory, syncs it, and then moves it into place: by rename when replace
// is set, otherwise by link, which fails if path exists. A crash leaves
// either the old file or the new one, never a torn one.
func writeKeyFile(path string, f *keyFile, replace bool) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("secrets key file: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("secrets key file %s already exists; refusing to overwrite it", path)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // CreateTemp uses mode 0600
	if err != nil {
		return fmt.Errorf("secrets key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after link or rename, or on failure
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("secrets key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secrets key file: %w", err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("secrets key file %s already exists; refusing to overwrite it", path)
		}
		if err != nil {
			// Some file systems have no hard links; O_EXCL keeps the promise there.
			err = writeExclusive(path, data)
		}
	}
	if err != nil {
		return fmt.Errorf("secrets key file: %w", err)
	}
	syncDir(dir)
	return nil
}

func writeExclusive(path string, data []byte) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	}
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		os.Remove(path)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(path)
		return err
	}
	return out.Close()
}

// syncDir makes a rename or link durable. Failure is not fatal: some
// platforms cannot sync directories, and the file itself is synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
