package tests

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	stentapi "github.com/stent-go/stent"
)

// oldScriptHash is the script of the seeded executions: referenced by nothing else,
// so retention deletes it with them.
var oldScriptHash = strings.Repeat("e", 64)

// retentionStore is a database seen directly through SQL, to seed old executions fast
// and measure sizes.
type retentionStore struct {
	name  string
	dsn   string // what the engine opens
	exec  func(t *testing.T, q string)
	count func(t *testing.T, q string) int64
	size  func(t *testing.T) string
}

// seedOld inserts n completed root executions that ended at endedMS (one child in ten,
// four events and a log line each, all of one script), plus, just as old and of
// another script, a completed root whose child
// still runs (keep-run, keep-run/1) and a running root (keep-live).
func seedOld(t *testing.T, st retentionStore, n int, endedMS int64) {
	t.Helper()
	bundle := `'{"main":"old.star","files":{"old.star":"` + oldScriptHash + `"}}'`
	gen := fmt.Sprintf(`WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < %d) `, n)
	T := strconv.FormatInt(endedMS, 10)
	cols := `INSERT INTO executions (id, parent_id, parent_seq, bundle, entry, args, queue, status, result, version,
		created_at, updated_at, start_at, completed_at) `
	st.exec(t, gen+cols+`SELECT 'old-' || x, '', 0, `+bundle+`, 'main', '[]', 'default', 'completed', '1', 3, `+
		T+`, `+T+`, `+T+`, `+T+` - x % 1000 FROM g`)
	st.exec(t, gen+cols+`SELECT 'old-' || x || '/1', 'old-' || x, 1, `+bundle+`, 'main:child', '[]', 'default', 'completed',
		'1', 3, `+T+`, `+T+`, `+T+`, `+T+` FROM g WHERE x % 10 = 0`)
	st.exec(t, gen+`INSERT INTO events (execution_id, seq, kind, name, data, at)
		SELECT 'old-' || x, k.seq, k.kind, k.name, k.data, `+T+` FROM g CROSS JOIN (
			SELECT 0 AS seq, 'started' AS kind, '' AS name, '[]' AS data
			UNION ALL SELECT 1, 'activity_scheduled', 'work', '{"args":[1]}'
			UNION ALL SELECT 1, 'activity_completed', 'work', '1'
			UNION ALL SELECT 0, 'completed', '', '1') k`)
	st.exec(t, gen+`INSERT INTO logs (execution_id, at, message) SELECT 'old-' || x, `+T+`, 'hello from an old run' FROM g`)
	bundle = `'{"main":"keep.star","files":{"keep.star":"` + strings.Repeat("f", 64) + `"}}'`
	st.exec(t, cols+`VALUES ('keep-run', '', 0, `+bundle+`, 'main', '[]', 'default', 'completed', '1', 3, `+T+`, `+T+`, `+T+`, `+T+`)`)
	st.exec(t, cols+`VALUES ('keep-run/1', 'keep-run', 1, `+bundle+`, 'main:child', '[]', 'default', 'running', NULL, 3, `+T+`, `+T+`, `+T+`, NULL)`)
	st.exec(t, cols+`VALUES ('keep-live', '', 0, `+bundle+`, 'main', '[]', 'default', 'running', NULL, 3, `+T+`, `+T+`, `+T+`, NULL)`)
}

func retentionCount() int {
	if s := os.Getenv("STENT_RETENTION_COUNT"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 5000
}

const fanOutFlow = `def main(n):
    total = 0
    for v in gather([start("work", n, i) for i in range(10)]):
        total += v
    return total
`

// Retention by a worker deletes N ended executions older than the retention (5,000 in
// the suite; STENT_RETENTION_COUNT=100000 for the measurement) while 100 workflows of
// 10 activities each run: the workload completes, the old executions, their history,
// logs and script are gone, and an old completed root whose child still runs, that
// child, and an old running root are untouched. A dry run before changes nothing.
func TestRetentionWhileWorkloadRuns(t *testing.T) {
	n := retentionCount()
	stores := []func(t *testing.T) retentionStore{sqliteRetentionStore}
	if os.Getenv("STENT_TEST_POSTGRES") != "" || os.Getenv("CI") == "true" {
		stores = append(stores, pgRetentionStore)
	}
	for _, open := range stores {
		st := open(t)
		t.Run(st.name, func(t *testing.T) {
			runRetention(t, st, n)
		})
	}
}

func runRetention(t *testing.T, st retentionStore, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The engine migrates the schema first.
	eng, err := stentapi.Open(ctx, st.dsn, stentapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ended := time.Now().Add(-48 * time.Hour).UnixMilli()
	seedStart := time.Now()
	seedOld(t, st, n, ended)
	t.Logf("%s: seeded %d old executions in %s", st.name, n+n/10, time.Since(seedStart).Round(time.Millisecond))
	st.scriptRow(t)
	oldCount := `SELECT count(*) FROM executions WHERE id LIKE 'old-%'`
	before := st.count(t, oldCount)
	if before != int64(n+n/10) {
		t.Fatalf("%d old executions seeded, want %d", before, n+n/10)
	}
	sizeBefore := st.size(t)

	rep, err := eng.Prune(ctx, stentapi.PruneOptions{OlderThan: 24 * time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Executions != before || rep.Roots != int64(n) || rep.Events != int64(4*n) || rep.Logs != int64(n) {
		t.Fatalf("dry run = %+v, want %d executions, %d roots, %d events, %d log lines", rep, before, n, 4*n, n)
	}
	if got := st.count(t, oldCount); got != before {
		t.Fatalf("a dry run deleted executions: %d left of %d", got, before)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fan.star"), fanOutFlow, 0o644)
	if err := eng.Register("work", func(ctx context.Context, n, i int) (int, error) { return n + i, nil }); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := eng.Serve(sctx, stentapi.WorkerOptions{Concurrency: 16, Retention: 24 * time.Hour,
			RetentionInterval: 50 * time.Millisecond}); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()
	start := time.Now()
	var ids []string
	for i := range 100 {
		id, err := eng.Dispatch(ctx, filepath.Join(dir, "fan.star"), []any{i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		res, err := eng.WaitFor(ctx, id)
		if err != nil || res.Err() != nil || string(res.Value) != strconv.Itoa(10*i+45) {
			t.Fatalf("workload execution %s: %v %+v", id, err, res)
		}
	}
	workload := time.Since(start)
	oldLeftAtWorkloadEnd := st.count(t, oldCount)
	oldScript := `SELECT count(*) FROM scripts WHERE hash = '` + oldScriptHash + `'`
	for st.count(t, oldCount) > 0 || st.count(t, oldScript) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("retention did not finish: %d old executions left", st.count(t, oldCount))
		}
		time.Sleep(time.Second) // each count scans the table: not too often
	}
	pruned := time.Since(start)
	for _, q := range []string{`SELECT count(*) FROM events WHERE execution_id LIKE 'old-%'`,
		`SELECT count(*) FROM logs WHERE execution_id LIKE 'old-%'`,
		`SELECT count(*) FROM scripts WHERE hash = '` + oldScriptHash + `'`} {
		if got := st.count(t, q); got != 0 {
			t.Fatalf("%s = %d after retention, want 0", q, got)
		}
	}
	for id, status := range map[string]string{"keep-run": "completed", "keep-run/1": "running", "keep-live": "running"} {
		ex, err := eng.Get(ctx, id)
		if err != nil || string(ex.Status) != status {
			t.Fatalf("%s after retention: %v %v, want it kept %s", id, ex, err, status)
		}
	}
	if got := st.count(t, `SELECT count(*) FROM executions WHERE status = 'completed' AND id NOT LIKE 'keep-%'`); got < 100 {
		t.Fatalf("%d workload executions (and children) left, want all of them", got)
	}
	t.Logf("%s: workload of 100 workflows x 10 activities took %s (%d old executions were still there when it ended); "+
		"retention deleted %d executions in %s", st.name, workload.Round(time.Millisecond), oldLeftAtWorkloadEnd, before,
		pruned.Round(time.Millisecond))
	t.Logf("%s: before: %s", st.name, sizeBefore)
	t.Logf("%s: after:  %s", st.name, st.size(t))
}

func (st retentionStore) scriptRow(t *testing.T) {
	st.exec(t, `INSERT INTO scripts (hash, source) VALUES ('`+oldScriptHash+`', `+
		map[bool]string{true: `'def main(): return 1'::bytea`, false: `'def main(): return 1'`}[st.name == "postgres"]+`)`)
}

func sqliteRetentionStore(t *testing.T) retentionStore {
	path := filepath.Join(t.TempDir(), "stent.db")
	var db *sql.DB
	get := func(t *testing.T) *sql.DB {
		if db == nil {
			var err error
			if db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
		}
		return db
	}
	count := func(t *testing.T, q string) int64 {
		var n int64
		if err := get(t).QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	return retentionStore{name: "sqlite", dsn: path,
		exec: func(t *testing.T, q string) {
			if _, err := get(t).Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		count: count,
		size: func(t *testing.T) string {
			var size int64
			for _, f := range []string{path, path + "-wal"} {
				if fi, err := os.Stat(f); err == nil {
					size += fi.Size()
				}
			}
			return fmt.Sprintf("executions %d rows, events %d, logs %d; file and WAL %.1f MB, %d pages of which %d free",
				count(t, `SELECT count(*) FROM executions`), count(t, `SELECT count(*) FROM events`),
				count(t, `SELECT count(*) FROM logs`), float64(size)/1e6, count(t, `PRAGMA page_count`),
				count(t, `PRAGMA freelist_count`))
		}}
}

func pgRetentionStore(t *testing.T) retentionStore {
	db := newPostgresDB(t)
	var conn *pgx.Conn
	get := func(t *testing.T) *pgx.Conn {
		if conn == nil {
			var err error
			if conn, err = pgx.Connect(context.Background(), db.dsn); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close(context.Background()) })
		}
		return conn
	}
	count := func(t *testing.T, q string) int64 {
		var n int64
		if err := get(t).QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	return retentionStore{name: "postgres", dsn: db.dsn,
		exec: func(t *testing.T, q string) {
			if _, err := get(t).Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		count: count,
		size: func(t *testing.T) string {
			mb := func(rel string) float64 {
				return float64(count(t, `SELECT pg_total_relation_size('`+rel+`')`)) / 1e6
			}
			return fmt.Sprintf("executions %d rows (%.1f MB with indexes), events %d (%.1f MB), logs %d (%.1f MB); database %.1f MB",
				count(t, `SELECT count(*) FROM executions`), mb("executions"), count(t, `SELECT count(*) FROM events`),
				mb("events"), count(t, `SELECT count(*) FROM logs`), mb("logs"),
				float64(count(t, `SELECT pg_database_size(current_database())`))/1e6)
		}}
}
