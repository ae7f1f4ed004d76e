package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// testDSN returns the database the tests run against (env STENT_TEST_POSTGRES, e.g.
// postgres://root@127.0.0.1:5432/test?sslmode=disable). Without it the test is skipped,
// except in CI where it fails.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STENT_TEST_POSTGRES is required in CI: set it to a PostgreSQL DSN, " +
				"e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable")
		}
		t.Skip("STENT_TEST_POSTGRES is not set; set it to a PostgreSQL DSN to run the PostgreSQL tests")
	}
	return dsn
}

// newSchemaName returns a fresh schema name and drops that schema when the test ends.
// Register it before anything that must be closed first (cleanups run last-in first-out).
func newSchemaName(t testing.TB, dsn string) string {
	t.Helper()
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	schema := "stent_test_" + hex.EncodeToString(buf[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+quoteIdent(schema)+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// openTestBackend opens a backend on a fresh schema, closed and dropped with the test.
func openTestBackend(t testing.TB, clock backend.Clock, opts ...Option) *Backend {
	t.Helper()
	dsn := testDSN(t)
	schema := newSchemaName(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]Option{WithSchema(schema), WithClock(clock), WithMaxConns(4)}, opts...)
	b, err := Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("opening postgres backend (schema %s): %v", schema, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
