package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// openView opens an engine without a worker on a fresh SQLite file and its web view.
func openView(t *testing.T, opts Options) (*stent.Engine, *Server, string) {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := stent.Open(context.Background(), filepath.Join(dir, "stent.db"), stent.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	opts.Logger = quiet
	s, err := Handler(eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	return eng, s, dir
}

// A worker is live within the grace, stopped after it (with the time its leases are
// reclaimed), and gone once the store's retention passed; the tasks it holds are
// listed under it.
func TestWorkersPage(t *testing.T) {
	ctx := context.Background()
	grace := 5 * time.Second
	eng, s, dir := openView(t, Options{DeadWorkerGrace: grace})
	b := eng.Backend()
	rt := b.(backend.Routing)
	started := time.Now().Add(-time.Minute)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rt.RecordWorker(ctx, backend.WorkerInfo{ID: "w-edge", Host: "edge-1", PID: 4242, Queues: []string{"pay"},
		Activities: []string{"charge", "refund"}, Concurrency: 8, InFlight: 1, StartedAt: started}))
	script := filepath.Join(dir, "one.star")
	must(os.WriteFile(script, []byte("def main():\n    return 1\n"), 0o644))
	id, err := eng.Dispatch(ctx, script, nil, stent.ID("order-7"))
	must(err)
	claimed, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w-edge", Limit: 1})
	must(err)
	if len(claimed) != 1 || claimed[0].ExecutionID != id {
		t.Fatalf("claimed %v, want the workflow task of %s", claimed, id)
	}

	now := time.Now()
	d, err := s.loadWorkers(ctx, now)
	must(err)
	if len(d.Rows) != 1 || d.Live != 1 || d.Stopped != 0 {
		t.Fatalf("workers = %+v, want one live", d)
	}
	w := d.Rows[0]
	if w.Stopped || w.Host != "edge-1" || w.PID != 4242 || w.Queues != "pay" || w.Concurrency != 8 || w.InFlight != 1 ||
		!w.Started.Equal(started.Truncate(time.Millisecond)) {
		t.Fatalf("live worker row = %+v", w)
	}
	if !d.TasksKnown || len(w.Tasks) != 1 || w.Tasks[0].ExecutionID != "order-7" || w.Tasks[0].Kind != "workflow" {
		t.Fatalf("the worker's tasks = %+v, want the workflow task of order-7", w.Tasks)
	}

	// Silent for longer than the grace: stopped, its leases reclaimed at heartbeat+grace.
	d, err = s.loadWorkers(ctx, now.Add(grace+time.Second))
	must(err)
	w = d.Rows[0]
	if !w.Stopped || d.Stopped != 1 || !w.ReclaimAt.Equal(w.Heartbeat.Add(grace)) ||
		!w.DropAt.Equal(w.Heartbeat.Add(backend.WorkerRetention)) {
		t.Fatalf("silent worker row = %+v, want stopped, reclaimed at heartbeat+%s", w, grace)
	}
	// After the retention the page drops it (the store deletes the row then).
	d, err = s.loadWorkers(ctx, now.Add(backend.WorkerRetention+time.Minute))
	must(err)
	if len(d.Rows) != 0 {
		t.Fatalf("after the retention the page shows %+v, want no worker", d.Rows)
	}

	// The page itself, with the link to the execution the worker holds.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/workers", nil))
	body := rec.Body.String()
	for _, want := range []string{`data-id="w-edge" data-state="live"`, `href="/executions/order-7"`, "charge, refund",
		`class="on">Workers</a>`} {
		if rec.Code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("GET /workers: %d, the page lacks %q:\n%s", rec.Code, want, body)
		}
	}
}
