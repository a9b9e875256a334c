// Package sqlite is the embedded store: one SQLite file in the data
// directory, opened with the pure-Go modernc.org/sqlite driver, so that
// there is nothing to install. cmd/switchboard imports it.
//
// The database runs in WAL mode with synchronous=FULL, so a committed token
// survives a power cut. Writes go through one connection and every
// transaction begins IMMEDIATE, so concurrent single-use operations in this
// process queue up instead of failing, and another process on the same
// file waits for its turn (busy_timeout) rather than erroring.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store in a SQLite file. Besides the interface it has
// RotateSecrets, which re-encrypts values sealed by older keys.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// pragmas apply to every connection. busy_timeout makes a writer wait for
// another process's transaction instead of failing at once.
const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"

// readers bounds the read-only connections; reads do not block each other in WAL mode.
var readers = max(4, runtime.GOMAXPROCS(0))

// Open opens or creates the database file at path (creating its directory
// and the file with mode 0600), migrates it and checks keys against it: a
// key ring that cannot open what the database holds is refused with
// store.ErrKeyMismatch.
func Open(ctx context.Context, path string, keys *secrets.Keyring) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite store: %q: want the path of a database file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	// SQLite gives the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	f.Close()

	uri := "file:" + uriPath(path)
	writer, err := sql.Open("sqlite", uri+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	// One writer connection: in-process writers queue in database/sql
	// rather than spin on SQLITE_BUSY.
	writer.SetMaxOpenConns(1)
	reader, err := sql.Open("sqlite", uri+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)

	s, err := sqlstore.New(ctx, &db{writer: writer, reader: reader}, keys, &sqlstore.Options{Migrations: mustSub(migrations, "migrations")})
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	return &Store{s}, nil
}

// uriPath escapes a file path for a SQLite URI filename.
func uriPath(path string) string {
	p := filepath.ToSlash(path)
	if filepath.VolumeName(path) != "" {
		p = "/" + p // file:/C:/dir/db
	}
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// db adapts two database/sql pools: one writer and several readers.
type db struct {
	writer, reader *sql.DB
}

func (d *db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, d.writer, query, args)
}

func (d *db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return queryRows(ctx, d.reader, query, args)
}

func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	tx, err := d.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	if err := fn(txQuerier{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (d *db) IsUniqueViolation(err error) bool {
	return hasCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func (d *db) IsForeignKeyViolation(err error) bool {
	return hasCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}

func hasCode(err error, codes ...int) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

func (d *db) Close() error {
	return errors.Join(d.reader.Close(), d.writer.Close())
}

type txQuerier struct{ tx *sql.Tx }

func (q txQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, q.tx, query, args)
}

func (q txQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return queryRows(ctx, q.tx, query, args)
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func exec(ctx context.Context, e execQuerier, query string, args []any) (int64, error) {
	res, err := e.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func queryRows(ctx context.Context, e execQuerier, query string, args []any) (sqlstore.Rows, error) {
	rows, err := e.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// sqlRows drops the error of Close, which Err reports.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }
