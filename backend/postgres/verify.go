package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

var _ backend.Verifier = (*Backend)(nil)

// VerifySnapshot runs fn's reads in one REPEATABLE READ, READ ONLY transaction: one
// snapshot of the whole store, while workers go on committing.
func (b *Backend) VerifySnapshot(ctx context.Context, fn func(q backend.PruneQuery) error) error {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return b.dbError("verifying the store", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	query := func(sql string, args ...any) (backend.Rows, func(), error) {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}
	if err := fn(query); err != nil {
		return b.dbError("verifying the store", err)
	}
	return nil
}
