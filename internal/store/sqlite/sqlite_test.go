package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlite"
	"github.com/switchboard-mcp/switchboard/internal/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		path := filepath.Join(t.TempDir(), "data", "switchboard.db")
		return storetest.Harness{
			Open: func(ctx context.Context, keys *secrets.Keyring) (store.Store, error) {
				return sqlite.Open(ctx, path, keys)
			},
			Dump: func(t *testing.T) []byte {
				var dump []byte
				for _, suffix := range []string{"", "-wal", "-shm"} {
					b, err := os.ReadFile(path + suffix)
					if err != nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatal(err)
					}
					dump = append(dump, b...)
				}
				return dump
			},
		}
	})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "switchboard.db")
	s, err := sqlite.Open(t.Context(), path, storetest.Keys(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutEphemeral(t.Context(), "k", "v", []byte("x"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %#o, want no access for group and others", filepath.Base(p), perm)
		}
	}
}

func TestReopenAndJournalMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	keys := storetest.Keys(t, "k1")
	for range 3 { // migrations apply once
		s, err := sqlite.Open(t.Context(), path, keys)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var versions int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files: %v", err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != len(files) {
		t.Errorf("schema_migrations has %d rows, %v; want %d", versions, err, len(files))
	}
	if _, err := sqlite.Open(t.Context(), ":memory:", keys); err == nil {
		t.Error("Open(:memory:) succeeded; the store needs a file")
	}
}
