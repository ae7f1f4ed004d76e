package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/stent-go/stent/backend"
)

var _ backend.Verifier = (*Backend)(nil)

// VerifySnapshot runs fn's reads in one read transaction on one connection: in WAL
// mode that is one snapshot of the database, while other connections and processes
// go on committing. An in-memory database is read through the writer connection.
func (b *Backend) VerifySnapshot(ctx context.Context, fn func(q backend.PruneQuery) error) error {
	run := func(conn *sql.Conn) error {
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return err
		}
		defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
		return fn(func(sql string, args ...any) (backend.Rows, func(), error) {
			rows, err := conn.QueryContext(ctx, sql, args...)
			if err != nil {
				return nil, nil, err
			}
			return rows, func() { _ = rows.Close() }, nil
		})
	}
	var err error
	if b.r != nil {
		var conn *sql.Conn
		if conn, err = b.r.Conn(ctx); err == nil {
			err = run(conn)
			_ = conn.Close()
		}
	} else {
		if err := b.lock(ctx); err != nil {
			return fmt.Errorf("sqlite %s: verifying the store: %w", b.name, err)
		}
		defer b.unlock()
		if err = b.ensureWriter(context.WithoutCancel(ctx), true); err == nil {
			err = run(b.wc)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite %s: verifying the store: %w", b.name, err)
	}
	return nil
}
