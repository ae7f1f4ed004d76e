package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
)

// testBackend opens a fresh, private store for one end-to-end test.
type testBackend struct {
	name string
	open func(t *testing.T) backend.Backend // nil: the engine opens a SQLite file itself
}

// testBackends lists the stores end-to-end tests run on: SQLite always, PostgreSQL when
// STENT_TEST_POSTGRES names a server (required in CI).
func testBackends(t *testing.T) []testBackend {
	list := []testBackend{{name: "sqlite"}}
	dsn := os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STENT_TEST_POSTGRES is required in CI (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
		}
		t.Log("STENT_TEST_POSTGRES is not set: end-to-end tests run on SQLite only")
		return list
	}
	return append(list, testBackend{name: "postgres", open: func(t *testing.T) backend.Backend {
		t.Helper()
		return openPostgresSchema(t, dsn, "stent_e2e_", postgres.WithMaxConns(8))
	}})
}

// openPostgresSchema opens the PostgreSQL backend at dsn on a fresh schema named
// prefix+random, dropped when tb ends.
func openPostgresSchema(tb testing.TB, dsn, prefix string, opts ...postgres.Option) backend.Backend {
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := prefix + hex.EncodeToString(r[:])
	ctx := context.Background()
	be, err := postgres.Open(ctx, dsn, append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	if err != nil {
		tb.Fatalf("opening postgres (STENT_TEST_POSTGRES): %v", err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Logf("dropping schema %s: %v", schema, err)
		}
	})
	return be
}

// newFixtureOn is newFixture on a given store.
func newFixtureOn(t *testing.T, tb testBackend, cacheSize int, register func(e *Engine)) *fixture {
	t.Helper()
	if tb.open == nil {
		return newFixture(t, cacheSize, register)
	}
	return newFixtureWith(t, filepath.Join(t.TempDir(), "unused.db"), register, WithCacheSize(cacheSize), WithBackend(tb.open(t)))
}
