package postgres

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Several processes opening the same fresh schema at the same moment all succeed, and
// the migrations are applied once.
func TestConcurrentMigrate(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchemaName(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const n = 4
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
		bs    = make([]*Backend, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			bs[i], errs[i] = Open(ctx, dsn, WithSchema(schema), WithMaxConns(2))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
		} else {
			defer bs[i].Close()
		}
	}
	if t.Failed() {
		return
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := bs[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", count, len(ms))
	}
	// Idempotent: migrating again changes nothing.
	if err := bs[1].Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := bs[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) {
		t.Errorf("after a second Migrate schema_migrations has %d rows, want %d", count, len(ms))
	}
	// Tables live in the schema, not in public.
	var tables int
	if err := bs[0].pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name IN ('executions', 'events', 'tasks', 'scripts', 'workers', 'logs')`,
		schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 6 {
		t.Errorf("schema %s has %d of the 6 tables", schema, tables)
	}
}

func TestMigrationFilesAreOrdered(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations = %v, want them to start at version 1", ms)
	}
	for i := 1; i < len(ms); i++ {
		// Versions only grow: issues worked on side by side own numbers of their own, so
		// a tree may have gaps (the migrator applies by version set).
		if ms[i].Version <= ms[i-1].Version {
			t.Errorf("migration versions go from %d to %d, want them increasing", ms[i-1].Version, ms[i].Version)
		}
	}
}
