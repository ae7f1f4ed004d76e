package tests

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/tests/internal/stentcli"
)

// The scale run (make test-scale, issue #26's "flat at scale"): a PostgreSQL store
// filled with STENT_SCALE_COUNT ended executions and their histories must serve the
// hot path as the empty store does, list its first page at once, and let retention
// delete them fast without stalling a running workload. The run prints every figure
// in one block for a human to hold against the targets (P5 p50 within 1.2× the empty
// store's, `stent list` first page within 100 ms, retention at 5,000 executions/s or
// more); it asserts only what is not a timing: every filled execution deleted, every
// workflow's result right.
//
// P5 is driven here through the Go API, as `stent bench --scenario P5` runs it (one
// process serving with concurrency 64, one.star's one activity returning 100 bytes,
// round trips one after the other, each dispatched and waited for, runs on fresh
// engines, medians over runs), but against one database kept across the phases: the
// bench makes a fresh schema per run.

const (
	scaleP5Runs  = 3   // runs per P5 measurement, each on a fresh engine; medians over runs
	scaleP5Trips = 200 // round trips per run, as P5 at --scale 1
	scaleP5Warm  = 5   // round trips before each run's measured ones
	scaleLists   = 7   // `stent list` runs; the median is reported
)

// scalePayload is what the work activity returns, as the bench's: 100 bytes.
var scalePayload = strings.Repeat("0123456789", 10)

const scaleScript = `
def main():
    return len(durable("work", 0))
`

// p5Figures are a P5 measurement's latencies: medians over runs of each run's p50 and p99.
type p5Figures struct{ p50, p99 time.Duration }

func (f p5Figures) String() string {
	return fmt.Sprintf("p50 %s, p99 %s", fmtMS(f.p50), fmtMS(f.p99))
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// latencyAt is the q-quantile of ds (nearest rank).
func latencyAt(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// scaleCount is STENT_SCALE_COUNT; the run is skipped without it.
func scaleCount(t *testing.T) int {
	t.Helper()
	v := os.Getenv("STENT_SCALE_COUNT")
	if v == "" {
		t.Skip("STENT_SCALE_COUNT not set (e.g. 1000000, as make test-scale sets it); skipping the scale run")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("STENT_SCALE_COUNT = %q, want a positive count of executions", v)
	}
	return n
}

// scaleEngine is an engine serving the work activity on the scale run's database.
type scaleEngine struct {
	eng    *stentapi.Engine
	script string
	stop   func()
}

func openScaleEngine(t *testing.T, ctx context.Context, dsn, script string) *scaleEngine {
	t.Helper()
	eng, err := stentapi.Open(ctx, dsn, stentapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatalf("opening the engine: %v", err)
	}
	if err := eng.Register("work", func(ctx context.Context, i int) (string, error) { return scalePayload, nil }); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Serve(sctx, stentapi.WorkerOptions{Concurrency: 64}) }()
	stop := sync.OnceFunc(func() { cancel(); <-served; _ = eng.Close() })
	t.Cleanup(stop)
	if err := eng.WaitUntilReady(ctx); err != nil {
		t.Fatalf("waiting for the worker: %v", err)
	}
	return &scaleEngine{eng: eng, script: script, stop: stop}
}

// trip runs one P5 round trip: dispatch one.star, wait for it, check its result.
func (s *scaleEngine) trip(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	id, err := s.eng.Dispatch(ctx, s.script, nil)
	if err != nil {
		return 0, fmt.Errorf("dispatching: %w", err)
	}
	res, err := s.eng.WaitFor(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("waiting for %s: %w", id, err)
	}
	var got int
	if err := res.Decode(&got); err != nil || got != len(scalePayload) {
		return 0, fmt.Errorf("execution %s returned %s (%v), want %d", id, res.Value, err, len(scalePayload))
	}
	return time.Since(t0), nil
}

// trips runs n round trips and returns their latencies.
func (s *scaleEngine) trips(t *testing.T, ctx context.Context, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		d, err := s.trip(ctx)
		if err != nil {
			t.Fatalf("P5: %v", err)
		}
		out = append(out, d)
	}
	return out
}

// measureP5 runs P5 scaleP5Runs times, each on a fresh engine.
func measureP5(t *testing.T, ctx context.Context, dsn, script string) p5Figures {
	t.Helper()
	var p50s, p99s []time.Duration
	for range scaleP5Runs {
		s := openScaleEngine(t, ctx, dsn, script)
		s.trips(t, ctx, scaleP5Warm)
		lat := s.trips(t, ctx, scaleP5Trips)
		s.stop()
		p50s, p99s = append(p50s, latencyAt(lat, 0.50)), append(p99s, latencyAt(lat, 0.99))
	}
	return p5Figures{p50: latencyAt(p50s, 0.5), p99: latencyAt(p99s, 0.5)}
}

// fillScale adds n ended root executions, 9 in 10 completed and 1 in 10 failed, ended
// over the 7 days before the last 2 hours, each with the history of a two-activity
// workflow (started, activity_scheduled and activity_completed twice, the end: 6
// events), all of one script; then vacuums and analyzes, as a store whose old rows
// autovacuum has long seen. Set-based, 100,000 executions a statement.
func fillScale(t *testing.T, ctx context.Context, dsn string, n int, nowMS int64) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to fill the store: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	hash := strings.Repeat("5", 64)
	bundle := `{"main":"flow.star","files":{"flow.star":"` + hash + `"}}`
	newest := nowMS - 2*time.Hour.Milliseconds()
	spread := max(int64(7*24*time.Hour/time.Millisecond)/int64(n), 1) // ms between two ends
	exec := func(what, sql string, args ...any) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("filling the store (%s): %v", what, err)
		}
	}
	exec("script", `INSERT INTO scripts (hash, source) VALUES ($1, $2) ON CONFLICT DO NOTHING`, hash,
		[]byte("def main():\n    durable(\"work\", 0)\n    durable(\"work\", 1)\n    return \"ok\"\n"))
	// completed_at of execution i: newest - (n - i) * spread; created 50 ms before.
	const ended = `($3::bigint - ($2::int - i)::bigint * $4::bigint)`
	const chunk = 100000
	start := time.Now()
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		exec("executions", `INSERT INTO executions (id, parent_id, bundle, entry, args, queue, status, result, error,
				version, created_at, updated_at, start_at, completed_at)
			SELECT 'scale-' || lpad(i::text, 8, '0'), '', $5, 'main', '[]', 'default',
				CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
				CASE WHEN i % 10 = 0 THEN NULL ELSE '"ok"' END,
				CASE WHEN i % 10 = 0 THEN '{"message":"boom","type":"error"}' END,
				4, `+ended+` - 50, `+ended+`, `+ended+` - 50, `+ended+`
			FROM generate_series($1::int, $6::int) AS g(i)`, lo, n, newest, spread, bundle, hi)
		exec("events", `INSERT INTO events (execution_id, seq, kind, name, data, error, at)
			SELECT 'scale-' || lpad(i::text, 8, '0'), k.seq,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN 'failed' ELSE k.kind END, k.name,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN NULL ELSE k.data END,
				CASE WHEN k.n = 5 AND i % 10 = 0 THEN '{"message":"boom","type":"error"}' END,
				`+ended+` - 50 + k.n * 10
			FROM generate_series($1::int, $5::int) AS g(i)
			CROSS JOIN (VALUES (0, 0, 'started', '', '[]'),
				(1, 1, 'activity_scheduled', 'work', '{"args":[0]}'),
				(2, 1, 'activity_completed', 'work', '"' || repeat('0123456789', 10) || '"'),
				(3, 2, 'activity_scheduled', 'work', '{"args":[1]}'),
				(4, 2, 'activity_completed', 'work', '"' || repeat('0123456789', 10) || '"'),
				(5, 0, 'completed', '', '"ok"')) AS k(n, seq, kind, name, data)
			ORDER BY i, k.n`, lo, n, newest, spread, hi)
		if hi < n {
			t.Logf("filled %d of %d executions (%s)", hi, n, time.Since(start).Round(time.Second))
		}
	}
	exec("vacuum", `VACUUM (ANALYZE) executions, events, scripts`)
}

// pgCount runs a count query on dsn.
func pgCount(t *testing.T, ctx context.Context, dsn, sql string) int64 {
	t.Helper()
	var n int64
	if err := pgxQueryRow(ctx, dsn, sql, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// timeList runs `stent list` (default flags) scaleLists times and returns the median
// wall time of the process.
func timeList(t *testing.T, dir, dsn string) time.Duration {
	t.Helper()
	var walls []time.Duration
	for range scaleLists {
		t0 := time.Now()
		r := stentOn(t, dir, dsn, "list")
		walls = append(walls, time.Since(t0))
		if r.code != 0 || !strings.Contains(r.stdout, "completed") {
			t.Fatalf("stent list: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	}
	return latencyAt(walls, 0.5)
}

var prunedRe = regexp.MustCompile(`pruned (\d+) executions`)

// TestScale is the scale run (see above): STENT_SCALE_COUNT executions, on a fresh
// database.
func TestScale(t *testing.T) {
	n := scaleCount(t)
	db := newPostgresDB(t)
	// Dropped here first, with time to spare: the drop waits for a checkpoint, long
	// after a big fill on a busy server. (Cleanups run last-in first-out: after the
	// engines' and before newPostgresDB's own, which then finds nothing to drop.)
	t.Cleanup(func() { db.drop(t, 10*time.Minute) })
	ctx := context.Background()
	dir := t.TempDir()
	script := filepath.Join(dir, "one.star")
	writeFile(t, script, scaleScript, 0o644)
	runStart := time.Now()

	// P5 on the empty store (the first engine migrates it), and an engine kept open
	// through the fill: its statements were planned on the empty store.
	empty := measureP5(t, ctx, db.dsn, script)
	early := openScaleEngine(t, ctx, db.dsn, script)
	early.trips(t, ctx, scaleP5Warm)
	emptyList := timeList(t, dir, db.dsn)
	workload := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM executions`)

	t0 := time.Now()
	fillScale(t, ctx, db.dsn, n, time.Now().UnixMilli())
	fillTime := time.Since(t0)
	var size string
	if err := pgxQueryRow(ctx, db.dsn, `SELECT pg_size_pretty(pg_database_size(current_database()))`, &size); err != nil {
		t.Fatal(err)
	}
	events := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM events WHERE execution_id LIKE 'scale-%'`)

	// P5 on the filled store: fresh engines, then the engine opened before the fill.
	filled := measureP5(t, ctx, db.dsn, script)
	earlyLat := early.trips(t, ctx, scaleP5Trips)
	early.stop()
	earlyFig := p5Figures{p50: latencyAt(earlyLat, 0.5), p99: latencyAt(earlyLat, 0.99)}

	// stent list, first page; and, in process, its two queries.
	listWall := timeList(t, dir, db.dsn)
	s := openScaleEngine(t, ctx, db.dsn, script)
	var listAPI, countAPI, exactAPI []time.Duration
	for range scaleLists {
		t1 := time.Now()
		page, err := s.eng.List(ctx, backend.ListFilter{RootOnly: true, Limit: 50})
		listAPI = append(listAPI, time.Since(t1))
		if err != nil || len(page) != 50 {
			t.Fatalf("List: %d executions, %v; want 50", len(page), err)
		}
		t1 = time.Now()
		if _, err := s.eng.Backend().CountExecutions(ctx, backend.ListFilter{RootOnly: true, CountAtMost: backend.DefaultCountAtMost}); err != nil {
			t.Fatalf("CountExecutions: %v", err)
		}
		countAPI = append(countAPI, time.Since(t1))
		t1 = time.Now()
		if _, err := s.eng.Backend().CountExecutions(ctx, backend.ListFilter{RootOnly: true}); err != nil {
			t.Fatalf("CountExecutions (exact): %v", err)
		}
		exactAPI = append(exactAPI, time.Since(t1))
	}

	// Retention (`stent prune`, a process of its own) while s runs P5 round trips.
	s.trips(t, ctx, scaleP5Warm)
	pctx, cancel := context.WithTimeout(ctx, 90*time.Minute)
	defer cancel()
	pruneDone := make(chan struct{})
	var (
		during  []time.Duration
		tripErr error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-pruneDone:
				return
			default:
			}
			d, err := s.trip(pctx)
			if err != nil {
				tripErr = err
				return
			}
			during = append(during, d)
		}
	}()
	cmd := exec.CommandContext(pctx, stentBin, "prune", "--older-than", "1h")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STENT_DB="+db.dsn)
	t0 = time.Now()
	out, errOut, code := stentcli.Run(t, cmd)
	pruneWall := time.Since(t0)
	close(pruneDone)
	wg.Wait()
	if code != 0 {
		t.Fatalf("stent prune: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if tripErr != nil {
		t.Fatalf("P5 during the prune: %v", tripErr)
	}
	m := prunedRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("stent prune printed %q, want \"pruned N executions\"", out)
	}
	pruned, _ := strconv.Atoi(m[1])
	duringFig := p5Figures{p50: latencyAt(during, 0.5), p99: latencyAt(during, 0.99)}

	// Outcomes: every filled execution and its history gone, the workload's kept.
	if pruned != n {
		t.Errorf("stent prune deleted %d executions, want %d", pruned, n)
	}
	if left := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM executions WHERE id LIKE 'scale-%'`); left != 0 {
		t.Errorf("%d filled executions left after the prune", left)
	}
	if left := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM events WHERE execution_id LIKE 'scale-%'`); left != 0 {
		t.Errorf("%d events of filled executions left after the prune", left)
	}
	if events != int64(6*n) {
		t.Errorf("the fill wrote %d events, want %d", events, 6*n)
	}
	ran := workload + int64(scaleP5Runs*(scaleP5Warm+scaleP5Trips)+scaleP5Trips+scaleP5Warm+len(during))
	kept := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM executions WHERE id NOT LIKE 'scale-%' AND status = 'completed'`)
	if all := pgCount(t, ctx, db.dsn, `SELECT count(*) FROM executions`); kept != ran || all != ran {
		t.Errorf("%d workload executions completed and kept (%d executions in all), want %d", kept, all, ran)
	}

	var b strings.Builder
	row := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "\n  %-46s %s", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "scale run: %d ended executions (%d events) on PostgreSQL, %s", n, events, time.Now().Format(time.RFC3339))
	row("fill (set-based SQL, VACUUM ANALYZE)", "%s, database %s", fillTime.Round(time.Millisecond), size)
	row(fmt.Sprintf("P5, empty store (%d runs × %d round trips)", scaleP5Runs, scaleP5Trips), "%s", empty)
	row("P5, filled store (fresh engines)", "%s: p50 %.2f× the empty store's (target ≤ 1.2×)",
		filled, float64(filled.p50)/float64(empty.p50))
	row("P5, filled store (engine opened before fill)", "%s (one run)", earlyFig)
	row(fmt.Sprintf("stent list, first page (median of %d)", scaleLists), "%s process wall (target ≤ 100 ms); %s on the empty store",
		fmtMS(listWall), fmtMS(emptyList))
	row("  in process: List / CountExecutions", "%s / %s (medians; counts up to %d per status as `stent list` does, exact: %s)",
		fmtMS(latencyAt(listAPI, 0.5)), fmtMS(latencyAt(countAPI, 0.5)), backend.DefaultCountAtMost, fmtMS(latencyAt(exactAPI, 0.5)))
	row("stent prune --older-than 1h", "%d executions in %s: %.0f executions/s (target ≥ 5,000/s)",
		pruned, pruneWall.Round(time.Millisecond), float64(pruned)/pruneWall.Seconds())
	row(fmt.Sprintf("P5 during the prune (%d round trips)", len(during)), "%s", duringFig)
	row("whole run", "%s", time.Since(runStart).Round(time.Second))
	t.Log("\n" + b.String())
}

// pgxQueryRow scans one row of sql on a connection of its own to dsn.
func pgxQueryRow(ctx context.Context, dsn, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
