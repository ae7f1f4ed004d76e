package postgres

import (
	"context"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// CreateBatch records a new batch of action on ids, all pending, in one transaction.
func (b *Backend) CreateBatch(ctx context.Context, action, filter string, ids []string) (*backend.BatchRecord, error) {
	var id int64
	err := b.inTx(ctx, "recording a "+action+" batch", func(s *txState) error {
		if err := s.q.QueryRow(ctx, `INSERT INTO batches (action, filter, started_at) VALUES ($1, $2, $3) RETURNING id`,
			action, filter, toMS(b.now())).Scan(&id); err != nil {
			return err
		}
		_, err := s.q.Exec(ctx, `INSERT INTO batch_items (batch_id, seq, execution_id)
			SELECT $1, u.ord, u.id FROM unnest($2::text[]) WITH ORDINALITY AS u(id, ord)`, id, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b.GetBatch(ctx, id)
}

// GetBatch returns a batch with its counts.
func (b *Backend) GetBatch(ctx context.Context, id int64) (*backend.BatchRecord, error) {
	out, err := queryAll(ctx, b, fmt.Sprintf("reading batch %d", id), backend.ScanBatches,
		`SELECT `+backend.BatchColumns+` FROM batches b WHERE b.id = $1`, id)
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
	out, err := queryAll(ctx, b, "finding an unfinished "+action+" batch", backend.ScanBatches,
		`SELECT `+backend.BatchColumns+` FROM batches b
		WHERE b.action = $1 AND b.filter = $2 AND b.finished_at IS NULL ORDER BY b.id DESC LIMIT 1`, action, filter)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}

// PendingBatchItems returns the pending and acting items of batch id, in order.
func (b *Backend) PendingBatchItems(ctx context.Context, id int64) ([]backend.BatchItem, error) {
	return queryAll(ctx, b, fmt.Sprintf("reading the pending items of batch %d", id), backend.ScanBatchItems,
		`SELECT `+backend.BatchItemColumns+` FROM batch_items WHERE batch_id = $1 AND outcome IN ('', 'acting') ORDER BY seq`, id)
}

// MarkBatchItems records items' outcomes in one statement.
func (b *Backend) MarkBatchItems(ctx context.Context, id int64, items []backend.BatchItem) error {
	if len(items) == 0 {
		return nil
	}
	seqs, outcomes := make([]int32, len(items)), make([]string, len(items))
	versions, updated := make([]int64, len(items)), make([]int64, len(items))
	for i, it := range items {
		seqs[i], outcomes[i], versions[i], updated[i] = int32(it.Seq), it.Outcome, it.Version, it.UpdatedNs
	}
	if _, err := b.pool.Exec(ctx, `UPDATE batch_items i SET outcome = u.outcome, version = u.version, updated_ns = u.updated_ns
		FROM unnest($2::integer[], $3::text[], $4::bigint[], $5::bigint[]) AS u(seq, outcome, version, updated_ns)
		WHERE i.batch_id = $1 AND i.seq = u.seq`, id, seqs, outcomes, versions, updated); err != nil {
		return b.dbError(fmt.Sprintf("recording %d items of batch %d", len(items), id), err)
	}
	return nil
}

// FinishBatch marks a batch finished.
func (b *Backend) FinishBatch(ctx context.Context, id int64) error {
	if _, err := b.pool.Exec(ctx, `UPDATE batches SET finished_at = $2 WHERE id = $1`, id, toMS(b.now())); err != nil {
		return b.dbError(fmt.Sprintf("finishing batch %d", id), err)
	}
	return nil
}

var _ backend.Batcher = (*Backend)(nil)
