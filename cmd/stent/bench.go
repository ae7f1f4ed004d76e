package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	stentredis "github.com/stent-go/stent/backend/redis"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure throughput and latency on this database (fresh temporary SQLite unless --db is given)",
		Description: `Runs fixed workloads against the database and reports medians over --runs:
   P1  100 roots dispatched at once, each root → child → leaf gathering 10 activities
   P2  one root, fan-out 4 mids × 10 leaves × 10 activities
   P3  500 roots, root → child → leaf with 1 activity
   P4  one workflow of N sequential steps, N = 100 and 1,000: per-step cost and ratio
   P5  200 sequential dispatch→result round trips of a one-activity workflow
   P6  throughput: 20,000 executions of 5 sequential activities dispatched at once,
       served by 4 worker processes on PostgreSQL (--workers to change; 1 on SQLite);
       reports activities_per_s (not part of "all")

Activities are a Go function returning 100 bytes. Without --db every run uses a fresh
temporary SQLite file. With --db postgres://… every run uses a fresh schema
(stent_bench_…), dropped afterwards. With --db FILE (SQLite) runs share the file;
executions get unique IDs, so reruns do not collide. --workers N>1 starts N-1 more
worker processes of this binary on the same database (and --redis), which is
meaningful for PostgreSQL.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Usage: "P1, P2, P3, P4, P5, P6 or all (P1-P5; comma-separated list allowed)", Value: "all"},
			&cli.IntFlag{Name: "runs", Usage: "runs per scenario; the report gives medians", Value: 5},
			&cli.IntFlag{Name: "concurrency", Usage: "tasks each worker runs at once", Value: 64},
			&cli.IntFlag{Name: "workers", Usage: "worker processes (this one included)", Value: 1},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per scenario"},
			&cli.BoolFlag{Name: "http", Usage: "P5 over the HTTP API: a separate client process starts and waits for each execution through /api/v1"},
			&cli.IntFlag{Name: "http-clients", Usage: "with --http, round trips the client process keeps in flight at once (1: one after the other)", Value: 1},
			&cli.BoolFlag{Name: "telemetry", Usage: "trace (spans exported over OTLP/HTTP to a local sink) and record metrics, to measure their cost"},
			&cli.Float64Flag{Name: "scale", Usage: "multiply workload sizes (for quick checks)", Value: 1, Hidden: true},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of this process to FILE", Hidden: true},
			&cli.StringFlag{Name: "timeout", Usage: "give up on a run after this long", Value: "10m", Hidden: true},
			&cli.BoolFlag{Name: "serve-worker", Usage: "internal: serve as an extra bench worker until SIGTERM", Hidden: true},
			&cli.StringFlag{Name: "http-client", Usage: "internal: make P5's round trips through the API at this URL", Hidden: true},
			&cli.IntFlag{Name: "http-n", Usage: "internal: round trips of --http-client", Value: 200, Hidden: true},
			&cli.StringFlag{Name: "pg-schema", Usage: "internal: the PostgreSQL schema of the run (with --serve-worker)", Hidden: true},
		},
		Action: runBench,
	}
}

type benchConfig struct {
	scenarios   []string
	runs        int
	concurrency int
	workers     int
	scale       float64
	timeout     time.Duration
	db          string // "" → fresh temporary SQLite per run
	redis       string
	exe         string
	http        bool // P5 through the HTTP API from a client process
	httpClients int  // round trips that client keeps in flight
	c           *cli.Context
}

func runBench(c *cli.Context) error {
	if c.NArg() != 0 {
		return failf(exitUsage, "bench takes no arguments, got %q", c.Args().Slice())
	}
	cfg := benchConfig{
		runs: c.Int("runs"), concurrency: c.Int("concurrency"), workers: c.Int("workers"),
		scale: c.Float64("scale"), redis: flagValue(c, "redis"), c: c,
	}
	if dbGiven(c) {
		cfg.db = flagValue(c, "db")
	}
	if base := c.String("http-client"); base != "" {
		return runHTTPClient(c, base, c.Int("http-n"), c.Int("http-clients"))
	}
	if c.Bool("serve-worker") {
		return serveBenchWorker(c, cfg, c.String("pg-schema"))
	}
	if cfg.runs < 1 {
		return failf(exitUsage, "--runs must be at least 1, got %d", cfg.runs)
	}
	if cfg.concurrency < 1 {
		return failf(exitUsage, "--concurrency must be at least 1, got %d", cfg.concurrency)
	}
	if cfg.workers < 1 {
		return failf(exitUsage, "--workers must be at least 1, got %d", cfg.workers)
	}
	if cfg.scale <= 0 {
		return failf(exitUsage, "--scale must be positive, got %g", cfg.scale)
	}
	var err error
	if cfg.timeout, err = parseDurationFlag(c, "timeout"); err != nil {
		return err
	}
	if cfg.scenarios, err = parseScenarios(c.String("scenario")); err != nil {
		return err
	}
	if cfg.http = c.Bool("http"); cfg.http && !slices.Equal(cfg.scenarios, []string{"P5"}) {
		return failf(exitUsage, "--http measures P5 only: use --scenario P5 --http")
	}
	if cfg.httpClients = c.Int("http-clients"); cfg.httpClients < 1 {
		return failf(exitUsage, "--http-clients must be at least 1, got %d", cfg.httpClients)
	}
	if cfg.exe, err = os.Executable(); err != nil {
		return fmt.Errorf("finding this binary to start workers: %w", err)
	}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.redis != "" {
		stentredis.SetDriverLogger(logger(c))
	}
	ctx, stop := signalContext(c)
	defer stop()

	kind := "sqlite (fresh temporary file per run)"
	switch {
	case backendName(cfg.db) == "postgres":
		kind = "postgres " + redactDSN(cfg.db) + " (fresh schema per run)"
	case cfg.db != "":
		kind = "sqlite " + cfg.db
	}
	if cfg.workers > 1 && backendName(cfg.db) == "sqlite" {
		fmt.Fprintln(c.App.ErrWriter, "stent bench: note: several worker processes on one SQLite file contend for its single writer; --workers is meant for PostgreSQL")
	}
	header := fmt.Sprintf("stent bench: %s, %d worker process(es) × concurrency %d, %d run(s) per scenario (medians)", kind, cfg.workers, cfg.concurrency, cfg.runs)
	if cfg.redis != "" {
		header += ", redis " + stentredis.Redact(cfg.redis)
	}
	fmt.Fprintln(c.App.ErrWriter, header)

	var results []*scenarioResult
	for _, sc := range cfg.scenarios {
		res, err := benchScenario(ctx, cfg, sc)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		results = append(results, res)
		if c.Bool("json") {
			if err := writeJSON(c, res); err != nil {
				return err
			}
		}
	}
	if !c.Bool("json") {
		fmt.Fprintln(c.App.Writer, header)
		printBenchTable(c.App.Writer, results)
	}
	return nil
}

// dbGiven reports whether --db (or STENT_DB) was set rather than defaulted.
func dbGiven(c *cli.Context) bool {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("db") {
			return true
		}
	}
	return false
}

func backendName(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

func redactDSN(dsn string) string { return stentredis.Redact(dsn) }

func parseScenarios(s string) ([]string, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") || s == "" {
		return allScenarios, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if !slices.Contains(knownScenarios, p) {
			return nil, failf(exitUsage, "--scenario: unknown scenario %q; use P1, P2, P3, P4, P5, P6 or all", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}
