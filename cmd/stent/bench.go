package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
	stentredis "github.com/stent-go/stent/backend/redis"
)

// benchScripts are the workflows the scenarios run; each run writes them to a
// temporary directory.
var benchScripts = map[string]string{
	// P1 (10 activities per leaf) and P3 (1): root → child → leaf.
	"chain.star": `
def leaf(n):
    return len(gather([start("work", i) for i in range(n)]))

def child(n):
    return durable(leaf, n)

def main(n):
    return durable(child, n)
`,
	// P2: the root starts `fanout` mid children, each starts `leaves` leaf children,
	// each leaf gathers n activities.
	"tree.star": `
def leaf(n):
    return len(gather([start("work", i) for i in range(n)]))

def mid(leaves, n):
    total = 0
    for r in gather([start(leaf, n) for _ in range(leaves)]):
        total += r
    return total

def main(fanout, leaves, n):
    total = 0
    for r in gather([start(mid, leaves, n) for _ in range(fanout)]):
        total += r
    return total
`,
	// P4: n sequential steps.
	"sequential.star": `
def main(n):
    for i in range(n):
        durable("work", i)
    return n
`,
	// P5: one activity.
	"one.star": `
def main():
    return len(durable("work", 0))
`,
}

// benchPayload is what the `work` activity returns: 100 bytes.
var benchPayload = strings.Repeat("0123456789", 10)

func benchWork(ctx context.Context, i int) (string, error) { return benchPayload, nil }

var allScenarios = []string{"P1", "P2", "P3", "P4", "P5"}

var scenarioWhat = map[string]string{
	"P1": "%d roots → child → leaf gathering %d activities",
	"P2": "1 root → %d mids → %d leaves each → %d activities each",
	"P3": "%d roots → child → leaf with %d activity",
	"P4": "1 workflow of N sequential durable() steps",
	"P5": "%d sequential dispatch→result round trips (1 activity)",
}

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

Activities are a Go function returning 100 bytes. Without --db every run uses a fresh
temporary SQLite file. With --db postgres://… every run uses a fresh schema
(stent_bench_…), dropped afterwards. With --db FILE (SQLite) runs share the file;
executions get unique IDs, so reruns do not collide. --workers N>1 starts N-1 more
worker processes of this binary on the same database (and --redis), which is
meaningful for PostgreSQL.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "scenario", Usage: "P1, P2, P3, P4, P5 or all (comma-separated list allowed)", Value: "all"},
			&cli.IntFlag{Name: "runs", Usage: "runs per scenario; the report gives medians", Value: 5},
			&cli.IntFlag{Name: "concurrency", Usage: "tasks each worker runs at once", Value: 64},
			&cli.IntFlag{Name: "workers", Usage: "worker processes (this one included)", Value: 1},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per scenario"},
			&cli.BoolFlag{Name: "telemetry", Usage: "trace (spans exported over OTLP/HTTP to a local sink) and record metrics, to measure their cost"},
			&cli.Float64Flag{Name: "scale", Usage: "multiply workload sizes (for quick checks)", Value: 1, Hidden: true},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of this process to FILE", Hidden: true},
			&cli.StringFlag{Name: "timeout", Usage: "give up on a run after this long", Value: "10m", Hidden: true},
			&cli.BoolFlag{Name: "serve-worker", Usage: "internal: serve as an extra bench worker until SIGTERM", Hidden: true},
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
	if cfg.workers > 1 {
		if cfg.exe, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this binary to start workers: %w", err)
		}
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
		if !slices.Contains(allScenarios, p) {
			return nil, failf(exitUsage, "--scenario: unknown scenario %q; use P1, P2, P3, P4, P5 or all", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// scenarioResult is one scenario's report; with --json it is printed as is.
type scenarioResult struct {
	Scenario    string    `json:"scenario"`
	What        string    `json:"what"`
	Backend     string    `json:"backend"`
	Workers     int       `json:"workers"`
	Concurrency int       `json:"concurrency"`
	Runs        int       `json:"runs"`
	Executions  int       `json:"executions"`
	Activities  int       `json:"activities"`
	WallMS      float64   `json:"wall_ms"`      // median over runs
	RunsWallMS  []float64 `json:"runs_wall_ms"` // every run
	DispatchMS  float64   `json:"dispatch_ms,omitempty"`
	ExecsPerSec float64   `json:"executions_per_sec"`
	ActsPerSec  float64   `json:"activities_per_sec"`
	// Dispatch→result latency (median over runs of each run's percentile).
	LatencyP50MS float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99MS float64 `json:"latency_p99_ms,omitempty"`
	// P4 only.
	Steps        []stepResult `json:"steps,omitempty"`
	PerStepRatio float64      `json:"per_step_ratio,omitempty"`
	// CommitsPerStep is the median over runs of committed transactions per activity
	// (see commitsPerStep); for P4, of the largest N.
	CommitsPerStep float64 `json:"commits_per_step,omitempty"`
}

type stepResult struct {
	N          int       `json:"n"`
	WallMS     float64   `json:"wall_ms"`
	PerStepMS  float64   `json:"per_step_ms"`
	ActsPerSec float64   `json:"activities_per_sec"`
	RunsWallMS []float64 `json:"runs_wall_ms"`
	// CommitsPerStep: committed transactions per step, median over runs.
	CommitsPerStep float64 `json:"commits_per_step,omitempty"`
}

// runStats is what one run measured.
type runStats struct {
	wall      time.Duration
	dispatch  time.Duration
	latencies []time.Duration
	commits   int64 // transactions committed during the run; -1 when the backend does not count
}

func scaled(n int, f float64) int { return max(1, int(math.Round(float64(n)*f))) }

func benchScenario(ctx context.Context, cfg benchConfig, sc string) (*scenarioResult, error) {
	res := &scenarioResult{Scenario: sc, Backend: backendName(cfg.db), Workers: cfg.workers, Concurrency: cfg.concurrency, Runs: cfg.runs}
	var body func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error)
	switch sc {
	case "P1", "P3":
		roots, acts := scaled(100, cfg.scale), 10
		if sc == "P3" {
			roots, acts = scaled(500, cfg.scale), 1
		}
		res.What = fmt.Sprintf(scenarioWhat[sc], roots, acts)
		res.Executions, res.Activities = 3*roots, roots*acts
		body = func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
			return runRoots(ctx, eng, filepath.Join(dir, "chain.star"), roots, []any{acts}, acts)
		}
	case "P2":
		fanout, leaves, acts := 4, scaled(10, cfg.scale), 10
		res.What = fmt.Sprintf(scenarioWhat[sc], fanout, leaves, acts)
		res.Executions, res.Activities = 1+fanout+fanout*leaves, fanout*leaves*acts
		body = func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
			return runRoots(ctx, eng, filepath.Join(dir, "tree.star"), 1, []any{fanout, leaves, acts}, fanout*leaves*acts)
		}
	case "P4":
		res.What = scenarioWhat[sc]
		for _, n := range []int{scaled(100, cfg.scale), scaled(1000, cfg.scale)} {
			stats, err := repeatRuns(ctx, cfg, sc, fmt.Sprintf("N=%d", n), func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
				return runRoots(ctx, eng, filepath.Join(dir, "sequential.star"), 1, []any{n}, n)
			})
			if err != nil {
				return nil, err
			}
			wall := medianDur(stats, func(s runStats) time.Duration { return s.wall })
			res.Steps = append(res.Steps, stepResult{
				N: n, WallMS: ms(wall), PerStepMS: ms(wall) / float64(n),
				ActsPerSec: float64(n) / wall.Seconds(), RunsWallMS: runWalls(stats),
				CommitsPerStep: commitsPerStep(stats, n),
			})
			res.Executions++
			res.Activities += n
		}
		last := res.Steps[len(res.Steps)-1]
		res.WallMS, res.RunsWallMS = last.WallMS, last.RunsWallMS
		res.ExecsPerSec = 1 / (last.WallMS / 1000)
		res.ActsPerSec = last.ActsPerSec
		res.Executions, res.Activities = 1, last.N
		res.CommitsPerStep = last.CommitsPerStep
		if res.Steps[0].PerStepMS > 0 {
			res.PerStepRatio = last.PerStepMS / res.Steps[0].PerStepMS
		}
		return res, nil
	case "P5":
		n := scaled(200, cfg.scale)
		res.What = fmt.Sprintf(scenarioWhat[sc], n)
		res.Executions, res.Activities = n, n
		body = func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
			return runRoundTrips(ctx, eng, filepath.Join(dir, "one.star"), n)
		}
	}
	stats, err := repeatRuns(ctx, cfg, sc, "", body)
	if err != nil {
		return nil, err
	}
	wall := medianDur(stats, func(s runStats) time.Duration { return s.wall })
	res.WallMS, res.RunsWallMS = ms(wall), runWalls(stats)
	res.ExecsPerSec = float64(res.Executions) / wall.Seconds()
	res.ActsPerSec = float64(res.Activities) / wall.Seconds()
	res.CommitsPerStep = commitsPerStep(stats, res.Activities)
	if sc != "P5" {
		res.DispatchMS = ms(medianDur(stats, func(s runStats) time.Duration { return s.dispatch }))
	}
	if sc != "P2" {
		res.LatencyP50MS = ms(medianDur(stats, func(s runStats) time.Duration { return percentile(s.latencies, 0.50) }))
		res.LatencyP99MS = ms(medianDur(stats, func(s runStats) time.Duration { return percentile(s.latencies, 0.99) }))
	}
	return res, nil
}

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

func oneRun(ctx context.Context, cfg benchConfig, body func(context.Context, *stent.Engine, string) (runStats, error)) (runStats, error) {
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
	st, err := body(rctx, eng, dir)
	st.commits = -1
	if err == nil && counted {
		if pg {
			// A session reports its transactions when it has been idle a while (up to
			// seconds), or when it ends: end them all, then count.
			stopServing()
			stopBenchWorkers(workers)
			workers = nil
			_ = closeEngine()
			sleepCtx(ctx, 200*time.Millisecond)
			if after, err := pgCommits(ctx, dsn); err == nil {
				st.commits = after - before - 1 // the count's own transaction
			}
		} else if after, ok := readCommits(ctx, eng); ok {
			st.commits = after - before
		}
	}
	return st, err
}

// pgCommits reads pg_stat_database.xact_commit on a session of its own, ended before it
// returns (its one transaction is then counted).
func pgCommits(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

// readCommits reads the backend's commit count, if it keeps one.
func readCommits(ctx context.Context, eng *stent.Engine) (int64, bool) {
	cc, ok := eng.Backend().(backend.CommitCounter)
	if !ok {
		return 0, false
	}
	n, err := cc.Commits(ctx)
	return n, err == nil
}

// commitsPerStep is the median over runs of the transactions committed per step (an
// activity), 0 when they were not counted.
func commitsPerStep(stats []runStats, steps int) float64 {
	var per []float64
	for _, s := range stats {
		if s.commits >= 0 && steps > 0 {
			per = append(per, float64(s.commits)/float64(steps))
		}
	}
	if len(per) == 0 {
		return 0
	}
	slices.Sort(per)
	m := per[len(per)/2]
	if len(per)%2 == 0 {
		m = (per[len(per)/2-1] + m) / 2
	}
	return math.Round(m*100) / 100
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
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

// runRoots dispatches roots executions of script at once, waits for them all, and
// checks each returned want.
func runRoots(ctx context.Context, eng *stent.Engine, script string, roots int, args []any, want int) (runStats, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return runStats{}, err
	}
	ids := make([]string, roots)
	sent := make([]time.Time, roots)
	start := time.Now()
	for i := range roots {
		sent[i] = time.Now()
		if ids[i], err = eng.DispatchJSON(ctx, script, raw); err != nil {
			return runStats{}, fmt.Errorf("dispatch: %w", err)
		}
	}
	st := runStats{dispatch: time.Since(start)}
	for _, id := range ids {
		if err := checkResult(ctx, eng, id, want); err != nil {
			return runStats{}, err
		}
	}
	st.wall = time.Since(start)
	for i, id := range ids {
		ex, err := eng.Get(ctx, id)
		if err != nil {
			return runStats{}, err
		}
		if ex.CompletedAt != nil {
			st.latencies = append(st.latencies, ex.CompletedAt.Sub(sent[i]))
		}
	}
	return st, nil
}

// runRoundTrips dispatches script n times, one after the other, each waited for.
func runRoundTrips(ctx context.Context, eng *stent.Engine, script string, n int) (runStats, error) {
	var st runStats
	start := time.Now()
	for range n {
		t0 := time.Now()
		id, err := eng.Dispatch(ctx, script, nil)
		if err != nil {
			return runStats{}, fmt.Errorf("dispatch: %w", err)
		}
		if err := checkResult(ctx, eng, id, len(benchPayload)); err != nil {
			return runStats{}, err
		}
		st.latencies = append(st.latencies, time.Since(t0))
	}
	st.wall = time.Since(start)
	return st, nil
}

func checkResult(ctx context.Context, eng *stent.Engine, id string, want int) error {
	res, err := eng.WaitFor(ctx, id)
	if err != nil {
		return fmt.Errorf("execution %s: %w", id, err)
	}
	var got int
	if err := res.Decode(&got); err != nil {
		return fmt.Errorf("execution %s returned %s: %w", id, res.Value, err)
	}
	if got != want {
		return fmt.Errorf("execution %s returned %d, want %d", id, got, want)
	}
	return nil
}

// startBenchWorker starts `stent bench --serve-worker` on dsn and waits until it serves.
// It is a worker with the bench's Go activity registered, which `stent worker` cannot
// have.
func startBenchWorker(ctx context.Context, cfg benchConfig, dsn, schema string) (*exec.Cmd, error) {
	args := []string{"bench", "--serve-worker", "--db", dsn, "--concurrency", fmt.Sprint(cfg.concurrency),
		"--log-level", flagValue(cfg.c, "log-level")}
	if schema != "" {
		args = append(args, "--pg-schema", schema)
	}
	if cfg.redis != "" {
		args = append(args, "--redis", cfg.redis)
	}
	if cfg.c.Bool("telemetry") {
		args = append(args, "--telemetry")
	}
	cmd := exec.Command(cfg.exe, args...)
	cmd.Stderr = cfg.c.App.ErrWriter
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a bench worker: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("not ready after 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bench worker: %w", err)
	}
	return cmd, nil
}

func stopBenchWorkers(ws []*exec.Cmd) {
	for _, w := range ws {
		_ = w.Process.Signal(syscall.SIGTERM)
	}
	for _, w := range ws {
		done := make(chan struct{})
		go func() { _ = w.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = w.Process.Kill()
			<-done
		}
	}
}

// serveBenchWorker is the hidden --serve-worker mode: a worker with the `work`
// activity, serving until SIGINT/SIGTERM.
func serveBenchWorker(c *cli.Context, cfg benchConfig, schema string) error {
	if cfg.db == "" {
		return failf(exitUsage, "--serve-worker needs --db")
	}
	ctx, stop := signalContext(c)
	defer stop()
	if cfg.redis != "" {
		stentredis.SetDriverLogger(logger(c))
	}
	eng, err := openBenchEngine(ctx, cfg, cfg.db, schema)
	if err != nil {
		return err
	}
	defer eng.Close()
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, stent.WorkerOptions{Concurrency: c.Int("concurrency")}) }()
	if err := eng.WaitUntilReady(ctx); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "ready")
	return <-served
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dropSchema removes a run's PostgreSQL schema and everything in it.
func dropSchema(dsn, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

func runWalls(stats []runStats) []float64 {
	out := make([]float64, len(stats))
	for i, s := range stats {
		out[i] = ms(s.wall)
	}
	return out
}

func medianDur(stats []runStats, f func(runStats) time.Duration) time.Duration {
	ds := make([]time.Duration, len(stats))
	for i, s := range stats {
		ds[i] = f(s)
	}
	return percentile(ds, 0.5)
}

// percentile is the nearest-rank percentile (the median of an even count is the mean of
// the middle two).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if p == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fmtMS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func printBenchTable(w io.Writer, results []*scenarioResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\texecutions\tactivities\twall\texecutions/s\tactivities/s\tlatency p50\tlatency p99\t")
	var notes []string
	for _, r := range results {
		if r.Scenario == "P4" {
			for _, s := range r.Steps {
				fmt.Fprintf(tw, "P4 N=%d\t%d\t%d\t%s\t%.1f\t%.0f\t-\t-\t\n", s.N, 1, s.N, fmtMS(s.WallMS), 1000/s.WallMS, s.ActsPerSec)
			}
			if len(r.Steps) == 2 {
				notes = append(notes, fmt.Sprintf("P4 per step: %s at N=%d, %s at N=%d; ratio %.2f (1.00 = O(1) per step)",
					fmtMS(r.Steps[0].PerStepMS), r.Steps[0].N, fmtMS(r.Steps[1].PerStepMS), r.Steps[1].N, r.PerStepRatio))
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.0f\t%.0f\t%s\t%s\t\n", r.Scenario, r.Executions, r.Activities, fmtMS(r.WallMS),
			r.ExecsPerSec, r.ActsPerSec, fmtMS(r.LatencyP50MS), fmtMS(r.LatencyP99MS))
	}
	_ = tw.Flush()
	for _, r := range results {
		fmt.Fprintf(w, "  %s: %s\n", r.Scenario, r.What)
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	var per []string
	for _, r := range results {
		if r.CommitsPerStep > 0 {
			per = append(per, fmt.Sprintf("%s %.2f", r.Scenario, r.CommitsPerStep))
		}
	}
	if len(per) > 0 {
		what := "write transactions of this process"
		if len(results) > 0 && results[0].Backend == "postgres" {
			what = "pg_stat_database.xact_commit, reads included"
		}
		fmt.Fprintf(w, "transactions per step (%s): %s\n", what, strings.Join(per, ", "))
	}
}
