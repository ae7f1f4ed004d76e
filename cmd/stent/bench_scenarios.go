package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/stent-go/stent"
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
	// P6: five sequential activities.
	"five.star": p6Script,
	// P5: one activity.
	"one.star": `
def main():
    return len(durable("work", 0))
`,
}

// benchPayload is what the `work` activity returns: 100 bytes.
var benchPayload = strings.Repeat("0123456789", 10)

func benchWork(ctx context.Context, i int) (string, error) { return benchPayload, nil }

// allScenarios are what --scenario all runs; P6 (throughput, 100,000 activities) runs
// when named.
var allScenarios = []string{"P1", "P2", "P3", "P4", "P5"}

// knownScenarios are those --scenario accepts.
var knownScenarios = []string{"P1", "P2", "P3", "P4", "P5", "P6"}

var scenarioWhat = map[string]string{
	"P1": "%d roots → child → leaf gathering %d activities",
	"P2": "1 root → %d mids → %d leaves each → %d activities each",
	"P3": "%d roots → child → leaf with %d activity",
	"P4": "1 workflow of N sequential durable() steps",
	"P5": "%d sequential dispatch→result round trips (1 activity)",
	"P6": "%d executions of 5 sequential activities dispatched at once, %d worker process(es)",
}

func scaled(n int, f float64) int { return max(1, int(math.Round(float64(n)*f))) }

func benchScenario(ctx context.Context, cfg benchConfig, sc string) (*scenarioResult, error) {
	if sc == "P6" && backendName(cfg.db) == "postgres" && !cfg.c.IsSet("workers") {
		cfg.workers = p6Workers
	}
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
				CommitsPerStep: commitsPerStep(stats, n), WorkPerStep: workPer(stats, n),
			})
			res.Executions++
			res.Activities += n
		}
		last := res.Steps[len(res.Steps)-1]
		res.WallMS, res.RunsWallMS = last.WallMS, last.RunsWallMS
		res.ExecsPerSec = 1 / (last.WallMS / 1000)
		res.ActsPerSec = last.ActsPerSec
		res.Executions, res.Activities = 1, last.N
		res.CommitsPerStep, res.WorkPerStep = last.CommitsPerStep, last.WorkPerStep
		if res.Steps[0].PerStepMS > 0 {
			res.PerStepRatio = last.PerStepMS / res.Steps[0].PerStepMS
		}
		return res, nil
	case "P6":
		n := scaled(20000, cfg.scale)
		res.What = fmt.Sprintf(scenarioWhat[sc], n, cfg.workers)
		res.Executions, res.Activities = n, 5*n
		body = func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
			return runThroughput(ctx, eng, dir, n)
		}
	case "P5":
		n := scaled(200, cfg.scale)
		res.What = fmt.Sprintf(scenarioWhat[sc], n)
		if res.HTTP = cfg.http; cfg.http {
			res.What += " over the HTTP API, from a client process"
			if cfg.httpClients > 1 {
				res.What = fmt.Sprintf("%d dispatch→result round trips (1 activity) over the HTTP API, %d at once from a client process", n, cfg.httpClients)
			}
		}
		res.Executions, res.Activities = n, n
		body = func(ctx context.Context, eng *stent.Engine, dir string) (runStats, error) {
			if cfg.http {
				return httpRoundTrips(ctx, cfg, eng, dir, n)
			}
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
	res.WorkPerStep = workPer(stats, res.Activities)
	if sc == "P6" {
		res.ActivitiesPerS = res.ActsPerSec
	}
	if sc != "P5" {
		res.DispatchMS = ms(medianDur(stats, func(s runStats) time.Duration { return s.dispatch }))
	}
	if sc != "P2" {
		res.LatencyP50MS = ms(medianDur(stats, func(s runStats) time.Duration { return percentile(s.latencies, 0.50) }))
		res.LatencyP99MS = ms(medianDur(stats, func(s runStats) time.Duration { return percentile(s.latencies, 0.99) }))
	}
	return res, nil
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
