package secrets_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
)

func key(id string, b byte) secrets.Key {
	return secrets.Key{ID: id, Secret: bytes.Repeat([]byte{b}, secrets.KeySize)}
}

func TestSealOpen(t *testing.T) {
	ring, err := secrets.NewKeyring(key("k2", 2), key("k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	aad := secrets.AAD("credentials", "u1", "github", "token", "value")
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		c, err := ring.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) >= 8 && bytes.Contains(c, plain) { // a 1-byte plaintext can occur in random bytes by chance
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := ring.Open(c, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
		if id, err := ring.KeyID(c); err != nil || id != "k2" {
			t.Fatalf("KeyID = %q, %v; want k2", id, err)
		}
	}
	a, _ := ring.Seal([]byte("same"), aad)
	b, _ := ring.Seal([]byte("same"), aad)
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are equal: nonce is not random")
	}
}

func TestOpenFails(t *testing.T) {
	ring, _ := secrets.NewKeyring(key("k1", 1))
	other, _ := secrets.NewKeyring(key("k1", 9)) // same id, different secret
	stranger, _ := secrets.NewKeyring(key("k9", 1))
	aad := secrets.AAD("clients", "c1", "secret")
	c, err := ring.Seal([]byte("hunter2"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		d := bytes.Clone(c)
		d[i] ^= 1
		return d
	}
	tests := []struct {
		name string
		ring *secrets.Keyring
		c    []byte
		aad  []byte
		want error
	}{
		{"other aad", ring, c, secrets.AAD("clients", "c2", "secret"), secrets.ErrDecrypt},
		{"ambiguous aad", ring, c, secrets.AAD("clients", "c1s", "ecret"), secrets.ErrDecrypt},
		{"no aad", ring, c, nil, secrets.ErrDecrypt},
		{"wrong secret", other, c, aad, secrets.ErrDecrypt},
		{"unknown key", stranger, c, aad, secrets.ErrUnknownKey},
		{"tampered tag", ring, flip(len(c) - 1), aad, secrets.ErrDecrypt},
		{"tampered body", ring, flip(len(c) - 20), aad, secrets.ErrDecrypt},
		{"tampered nonce", ring, flip(5), aad, secrets.ErrDecrypt},
		{"tampered version", ring, flip(0), aad, secrets.ErrDecrypt},
		{"truncated", ring, c[:len(c)-1], aad, secrets.ErrDecrypt},
		{"header only", ring, c[:4], aad, secrets.ErrDecrypt},
		{"empty", ring, nil, aad, secrets.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.c, tt.aad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestNewKeyringErrors(t *testing.T) {
	tests := []struct {
		name string
		keys []secrets.Key
	}{
		{"none", nil},
		{"duplicate id", []secrets.Key{key("a", 1), key("a", 2)}},
		{"short secret", []secrets.Key{{ID: "a", Secret: make([]byte, 16)}}},
		{"empty id", []secrets.Key{{ID: "", Secret: make([]byte, 32)}}},
		{"long id", []secrets.Key{{ID: strings.Repeat("x", 256), Secret: make([]byte, 32)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := secrets.NewKeyring(tt.keys...); err == nil {
				t.Fatal("NewKeyring succeeded")
			}
		})
	}
}

func TestAAD(t *testing.T) {
	if bytes.Equal(secrets.AAD("ab", "c"), secrets.AAD("a", "bc")) {
		t.Error(`AAD("ab","c") == AAD("a","bc")`)
	}
	if bytes.Equal(secrets.AAD("a", ""), secrets.AAD("a")) {
		t.Error(`AAD("a","") == AAD("a")`)
	}
}

func TestKeyFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "keys.json")
	ring, err := secrets.GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode = %#o, want 0600", perm)
		}
	}
	aad := secrets.AAD("t", "row", "col")
	old, err := ring.Seal([]byte("before rotation"), aad)
	if err != nil {
		t.Fatal(err)
	}

	rotated, err := secrets.AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.PrimaryID() == ring.PrimaryID() {
		t.Fatal("AddKey kept the old primary key")
	}
	loaded, err := secrets.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PrimaryID() != rotated.PrimaryID() || !loaded.Has(ring.PrimaryID()) {
		t.Fatalf("loaded ring: primary %q, has old %v", loaded.PrimaryID(), loaded.Has(ring.PrimaryID()))
	}
	if got, err := loaded.Open(old, aad); err != nil || string(got) != "before rotation" {
		t.Fatalf("old ciphertext after AddKey: %q, %v", got, err)
	}
	c, _ := loaded.Seal([]byte("after"), aad)
	if id, _ := loaded.KeyID(c); id != rotated.PrimaryID() {
		t.Errorf("sealed with %q, want new primary %q", id, rotated.PrimaryID())
	}
	if _, err := ring.Open(c, aad); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("old ring opening new ciphertext: %v, want ErrUnknownKey", err)
	}
}

func TestGenerateKeyFileNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatalf("file changed to %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left temporary files behind: %v", entries)
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name    string
		content string // empty: no file
		mode    os.FileMode
		want    string
	}{
		{"missing", "", 0o600, "does not exist"},
		{"bad json", "{", 0o600, "not valid JSON"},
		{"unknown field", `{"keys":[],"extra":1}`, 0o600, "not valid JSON"},
		{"no keys", `{"keys":[]}`, 0o600, "no keys"},
		{"bad base64", `{"keys":[{"id":"a","secret":"!!"}]}`, 0o600, "not base64"},
		{"short key", `{"keys":[{"id":"a","secret":"AAAA"}]}`, 0o600, "want 32"},
		{"group readable", `{"keys":[{"id":"a","secret":"` + good + `"}]}`, 0o640, "chmod 600"},
		{"world readable", `{"keys":[{"id":"a","secret":"` + good + `"}]}`, 0o644, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.Contains(tt.want, "chmod") {
				t.Skip("no permission bits on Windows")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, tt.mode) // WriteFile's mode is subject to umask
			}
			_, err := secrets.LoadKeyFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadKeyFile error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	path := filepath.Join(dir, "ok.json")
	os.WriteFile(path, []byte(`{"keys":[{"id":"a","secret":"`+good+`"}]}`), 0o600)
	if ring, err := secrets.LoadKeyFile(path); err != nil || ring.PrimaryID() != "a" {
		t.Fatalf("LoadKeyFile = %v, %v", ring, err)
	}
}

func FuzzOpen(f *testing.F) {
	ring, _ := secrets.NewKeyring(key("k1", 1), key("k0", 0))
	aad := secrets.AAD("t", "r", "c")
	c, _ := ring.Seal([]byte("seed"), aad)
	f.Add(c, aad)
	f.Add([]byte{1, 2, 'k', '1'}, []byte(nil))
	f.Add([]byte{1, 255}, []byte("x"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, c, aad []byte) {
		plain, err := ring.Open(c, aad)
		if err == nil {
			// Only a genuine ciphertext opens; then it re-seals to the same plaintext.
			c2, err := ring.Seal(plain, aad)
			if err != nil {
				t.Fatal(err)
			}
			if p2, err := ring.Open(c2, aad); err != nil || !bytes.Equal(p2, plain) {
				t.Fatalf("round trip of opened plaintext failed: %v", err)
			}
		} else if !errors.Is(err, secrets.ErrDecrypt) && !errors.Is(err, secrets.ErrUnknownKey) {
			t.Fatalf("Open returned an unexpected error: %v", err)
		}
		ring.KeyID(c)
	})
}

func ExampleKeyring() {
	ring, err := secrets.NewKeyring(secrets.Key{ID: "k1", Secret: make([]byte, secrets.KeySize)})
	if err != nil {
		panic(err)
	}
	aad := secrets.AAD("credentials", "user-1", "github", "token", "value")
	sealed, _ := ring.Seal([]byte("ghp_example"), aad)
	plain, _ := ring.Open(sealed, aad)
	id, _ := ring.KeyID(sealed)
	fmt.Println(string(plain), id)
	// Output: ghp_example k1
}

func TestMAC(t *testing.T) {
	ring, _ := secrets.NewKeyring(key("k2", 2), key("k1", 1))
	same, _ := secrets.NewKeyring(key("k2", 2)) // another process, same primary key
	rotated, _ := secrets.NewKeyring(key("k1", 1), key("k2", 2))
	data := []byte("user-1|1700000000")
	m := ring.MAC("forward", data)
	if len(m) != 32 {
		t.Fatalf("MAC is %d bytes, want 32", len(m))
	}
	if !hmac.Equal(m, same.MAC("forward", data)) {
		t.Error("two rings with the same primary key disagree")
	}
	for name, other := range map[string][]byte{
		"other purpose":     ring.MAC("forward2", data),
		"other data":        ring.MAC("forward", []byte("user-2|1700000000")),
		"other primary key": rotated.MAC("forward", data),
	} {
		if hmac.Equal(m, other) {
			t.Errorf("%s: same MAC", name)
		}
	}
	// The derived key is not the primary key itself.
	plain := hmac.New(sha256.New, bytes.Repeat([]byte{2}, secrets.KeySize))
	plain.Write(data)
	if hmac.Equal(m, plain.Sum(nil)) {
		t.Error("MAC uses the primary key directly")
	}
}
