package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// CreateBatch records a new batch of action on ids, all pending, in one transaction.
func (b *Backend) CreateBatch(ctx context.Context, action, filter string, ids []string) (*backend.BatchRecord, error) {
	if ids == nil {
		ids = []string{} // not null: json_each of null is one row
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("recording a %s batch: %w", action, err)
	}
	var id int64
	err = b.write(ctx, "recording a "+action+" batch", func(t *wtx) error {
		res, err := t.execSQL(`INSERT INTO batches (action, filter, started_at) VALUES (?, ?, ?)`, action, filter, t.now)
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = t.execSQL(`INSERT INTO batch_items (batch_id, seq, execution_id)
			SELECT ?, key + 1, value FROM json_each(?)`, id, string(list))
		return err
	})
	if err != nil {
		return nil, err
	}
	return b.GetBatch(ctx, id)
}

// GetBatch returns a batch with its counts.
func (b *Backend) GetBatch(ctx context.Context, id int64) (*backend.BatchRecord, error) {
	out, err := readRows(b, ctx, fmt.Sprintf("reading batch %d", id), func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT `+backend.BatchColumns+` FROM batches b WHERE b.id = ?`, id)
	}, backend.ScanBatches)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("batch %d: %w", id, backend.ErrNotFound)
	}
	return out[0], nil
}

// UnfinishedBatch returns the latest unfinished batch of action with filter, or nil.
func (b *Backend) UnfinishedBatch(ctx context.Context, action, filter string) (*backend.BatchRecord, error) {
	out, err := readRows(b, ctx, "finding an unfinished "+action+" batch", func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT `+backend.BatchColumns+` FROM batches b
			WHERE b.action = ? AND b.filter = ? AND b.finished_at IS NULL ORDER BY b.id DESC LIMIT 1`, action, filter)
	}, backend.ScanBatches)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}

// PendingBatchItems returns the pending and acting items of batch id, in order.
func (b *Backend) PendingBatchItems(ctx context.Context, id int64) ([]backend.BatchItem, error) {
	return readRows(b, ctx, fmt.Sprintf("reading the pending items of batch %d", id), func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT `+backend.BatchItemColumns+` FROM batch_items
			WHERE batch_id = ? AND outcome IN ('', 'acting') ORDER BY seq`, id)
	}, backend.ScanBatchItems)
}

// MarkBatchItems records items' outcomes in one transaction.
func (b *Backend) MarkBatchItems(ctx context.Context, id int64, items []backend.BatchItem) error {
	if len(items) == 0 {
		return nil
	}
	return b.write(ctx, fmt.Sprintf("recording %d items of batch %d", len(items), id), func(t *wtx) error {
		for _, it := range items {
			if _, err := t.execSQL(`UPDATE batch_items SET outcome = ?, version = ?, updated_ns = ? WHERE batch_id = ? AND seq = ?`,
				it.Outcome, it.Version, it.UpdatedNs, id, it.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// FinishBatch marks a batch finished.
func (b *Backend) FinishBatch(ctx context.Context, id int64) error {
	return b.write(ctx, fmt.Sprintf("finishing batch %d", id), func(t *wtx) error {
		_, err := t.execSQL(`UPDATE batches SET finished_at = ? WHERE id = ?`, t.now, id)
		return err
	})
}

var _ backend.Batcher = (*Backend)(nil)
