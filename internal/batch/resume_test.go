package batch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// versioned is an engine whose executions have versions, as a store's do.
type versioned map[string]*backend.Execution

func (v versioned) List(_ context.Context, fl backend.ListFilter) ([]backend.Execution, error) {
	var out []backend.Execution
	for _, ex := range v {
		if fl.Status == "" || fl.Status == ex.Status {
			out = append(out, *ex)
		}
	}
	return out, nil
}

func (v versioned) Get(_ context.Context, id string) (*backend.Execution, error) {
	ex, ok := v[id]
	if !ok {
		return nil, fmt.Errorf("execution %s: %w", id, backend.ErrNotFound)
	}
	c := *ex
	return &c, nil
}

// memBatches is backend.Batcher in memory, for one batch.
type memBatches struct {
	rec      backend.BatchRecord
	items    []backend.BatchItem
	finished bool
}

func (m *memBatches) CreateBatch(_ context.Context, action, filter string, ids []string) (*backend.BatchRecord, error) {
	m.rec = backend.BatchRecord{ID: 1, Action: action, Filter: filter, Total: len(ids)}
	for i, id := range ids {
		m.items = append(m.items, backend.BatchItem{Seq: i + 1, ExecutionID: id})
	}
	return &m.rec, nil
}
func (m *memBatches) GetBatch(context.Context, int64) (*backend.BatchRecord, error) {
	return &m.rec, nil
}
func (m *memBatches) UnfinishedBatch(context.Context, string, string) (*backend.BatchRecord, error) {
	return nil, nil
}
func (m *memBatches) PendingBatchItems(context.Context, int64) ([]backend.BatchItem, error) {
	var out []backend.BatchItem
	for _, it := range m.items {
		if it.Outcome == backend.BatchPending || it.Outcome == backend.BatchActing {
			out = append(out, it)
		}
	}
	return out, nil
}
func (m *memBatches) MarkBatchItems(_ context.Context, _ int64, items []backend.BatchItem) error {
	for _, it := range items {
		m.items[it.Seq-1] = it
	}
	return nil
}
func (m *memBatches) FinishBatch(context.Context, int64) error { m.finished = true; return nil }

// A recorded batch killed half-way and resumed acts on no execution twice, though the
// ones it retried failed again (and match status=failed again); the one it was acting
// on when killed is retried again only if it has not changed since.
func TestResume(t *testing.T) {
	ctx := context.Background()
	eng := versioned{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		eng[id] = &backend.Execution{ID: id, Status: backend.StatusFailed, Version: 3}
	}
	acted := map[string]int{}
	a := Retry(func(_ context.Context, id string) error {
		acted[id]++
		eng[id].Version++ // retried, then failed again at once
		return nil
	})
	st := &memBatches{}
	ids, _, err := Select(ctx, eng, backend.ListFilter{Status: backend.StatusFailed}, a)
	if err != nil || len(ids) != 5 {
		t.Fatalf("Select: %v, %v", ids, err)
	}
	rec, err := Start(ctx, st, a, "status=failed", []string{"a", "b", "c", "d", "e"})
	if err != nil {
		t.Fatal(err)
	}
	// The first run is killed while acting on c: a and b were retried, c's record says
	// acting; then a second kill is simulated on d, left acting but never retried.
	items, _ := Pending(ctx, st, rec)
	cctx, cancel := context.WithCancel(ctx)
	if _, err := Resume(cctx, eng, st, a, rec, items, Options{Each: func(i int, _ Result) {
		if i == 2 {
			cancel()
		}
	}}); err == nil {
		t.Fatal("the interrupted run returned no error")
	}
	// Killed after retrying c, before recording it: c is at version 4 now.
	zero := time.Time{}.UnixNano()
	st.items[2] = backend.BatchItem{Seq: 3, ExecutionID: "c", Outcome: backend.BatchActing, Version: 3, UpdatedNs: zero}
	st.items[3] = backend.BatchItem{Seq: 4, ExecutionID: "d", Outcome: backend.BatchActing, Version: 3, UpdatedNs: zero}
	if st.finished {
		t.Fatal("an interrupted batch is finished")
	}
	items, _ = Pending(ctx, st, rec)
	if len(items) != 3 {
		t.Fatalf("pending after the kill: %+v, want c, d, e", items)
	}
	var got []Result
	sum, err := Resume(ctx, eng, st, a, rec, items, Options{Each: func(_ int, r Result) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Processed: 3, Done: 3}) || !st.finished {
		t.Fatalf("resumed: %+v, finished %v", sum, st.finished)
	}
	if !got[0].Before || got[0].Reason(a) != "retried before the interruption" || got[1].Before || got[2].Before {
		t.Fatalf("results %+v", got)
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if acted[id] != 1 {
			t.Fatalf("retried: %v, want each once", acted)
		}
	}
}
