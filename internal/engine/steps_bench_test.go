package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

const sequentialScript = `
def main(n):
    for i in range(n):
        durable("work", i)
    return n
`

// BenchmarkSequentialSteps runs one workflow of b.N sequential activity steps and
// reports, besides the time per step, the transactions committed per step (see
// backend.CommitCounter): the figure the hot path is designed around.
//
//	go test -run '^$' -bench SequentialSteps -benchtime 1000x .
func BenchmarkSequentialSteps(b *testing.B) {
	stores := []string{"sqlite"}
	if os.Getenv("STENT_TEST_POSTGRES") != "" {
		stores = append(stores, "postgres")
	}
	for _, store := range stores {
		b.Run(store, func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{}
			if store == "postgres" {
				opts = append(opts, WithBackend(benchPostgres(b)))
			}
			eng, ctx, script := startSequentialEngine(b, dir, opts...)
			cc, counted := eng.Backend().(backend.CommitCounter)
			var before int64
			if counted {
				before, _ = cc.Commits(ctx)
			}
			b.ResetTimer()
			res, err := eng.Run(ctx, script, []any{b.N})
			if err != nil {
				b.Fatalf("Run: %v", err)
			}
			b.StopTimer()
			if string(res.Value) == "" {
				b.Fatal("no result")
			}
			if counted {
				if store == "postgres" {
					time.Sleep(1200 * time.Millisecond) // PostgreSQL sessions report when idle
				}
				after, err := cc.Commits(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(after-before)/float64(b.N), "commits/step")
			}
		})
	}
}

// benchPostgres opens a fresh schema on STENT_TEST_POSTGRES, dropped after the
// benchmark. Its commit count is the whole database's, so other sessions on the same
// database add to it.
func benchPostgres(b *testing.B) backend.Backend {
	return openPostgresSchema(b, os.Getenv("STENT_TEST_POSTGRES"), "stent_bench_")
}

// startSequentialEngine opens an engine in dir with opts, registers the "work" activity,
// writes sequentialScript and serves it until the benchmark ends. It returns the engine,
// a context that lives as long, and the script's path.
func startSequentialEngine(b *testing.B, dir string, opts ...Option) (*Engine, context.Context, string) {
	b.Helper()
	eng, err := Open(context.Background(), filepath.Join(dir, "stent.db"), opts...)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	if err := eng.Register("work", func(ctx context.Context, i int) (int, error) { return i, nil }); err != nil {
		b.Fatal(err)
	}
	script := filepath.Join(dir, "sequential.star")
	if err := os.WriteFile(script, []byte(sequentialScript), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, WorkerOptions{Concurrency: 16}) }()
	b.Cleanup(func() { cancel(); <-served })
	if err := eng.WaitUntilReady(ctx); err != nil {
		b.Fatal(err)
	}
	return eng, ctx, script
}
