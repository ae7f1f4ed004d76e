package postgres

import (
	"context"

	"github.com/stent-go/stent/backend"
)

var _ backend.CommitCounter = (*Backend)(nil)

// Commits returns pg_stat_database.xact_commit of the current database: the
// transactions every session committed, reads included, as the statistics system last
// reported them. A session reports when it goes idle (at most once a second) and when
// it closes, so read it after the work's connections went idle or closed.
func (b *Backend) Commits(ctx context.Context) (int64, error) {
	var n int64
	// Each query is its own transaction, so the statistics snapshot is a fresh one.
	err := b.pool.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, b.dbError("reading the commit count", err)
	}
	return n, nil
}
