package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

var _ backend.Resetter = (*Backend)(nil)

// ResetExecution creates e with a history prefix copied from execution from and links
// the two, in one transaction.
func (b *Backend) ResetExecution(ctx context.Context, e backend.NewExecution, prefix []backend.NewEvent, from string, intoData json.RawMessage) (bool, error) {
	var created bool
	err := b.inTx(ctx, "resetting "+from+" into "+e.ID, func(s *txState) error {
		created = false
		now := toMS(b.now())
		var one int
		if err := s.q.QueryRow(ctx, `SELECT 1 FROM executions WHERE id = $1 FOR SHARE`, from).Scan(&one); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("execution %q: %w", from, backend.ErrNotFound)
			}
			return fmt.Errorf("reading execution %s: %w", from, err)
		}
		var n newExecutions
		if err := n.add(e, backend.DefaultQueue, now); err != nil {
			return err
		}
		sql, args := n.statement(now)
		rows, err := s.q.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("creating execution %s: %w", e.ID, err)
		}
		count, err := scanCreated(rows, s, now)
		if err != nil || count == 0 {
			return err
		}
		created = true
		var bt pgx.Batch
		for _, ev := range prefix {
			errv, err := errArg(ev.Error)
			if err != nil {
				return err
			}
			bt.Queue(sqlInsertEvent, e.ID, ev.Seq, string(ev.Kind), ev.Name, jsonArg(ev.Data), errv, now)
		}
		bt.Queue(sqlInsertEvent, from, 0, string(backend.EventResetInto), "", jsonArg(intoData), nil, now)
		if err := s.q.(pgx.Tx).SendBatch(ctx, &bt).Close(); err != nil {
			return fmt.Errorf("copying the history of %s into %s: %w", from, e.ID, err)
		}
		return nil
	})
	return created, err
}
