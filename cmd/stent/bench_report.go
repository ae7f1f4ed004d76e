package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// scenarioResult is one scenario's report; with --json it is printed as is.
type scenarioResult struct {
	Scenario    string    `json:"scenario"`
	What        string    `json:"what"`
	Backend     string    `json:"backend"`
	Workers     int       `json:"workers"`
	Concurrency int       `json:"concurrency"`
	Runs        int       `json:"runs"`
	HTTP        bool      `json:"http,omitempty"` // P5 through the HTTP API (--http)
	Executions  int       `json:"executions"`
	Activities  int       `json:"activities"`
	WallMS      float64   `json:"wall_ms"`      // median over runs
	RunsWallMS  []float64 `json:"runs_wall_ms"` // every run
	DispatchMS  float64   `json:"dispatch_ms,omitempty"`
	ExecsPerSec float64   `json:"executions_per_sec"`
	ActsPerSec  float64   `json:"activities_per_sec"`
	// ActivitiesPerS is P6's figure: activities per second sustained across workers.
	ActivitiesPerS float64 `json:"activities_per_s,omitempty"`
	// Dispatch→result latency (median over runs of each run's percentile).
	LatencyP50MS float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99MS float64 `json:"latency_p99_ms,omitempty"`
	// P4 only.
	Steps        []stepResult `json:"steps,omitempty"`
	PerStepRatio float64      `json:"per_step_ratio,omitempty"`
	// CommitsPerStep is the median over runs of committed transactions per activity
	// (see commitsPerStep); for P4, of the largest N.
	CommitsPerStep float64 `json:"commits_per_step,omitempty"`
	// WorkPerStep: CPU of this process and of the PostgreSQL server (when it runs on
	// this machine) and WAL bytes, per activity, median over runs; for P4, of the
	// largest N.
	WorkPerStep *workPerStep `json:"work_per_step,omitempty"`
}

type stepResult struct {
	N          int       `json:"n"`
	WallMS     float64   `json:"wall_ms"`
	PerStepMS  float64   `json:"per_step_ms"`
	ActsPerSec float64   `json:"activities_per_sec"`
	RunsWallMS []float64 `json:"runs_wall_ms"`
	// CommitsPerStep: committed transactions per step, median over runs.
	CommitsPerStep float64      `json:"commits_per_step,omitempty"`
	WorkPerStep    *workPerStep `json:"work_per_step,omitempty"`
}

// runStats is what one run measured.
type runStats struct {
	wall      time.Duration
	dispatch  time.Duration
	latencies []time.Duration
	commits   int64 // transactions committed during the run; -1 when the backend does not count
	work      work  // CPU and WAL the run took
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
	for _, r := range results {
		if r.WorkPerStep != nil {
			fmt.Fprintf(w, "work per step, %s: %s\n", r.Scenario, r.WorkPerStep)
		}
	}
}
