package backend

import (
	"context"
	"time"
)

// A batch (`stent cancel|terminate|retry --where`) is recorded so that one killed
// half-way can be resumed: the batch row says what it does and to what filter, and its
// items are the IDs the filter matched when it started (a snapshot: the filter's result
// changes as the batch acts, a retried execution is no longer failed), each with its
// outcome once the batch has gone through it.

// Batch item outcomes. An item is pending until the batch goes through it; acting while
// the batch acts on it (a batch killed then left it so: the execution may or may not
// have been acted on); then done, skipped or failed.
const (
	BatchPending = ""
	BatchActing  = "acting"
	BatchDone    = "done"
	BatchSkipped = "skipped"
	BatchFailed  = "failed"
)

// BatchRecord is a recorded batch and how far it went.
type BatchRecord struct {
	ID             int64
	Action, Filter string // "retry", the --where filter as given
	StartedAt      time.Time
	FinishedAt     *time.Time // nil while it has items left (or was interrupted)
	// Counts of its items by outcome; Pending counts the pending and acting ones.
	Total, Done, Skipped, Failed, Pending int
}

// BatchItem is one execution of a batch.
type BatchItem struct {
	Seq         int // its position in the batch, from 1
	ExecutionID string
	Outcome     string
	// When acting: the execution's Version and UpdatedAt (UnixNano) as read just
	// before the action, to tell on resume whether the action took place.
	Version   int64
	UpdatedNs int64
}

// Batcher is an optional extension of Backend, implemented by both stores: the record
// of resumable batches.
type Batcher interface {
	// CreateBatch records a new batch of action on ids (in that order), all pending.
	CreateBatch(ctx context.Context, action, filter string, ids []string) (*BatchRecord, error)
	// GetBatch returns a batch with its counts, or an error wrapping ErrNotFound.
	GetBatch(ctx context.Context, id int64) (*BatchRecord, error)
	// UnfinishedBatch returns the latest unfinished batch of action with exactly
	// filter, or nil when there is none.
	UnfinishedBatch(ctx context.Context, action, filter string) (*BatchRecord, error)
	// PendingBatchItems returns the items of batch id that are pending or acting, in
	// order.
	PendingBatchItems(ctx context.Context, id int64) ([]BatchItem, error)
	// MarkBatchItems records the Outcome of each of items (and, when acting, its
	// Version and UpdatedNs) in batch id, all in one transaction.
	MarkBatchItems(ctx context.Context, id int64, items []BatchItem) error
	// FinishBatch marks batch id finished now.
	FinishBatch(ctx context.Context, id int64) error
}

// BatchColumns are the columns ScanBatch reads, counts included (from batches b).
const BatchColumns = `b.id, b.action, b.filter, b.started_at, b.finished_at,
	(SELECT count(*) FROM batch_items i WHERE i.batch_id = b.id),
	(SELECT count(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'done'),
	(SELECT count(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'skipped'),
	(SELECT count(*) FROM batch_items i WHERE i.batch_id = b.id AND i.outcome = 'failed')`

// BatchItemColumns are the columns ScanBatchItems reads.
const BatchItemColumns = `seq, execution_id, outcome, version, updated_ns`

// ScanBatchItems reads rows of BatchItemColumns.
func ScanBatchItems(rows Rows) ([]BatchItem, error) {
	return CollectRows(rows, func(s Scanner) (BatchItem, error) {
		var it BatchItem
		err := s.Scan(&it.Seq, &it.ExecutionID, &it.Outcome, &it.Version, &it.UpdatedNs)
		return it, err
	})
}

// ScanBatch reads one row of BatchColumns (times in Unix milliseconds).
func ScanBatch(s Scanner) (*BatchRecord, error) {
	var (
		r        BatchRecord
		started  int64
		finished *int64
	)
	if err := s.Scan(&r.ID, &r.Action, &r.Filter, &started, &finished, &r.Total, &r.Done, &r.Skipped, &r.Failed); err != nil {
		return nil, err
	}
	r.StartedAt = time.UnixMilli(started).UTC()
	if finished != nil {
		t := time.UnixMilli(*finished).UTC()
		r.FinishedAt = &t
	}
	r.Pending = r.Total - r.Done - r.Skipped - r.Failed
	return &r, nil
}

// ScanBatches reads rows of BatchColumns.
func ScanBatches(rows Rows) ([]*BatchRecord, error) {
	return CollectRows(rows, ScanBatch)
}
