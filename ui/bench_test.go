package ui_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// The web view's targets: the list page over 100,000 executions and the page of one
// execution of 10,000 steps each render in under a second, on both backends. Rows are
// seeded with SQL (one statement each) for speed.
const (
	benchExecutions = 100_000
	benchSteps      = 10_000
	benchBigID      = "bench-big"
)

// sqliteSeed fills the executions, then gives benchBigID its 10,000 steps.
var sqliteSeed = []string{
	`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
	INSERT INTO executions (id, bundle, entry, args, queue, status, result, error, version, created_at, updated_at, start_at, completed_at)
	SELECT printf('bench-%06d', i), '{"main":"flow.star","files":{"flow.star":"h1"}}', 'main', '["u' || i || '"]', 'default',
		CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'running' WHEN 2 THEN 'cancelled' ELSE 'completed' END,
		CASE WHEN i % 10 > 2 THEN '"ok"' END,
		CASE WHEN i % 10 = 0 THEN '{"message":"boom","type":"activity"}' END,
		3, 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 500, 1700000000000 + i * 1000,
		CASE WHEN i % 10 <> 1 THEN 1700000000000 + i * 1000 + 500 END
	FROM n`,
	`INSERT INTO executions (id, bundle, entry, args, queue, status, result, version, created_at, updated_at, start_at, completed_at)
	VALUES ('bench-big', '{"main":"flow.star","files":{"flow.star":"h1"}}', 'main', '[]', 'default', 'completed', '10000',
		10000, 1800000000000, 1800000200000, 1800000000000, 1800000200000)`,
	`INSERT INTO scripts (hash, source) VALUES ('h1', 'def main():' || char(10) || '    for i in range(10000):' || char(10) || '        durable("step", i)' || char(10))`,
	`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ('bench-big', 0, 'started', '', '[]', 1800000000000)`,
	`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
	INSERT INTO events (execution_id, seq, kind, name, data, at)
	SELECT 'bench-big', i, k.kind, 'step', CASE k.kind WHEN 'activity_scheduled' THEN '{"args":[' || i || '],"hash":"ab12","pos":"flow.star:3:16"}' ELSE i END,
		1800000000000 + i * 20 + k.off
	FROM n, (SELECT 'activity_scheduled' AS kind, 0 AS off UNION ALL SELECT 'activity_completed', 15) AS k
	ORDER BY i, k.off`,
	`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ('bench-big', 0, 'completed', '', '10000', 1800000200000)`,
	`ANALYZE`,
}

var postgresSeed = []string{
	`INSERT INTO executions (id, bundle, entry, args, queue, status, result, error, version, created_at, updated_at, start_at, completed_at)
	SELECT 'bench-' || lpad(i::text, 6, '0'), '{"main":"flow.star","files":{"flow.star":"h1"}}', 'main', '["u' || i || '"]', 'default',
		CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'running' WHEN 2 THEN 'cancelled' ELSE 'completed' END,
		CASE WHEN i % 10 > 2 THEN '"ok"' END,
		CASE WHEN i % 10 = 0 THEN '{"message":"boom","type":"activity"}' END,
		3, 1700000000000 + i * 1000, 1700000000000 + i * 1000 + 500, 1700000000000 + i * 1000,
		CASE WHEN i % 10 <> 1 THEN 1700000000000 + i * 1000 + 500 END
	FROM generate_series(1, 100000) AS g(i)`,
	`INSERT INTO executions (id, bundle, entry, args, queue, status, result, version, created_at, updated_at, start_at, completed_at)
	VALUES ('bench-big', '{"main":"flow.star","files":{"flow.star":"h1"}}', 'main', '[]', 'default', 'completed', '10000',
		10000, 1800000000000, 1800000200000, 1800000000000, 1800000200000)`,
	`INSERT INTO scripts (hash, source) VALUES ('h1', convert_to(E'def main():\n    for i in range(10000):\n        durable("step", i)\n', 'UTF8'))`,
	`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ('bench-big', 0, 'started', '', '[]', 1800000000000)`,
	`INSERT INTO events (execution_id, seq, kind, name, data, at)
	SELECT 'bench-big', i, k.kind, 'step', CASE k.kind WHEN 'activity_scheduled' THEN '{"args":[' || i || '],"hash":"ab12","pos":"flow.star:3:16"}' ELSE i::text END,
		1800000000000 + i * 20 + k.off
	FROM generate_series(1, 10000) AS g(i), (VALUES ('activity_scheduled', 0), ('activity_completed', 15)) AS k(kind, off)
	ORDER BY 2, 6`,
	`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ('bench-big', 0, 'completed', '', '10000', 1800000200000)`,
	`ANALYZE`,
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchSQLite returns the web view of a seeded SQLite file.
func benchSQLite(b *testing.B) http.Handler {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	eng, err := stent.Open(ctx, path, stent.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, q := range sqliteSeed {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("seeding: %v\n%s", err, q)
		}
	}
	return benchHandler(b, eng)
}

// benchPostgres returns the web view of a seeded schema of STENT_TEST_POSTGRES.
func benchPostgres(b *testing.B) http.Handler {
	b.Helper()
	ctx := context.Background()
	be, dsn, schema := openPostgres(b)
	eng, err := stent.Open(ctx, dsn, stent.WithBackend(be), stent.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO "+schema); err != nil {
		b.Fatal(err)
	}
	for _, q := range postgresSeed {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("seeding: %v\n%s", err, q)
		}
	}
	return benchHandler(b, eng)
}

func benchHandler(b *testing.B, eng *stent.Engine) http.Handler {
	h, err := ui.Handler(eng, ui.Options{Logger: quietLogger(), CountTTL: -1}) // every render counts
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// render GETs path from h and fails unless it is a page that contains want.
func render(b *testing.B, h http.Handler, path, want string) time.Duration {
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	d := time.Since(start)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
		b.Fatalf("GET %s: %d, want 200 with %q:\n%.2000s", path, rec.Code, want, rec.Body.String())
	}
	return d
}

func benchPages(b *testing.B, open func(*testing.B) http.Handler) {
	h := open(b)
	pages := []struct{ name, path, want string }{
		{"list", "/", "bench-100000"},
		{"list-failed", "/?status=failed", "bench-100000"},
		{"list-page-2", "/?after=" + backend.ListCursor(&backend.Execution{ID: "bench-099951",
			CreatedAt: time.UnixMilli(1700000000000 + 99951*1000)}), "bench-099950"},
		{"execution-10k-steps", "/executions/" + benchBigID, "10000 step(s)"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var worst time.Duration
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				worst = max(worst, render(b, h, p.path, p.want))
				n++
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			// This process's CPU per render: all of it on SQLite (embedded), the view's
			// and the driver's share on PostgreSQL. On a busy machine it tells the cost
			// apart from the wait for a core.
			if cpu := cpuTime() - cpu0; cpu0 > 0 && n > 0 {
				b.ReportMetric(float64(cpu)/float64(n)/1e6, "cpu-ms/op")
			}
		})
	}
}

func BenchmarkPagesSQLite(b *testing.B)   { benchPages(b, benchSQLite) }
func BenchmarkPagesPostgres(b *testing.B) { benchPages(b, benchPostgres) }
