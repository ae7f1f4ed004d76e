package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/stent-go/stent/backend"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// migrationLockClass is the first key of the advisory lock that serializes
// migrations; the second is a hash of the schema name.
const migrationLockClass = 0x5354454e // "STEN"

// migrations lists the embedded migration files (NNN_name.up.sql) in version order.
func migrations() ([]backend.Migration, error) {
	return backend.LoadMigrations(migrationFiles, "migrations")
}

// Migrate creates the schema (with WithSchema) and applies the migrations not yet
// recorded in schema_migrations, all in one transaction that holds an advisory lock, so
// processes migrating at the same moment wait for each other and then find nothing to do.
func (b *Backend) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	var done []string
	err = b.inTx(ctx, "migrating", func(s *txState) error {
		done = nil
		tx := s.q
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(migrationLockClass), b.schema); err != nil {
			return err
		}
		if b.schema != "" {
			q := quoteIdent(b.schema)
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+q); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := backend.ScanVersions(rows)
		rows.Close()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			done = append(done, m.File)
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.Applied(done...)
	}
	return err
}
