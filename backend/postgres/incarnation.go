package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stent-go/stent/backend"
)

// sqlIncarnation names the server a connection reached, as it runs now: a standby
// promoted in a failover, or the same server restarted, answers differently. Not its
// address: a host name may resolve to several addresses of one server.
const sqlIncarnation = `SELECT pg_postmaster_start_time()::text`

// incarnations tells when the pool's connections reach another server than before (see
// backend.LossCounter): every new connection asks which server it reached, and one
// that reached another than the last one counts a loss before it is used, so that a
// commit that relies on what this process read or committed earlier (it carries
// backend.WithLossMark) and holds such a connection fails as stale instead of
// committing against a history that may have lost those commits.
type incarnations struct {
	mu     sync.Mutex
	last   string
	losses atomic.Uint64
}

// hook installs the check on the pool's new connections.
func (in *incarnations) hook(cfg *pgxpool.Config) {
	prev := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if prev != nil {
			if err := prev(ctx, c); err != nil {
				return err
			}
		}
		var id string
		if err := c.QueryRow(ctx, sqlIncarnation, pgx.QueryExecModeSimpleProtocol).Scan(&id); err != nil {
			return fmt.Errorf("asking the server which it is: %w", err)
		}
		in.seen(id)
		return nil
	}
}

func (in *incarnations) seen(id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.last != "" && in.last != id {
		in.losses.Add(1)
	}
	in.last = id
}

// Losses implements backend.LossCounter.
func (b *Backend) Losses() uint64 { return b.inc.losses.Load() }

// checkLossMark fails a commit that relies on state read before the pool last reached
// another server (see incarnations).
func (b *Backend) checkLossMark(ctx context.Context) error {
	if mark, ok := backend.LossMark(ctx); ok && mark != b.inc.losses.Load() {
		return fmt.Errorf("the database server changed (a failover or restart) since this worker read the execution: %w",
			backend.ErrStaleExecution)
	}
	return nil
}
