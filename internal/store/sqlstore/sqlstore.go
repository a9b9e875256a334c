// Package sqlstore implements store.Store in the SQL that SQLite and
// PostgreSQL both speak ($n parameters, ON CONFLICT, RETURNING, row values),
// so that the two dialects share one implementation and differ only in
// their driver adapter and schema. Only store/sqlite and store/postgres
// import it.
//
// Times are stored as Unix nanoseconds (0 for the zero time) and come back
// in UTC; lists as JSON arrays; secret fields sealed by the key ring.
package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Querier runs statements, inside or outside a transaction.
type Querier interface {
	// Exec runs a statement and reports how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows. Outside a transaction it
	// may run on a read-only connection.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is the subset of *sql.Rows and pgx.Rows the store uses.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// DB is a database adapted by a dialect.
type DB interface {
	Querier
	// Tx runs fn in a read-write transaction and commits if it returns nil.
	// Statements fn runs see each other's writes; fn must use only q.
	Tx(ctx context.Context, fn func(q Querier) error) error
	// IsUniqueViolation reports whether err is a unique or primary key violation.
	IsUniqueViolation(err error) bool
	// IsForeignKeyViolation reports whether err is a foreign key violation.
	IsForeignKeyViolation(err error) bool
	Close() error
}

// Options configure New.
type Options struct {
	// Migrations holds the schema as files named NNNN_description.sql,
	// applied in order of NNNN, each once.
	Migrations fs.FS
	// Lock, if set, is run first in the start-up transaction to keep
	// other processes from migrating or checking keys at the same time
	// (PostgreSQL: an advisory lock). Empty when the transaction already
	// excludes other writers (SQLite's BEGIN IMMEDIATE).
	Lock string
	// Now tells the time for CreatedAt defaults and lock expiry. Nil: time.Now.
	Now func() time.Time
}

// Store implements store.Store over a DB.
type Store struct {
	db   DB
	keys *secrets.Keyring
	now  func() time.Time
}

var _ store.Store = (*Store)(nil)

// New migrates db, verifies that keys open what the database holds, and
// returns a Store. It closes db if it fails.
func New(ctx context.Context, db DB, keys *secrets.Keyring, opts *Options) (*Store, error) {
	if keys == nil {
		db.Close()
		return nil, errors.New("store: no secrets key ring")
	}
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{db: db, keys: keys, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	migrations, err := readMigrations(opts.Migrations)
	if err != nil {
		db.Close()
		return nil, err
	}
	err = db.Tx(ctx, func(q Querier) error {
		if opts.Lock != "" {
			if _, err := q.Exec(ctx, opts.Lock); err != nil {
				return fmt.Errorf("lock for start-up: %w", err)
			}
		}
		if err := migrate(ctx, q, migrations, s.now()); err != nil {
			return err
		}
		return s.checkKeys(ctx, q)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type migration struct {
	version int
	name    string
	sql     string
}

func readMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, errors.New("store: no migrations")
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		num, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s: name must start with a positive version number and _", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("store: migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

func migrate(ctx context.Context, q Querier, ms []migration, now time.Time) error {
	if _, err := q.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	newest := 0
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[int(v)] = true
		newest = max(newest, int(v))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if len(ms) > 0 && newest > ms[len(ms)-1].version {
		return fmt.Errorf("database schema version %d is newer than this Switchboard knows (%d); refusing to start — run a newer Switchboard", newest, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := q.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.version, ts(now)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// keyCheckValue is sealed once per key into key_checks, so that a later
// start can tell whether its key ring is the one that sealed the data.
const keyCheckValue = "switchboard key check v1"

// checkKeys refuses a key ring that cannot open what the database holds and
// records the primary key the first time it is used.
func (s *Store) checkKeys(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, `SELECT key_id, sealed FROM key_checks ORDER BY created_at, key_id`)
	if err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	var recorded, missing []string
	opened, hasPrimary := 0, false
	for rows.Next() {
		var id string
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			rows.Close()
			return err
		}
		recorded = append(recorded, id)
		if !s.keys.Has(id) {
			missing = append(missing, id)
			continue
		}
		plain, err := s.keys.Open(sealed, keyCheckAAD(id))
		if err != nil || string(plain) != keyCheckValue {
			rows.Close()
			return fmt.Errorf("%w: key %q in the key file is not the key %q that sealed it; refusing to start — restore the key file that was used with this database", store.ErrKeyMismatch, id, id)
		}
		opened++
		hasPrimary = hasPrimary || id == s.keys.PrimaryID()
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	switch {
	case len(recorded) > 0 && opened == 0:
		return fmt.Errorf("%w (data sealed with key %s; key file has %s); refusing to start — restore the key file that was used with this database",
			store.ErrKeyMismatch, strings.Join(recorded, ", "), strings.Join(s.keys.IDs(), ", "))
	case len(missing) > 0:
		return fmt.Errorf("%w: it may still hold data sealed with key %s, which the key file lacks; refusing to start — put the key back into the key file (remove an old key only after re-encryption with the new one has finished)",
			store.ErrKeyMismatch, strings.Join(missing, ", "))
	case hasPrimary:
		return nil
	}
	id := s.keys.PrimaryID()
	sealed, err := s.keys.Seal([]byte(keyCheckValue), keyCheckAAD(id))
	if err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `INSERT INTO key_checks (key_id, sealed, created_at) VALUES ($1, $2, $3)`, id, sealed, ts(s.now())); err != nil {
		return fmt.Errorf("record key check: %w", err)
	}
	return nil
}

func keyCheckAAD(id string) []byte { return secrets.AAD("key_checks", id, "sealed") }

// aad binds a sealed column value to its table, row and column.
func aad(table, column string, key ...string) []byte {
	parts := make([]string, 0, len(key)+2)
	parts = append(parts, table)
	parts = append(parts, key...)
	parts = append(parts, column)
	return secrets.AAD(parts...)
}

// seal encrypts a secret field; the empty value is stored as NULL, which
// tells no more than the column's presence does.
func (s *Store) seal(plain []byte, table, column string, key ...string) ([]byte, error) {
	if len(plain) == 0 {
		return nil, nil
	}
	c, err := s.keys.Seal(plain, aad(table, column, key...))
	if err != nil {
		return nil, fmt.Errorf("seal %s.%s: %w", table, column, err)
	}
	return c, nil
}

func (s *Store) open(sealed []byte, table, column string, key ...string) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	p, err := s.keys.Open(sealed, aad(table, column, key...))
	if err != nil {
		return nil, fmt.Errorf("open %s.%s: %w", table, column, err)
	}
	return p, nil
}

func (s *Store) sealString(plain, table, column string, key ...string) ([]byte, error) {
	return s.seal([]byte(plain), table, column, key...)
}

func (s *Store) openString(sealed []byte, table, column string, key ...string) (string, error) {
	p, err := s.open(sealed, table, column, key...)
	return string(p), err
}

// ts encodes a time: Unix nanoseconds, 0 for the zero time, clamped to the
// range int64 nanoseconds reach (years 1678 to 2262).
func ts(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Year() >= 2262:
		return math.MaxInt64
	case t.Year() <= 1678:
		return math.MinInt64 + 1
	}
	return t.UnixNano()
}

func tm(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// list encodes a string list as a JSON array.
func list(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// unlist decodes a list; empty lists come back nil.
func unlist(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// fold is the case-insensitive form of a username or email, NULL when
// empty so that any number of users may have none.
func fold(s string) any {
	if s == "" {
		return nil
	}
	return strings.ToLower(s)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// queryOne scans the first row of a query with scan; no row is ErrNotFound.
func queryOne(ctx context.Context, q Querier, scan func(Rows) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return store.ErrNotFound
	}
	if err := scan(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// queryAll scans every row of a query with scan.
func queryAll(ctx context.Context, q Querier, scan func(Rows) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exists reports whether a query returns a row.
func exists(ctx context.Context, q Querier, query string, args ...any) (bool, error) {
	err := queryOne(ctx, q, func(Rows) error { return nil }, query, args...)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// insertErr maps constraint violations of an insert or update to the
// store's errors.
func (s *Store) insertErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.db.IsUniqueViolation(err):
		return fmt.Errorf("%s: %w", op, store.ErrConflict)
	case s.db.IsForeignKeyViolation(err):
		return fmt.Errorf("%s: user or client %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// changed turns "no row changed" into ErrNotFound.
func changed(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
