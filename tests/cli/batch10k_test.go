package cli_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// TestBatchRetryMany measures `stent retry --where status=failed --yes --rate 0` over
// STENT_BATCH_MANY failed executions (10000 for the figures of the README), on SQLite
// and, with STENT_TEST_POSTGRES, on PostgreSQL: wall time and peak memory of the stent
// process, read from /usr/bin/time -v. Not part of `make test`; run it without -race
// for meaningful figures:
//
//	STENT_BATCH_MANY=10000 go test ./tests/cli -run TestBatchRetryMany -v -timeout 30m
func TestBatchRetryMany(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STENT_BATCH_MANY"))
	if n <= 0 {
		t.Skip("STENT_BATCH_MANY not set")
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("no /usr/bin/time to measure with")
	}
	t.Run("sqlite", func(t *testing.T) {
		batchRetryMany(t, filepath.Join(t.TempDir(), "stent.db"), n)
	})
	t.Run("postgres", func(t *testing.T) {
		admin := os.Getenv("STENT_TEST_POSTGRES")
		if admin == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("STENT_TEST_POSTGRES is required in CI (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable)")
			}
			t.Skip("STENT_TEST_POSTGRES not set")
		}
		dsn, drop, err := freshPostgresDB(admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(drop)
		batchRetryMany(t, dsn, n)
	})
}

func batchRetryMany(t *testing.T, dsn string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	seedFailed(t, ctx, dsn, n)
	cmd := exec.CommandContext(ctx, "/usr/bin/time", "-v", filepath.Join(binDir, "stent"),
		"retry", "--where", "status=failed", "--yes", "--rate", "0", "--db", dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stent retry: %v\n%s", err, tail(out))
	}
	want := regexp.MustCompile(`(?m)^retried ` + strconv.Itoa(n) + ` executions$`)
	if !want.Match(out) {
		t.Fatalf("stent retry did not retry %d executions:\n%s", n, tail(out))
	}
	wall := regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)`).FindSubmatch(out)
	rss := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindSubmatch(out)
	if wall == nil || rss == nil {
		t.Fatalf("no figures from /usr/bin/time:\n%s", tail(out))
	}
	kb, _ := strconv.Atoi(string(rss[1]))
	t.Logf("retry of %d failed executions: wall %s, peak RSS %.1f MiB", n, wall[1], float64(kb)/1024)

	eng, err := stent.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if left := countFailed(t, ctx, eng); left != 0 {
		t.Fatalf("after the batch: %d failed executions, want none", left)
	}
}

// seedFailed dispatches n executions of a script that fails and serves them until all
// have failed.
func seedFailed(t *testing.T, ctx context.Context, dsn string, n int) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "fail.star")
	if err := os.WriteFile(script, []byte("def main():\n    fail(\"boom\")\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, err := stent.Open(ctx, dsn, stent.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	start := time.Now()
	for i := range n {
		if _, err := eng.DispatchJSON(ctx, script, json.RawMessage(`[]`), stent.ID("f"+strconv.Itoa(i))); err != nil {
			t.Fatalf("dispatch %d: %v", i, err)
		}
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Serve(sctx, stent.WorkerOptions{Concurrency: 32}) }()
	for {
		failed := countFailed(t, ctx, eng)
		if failed == n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d failed before the timeout", failed, n)
		case <-time.After(500 * time.Millisecond):
		}
	}
	stop()
	<-done
	t.Logf("seeded %d failed executions in %s", n, time.Since(start).Round(time.Millisecond))
}

// countFailed counts the failed executions, page by page.
func countFailed(t *testing.T, ctx context.Context, eng *stent.Engine) int {
	t.Helper()
	f := backend.ListFilter{Status: backend.StatusFailed, Limit: 1000}
	count := 0
	for {
		page, err := eng.List(ctx, f)
		if err != nil {
			t.Fatalf("listing failed executions: %v", err)
		}
		count += len(page)
		if len(page) < f.Limit {
			return count
		}
		f.After = backend.ListCursor(&page[len(page)-1])
	}
}

func tail(out []byte) string {
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return string(out)
}
