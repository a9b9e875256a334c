package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-mcp/switchboard/internal/secrets"
	"github.com/switchboard-mcp/switchboard/internal/store"
	"github.com/switchboard-mcp/switchboard/internal/store/postgres"
	"github.com/switchboard-mcp/switchboard/internal/store/storetest"
)

// schemaDB creates a schema of its own for the test, dropped when it ends,
// and returns a DSN whose connections use it.
func schemaDB(t *testing.T) (dsn, schema string) {
	t.Helper()
	base := baseDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema = "sb_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	return withParam(t, base, "search_path", schema), schema
}

// baseDSN returns the server the tests use, or skips the test.
func baseDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SWITCHBOARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set SWITCHBOARD_TEST_POSTGRES_DSN to run the PostgreSQL contract tests")
	}
	return dsn
}

func withParam(t *testing.T, dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("SWITCHBOARD_TEST_POSTGRES_DSN must be a postgres:// URL")
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestContract(t *testing.T) {
	baseDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dsn, schema := schemaDB(t)
		return storetest.Harness{
			Open: func(ctx context.Context, keys *secrets.Keyring) (store.Store, error) {
				return postgres.Open(ctx, dsn, keys)
			},
			Dump: func(t *testing.T) []byte { return dump(t, dsn, schema) },
		}
	})
}

// dump returns every row of every table in the schema as PostgreSQL's text
// form of the row (bytea columns as hex), and every bytea column raw.
func dump(t *testing.T, dsn, schema string) []byte {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = $1 ORDER BY table_name, ordinal_position`, schema)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.table, &c.name, &c.typ)
		return c, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tables := map[string]bool{}
	for _, c := range cols {
		if !tables[c.table] {
			tables[c.table] = true
			rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{c.table}.Sanitize()+" t")
			if err != nil {
				t.Fatal(err)
			}
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(strings.Join(texts, "\n"))
		}
		if c.typ == "bytea" {
			rows, err := conn.Query(ctx, "SELECT "+pgx.Identifier{c.name}.Sanitize()+" FROM "+pgx.Identifier{c.table}.Sanitize())
			if err != nil {
				t.Fatal(err)
			}
			blobs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range blobs {
				out.Write(b)
				out.WriteByte('\n')
			}
		}
	}
	if len(tables) < 10 {
		t.Fatalf("dump found only %d tables in schema %s", len(tables), schema)
	}
	return out.Bytes()
}

// TestConcurrentStartup opens stores on a new schema at once, as replicas
// starting together do: the advisory lock lets one migrate and the others
// find the schema done.
func TestConcurrentStartup(t *testing.T) {
	dsn, _ := schemaDB(t)
	keys := storetest.Keys(t, "k1")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn, keys)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBadDSNHidesPassword(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://u:hunter2@[bad/x", storetest.Keys(t, "k1"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open error = %v; want an error without the password", err)
	}
}
