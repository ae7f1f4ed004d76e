package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
)

// repeatRuns runs body cfg.runs times, each on a fresh engine (and, without --db, a
// fresh database) served by this process and the extra workers.
func repeatRuns(ctx context.Context, cfg benchConfig, sc, label string, body func(context.Context, *stent.Engine, string) (runStats, error)) ([]runStats, error) {
	var out []runStats
	for i := range cfg.runs {
		st, err := oneRun(ctx, cfg, body)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		name := sc
		if label != "" {
			name += " " + label
		}
		fmt.Fprintf(cfg.c.App.ErrWriter, "  %s run %d/%d: %s\n", name, i+1, cfg.runs, st.wall.Round(time.Millisecond))
		out = append(out, st)
	}
	return out, nil
}

func oneRun(ctx context.Context, cfg benchConfig, body func(context.Context, *stent.Engine, string) (runStats, error)) (st runStats, err error) {
	dir, err := os.MkdirTemp("", "stent-bench-")
	if err != nil {
		return runStats{}, err
	}
	defer os.RemoveAll(dir)
	for name, src := range benchScripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			return runStats{}, err
		}
	}
	dsn, schema := cfg.db, ""
	switch {
	case dsn == "":
		dsn = filepath.Join(dir, "bench.db")
	case backendName(dsn) == "postgres":
		schema = "stent_bench_" + randomSuffix()
		defer func() {
			if err := dropSchema(dsn, schema); err != nil {
				fmt.Fprintf(cfg.c.App.ErrWriter, "stent bench: dropping schema %s: %v\n", schema, err)
			}
		}()
	}
	pg := backendName(dsn) == "postgres"
	if pg {
		// Migrate the fresh schema first, with an engine of its own: its sessions end
		// with it, reporting their transactions before the count starts.
		pre, err := openBenchEngine(ctx, cfg, dsn, schema)
		if err != nil {
			return runStats{}, err
		}
		_ = pre.Close()
	}
	eng, err := openBenchEngine(ctx, cfg, dsn, schema)
	if err != nil {
		return runStats{}, err
	}
	closeEngine := sync.OnceValue(eng.Close)
	defer closeEngine()

	var workers []*exec.Cmd
	defer func() { stopBenchWorkers(workers) }()
	for range cfg.workers - 1 {
		w, err := startBenchWorker(ctx, cfg, dsn, schema)
		if err != nil {
			return runStats{}, err
		}
		workers = append(workers, w)
	}

	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Serve(serveCtx, stent.WorkerOptions{Concurrency: cfg.concurrency}) }()
	stopServing := sync.OnceFunc(func() { stopServe(); <-served })
	defer stopServing()
	if err := eng.WaitUntilReady(ctx); err != nil {
		return runStats{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var before int64
	counted := false
	if pg {
		before, err = pgCommits(ctx, dsn)
		counted = err == nil
	} else {
		before, counted = readCommits(ctx, eng)
	}
	workBefore := readWork(ctx, dsn, pg)
	st, err = body(rctx, eng, dir)
	st.commits = -1
	defer func() { st.work = readWork(ctx, dsn, pg).since(workBefore) }()
	if err == nil && counted {
		if pg {
			// A session reports its transactions when it has been idle a while (up to
			// seconds), or when it ends: end them all, then count.
			stopServing()
			stopBenchWorkers(workers)
			workers = nil
			_ = closeEngine()
			backend.Sleep(ctx, 200*time.Millisecond)
			if after, err := pgCommits(ctx, dsn); err == nil {
				st.commits = after - before - 1 // the count's own transaction
			}
		} else if after, ok := readCommits(ctx, eng); ok {
			st.commits = after - before
		}
	}
	return st, err
}

// openBenchEngine opens an engine on dsn (in schema, for PostgreSQL, when given) with
// the `work` activity registered.
func openBenchEngine(ctx context.Context, cfg benchConfig, dsn, schema string) (*stent.Engine, error) {
	opts := []stent.Option{stent.WithLogger(logger(cfg.c))}
	if cfg.c.Bool("telemetry") {
		tel, shutdown, err := benchTelemetry(ctx)
		if err != nil {
			return nil, err
		}
		atExit(shutdown)
		opts = append(opts, tel...)
	}
	dsn, err := withSQLiteSync(cfg.c, dsn)
	if err != nil {
		return nil, err
	}
	if cfg.redis != "" {
		opts = append(opts, stent.WithRedis(cfg.redis))
	}
	if schema != "" {
		b, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
		if err != nil {
			return nil, fmt.Errorf("opening database: %w", err)
		}
		opts = append(opts, stent.WithBackend(b))
	}
	eng, err := stent.Open(ctx, dsn, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	if err := eng.Register("work", benchWork); err != nil {
		eng.Close()
		return nil, err
	}
	return eng, nil
}
