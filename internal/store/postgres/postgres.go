// Package postgres is the store for several replicas sharing one
// PostgreSQL database, through github.com/jackc/pgx/v5. cmd/switchboard
// imports it.
//
// Single-use operations are single conditional statements (UPDATE ... WHERE
// used_at = 0 RETURNING, DELETE ... RETURNING, INSERT ... ON CONFLICT DO
// UPDATE ... WHERE), so the row lock decides the one winner among replicas
// at READ COMMITTED. Start-up migrations and the key check run under a
// transaction-scoped advisory lock, so replicas may start together.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store in PostgreSQL. Besides the interface it has
// RotateSecrets, which re-encrypts values sealed by older keys.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// migrationLock is the advisory lock key start-up holds; any constant that
// other applications on the database do not use.
const migrationLock = 0x5377_6274_4d69_6772 // "SwbtMigr"

// Open connects to the database at dsn (a postgres:// URL or key=value
// string; a search_path parameter selects the schema), migrates it and
// checks keys against it: a key ring that cannot open what the database
// holds is refused with store.ErrKeyMismatch.
func Open(ctx context.Context, dsn string, keys *secrets.Keyring) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("postgres store: cannot parse the connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connect to %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	s, err := sqlstore.New(ctx, &db{pool: pool}, keys, &sqlstore.Options{
		Migrations: sub,
		Lock:       fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return &Store{s}, nil
}

// db adapts a pgx pool.
type db struct {
	pool *pgxpool.Pool
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func exec(ctx context.Context, q querier, query string, args []any) (int64, error) {
	tag, err := q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d *db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, d.pool, query, args)
}

func (d *db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return d.pool.Query(ctx, query, args...)
}

func (d *db) Tx(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		return fn(txQuerier{tx})
	})
}

func (d *db) IsUniqueViolation(err error) bool     { return hasCode(err, "23505") }
func (d *db) IsForeignKeyViolation(err error) bool { return hasCode(err, "23503") }

func hasCode(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
}

func (d *db) Close() error {
	d.pool.Close()
	return nil
}

type txQuerier struct{ tx pgx.Tx }

func (q txQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return exec(ctx, q.tx, query, args)
}

func (q txQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.tx.Query(ctx, query, args...)
}
