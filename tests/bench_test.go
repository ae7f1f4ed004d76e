package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runBench runs `stent bench` with a clean environment (no STENT_DB, so every run gets
// a fresh temporary SQLite file; no STENT_REDIS).
func runBench(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	// Generous: the 1,000-at-once HTTP run under -race on a loaded machine is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stentBin, append([]string{"bench"}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STENT_DB=") && !strings.HasPrefix(kv, "STENT_REDIS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("stent bench %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	out, errs := runBench(t, "--scenario", "P3", "--runs", "1", "--scale", "0.05")
	for _, want := range []string{"scenario", "executions/s", "activities/s", "latency p50", "P3", "25 roots"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not show %q:\n%s", want, out)
		}
	}
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "P3" {
			row = f
		}
	}
	// P3 executions activities wall execs/s acts/s p50 p99
	if len(row) != 8 || row[1] != "75" || row[2] != "25" {
		t.Errorf("P3 row = %q, want 75 executions and 25 activities", row)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
}

// P5 over the HTTP API: a client process starts and waits for each execution through
// /api/v1 and the report says so.
func TestBenchHTTP(t *testing.T) {
	t.Parallel()
	out, _ := runBench(t, "--scenario", "P5", "--http", "--runs", "1", "--scale", "0.1", "--json")
	var m struct {
		Scenario   string  `json:"scenario"`
		What       string  `json:"what"`
		HTTP       bool    `json:"http"`
		Executions int     `json:"executions"`
		P50        float64 `json:"latency_p50_ms"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m.Scenario != "P5" || !m.HTTP || !strings.Contains(m.What, "HTTP API") || m.Executions != 20 || m.P50 <= 0 {
		t.Errorf("report = %+v, want P5 over HTTP with 20 executions and a p50", m)
	}
}

// 1,000 dispatches at once through the API: every one answered with its own execution's
// result (the client checks each), none lost.
func TestBenchHTTPThousandAtOnce(t *testing.T) {
	t.Parallel()
	out, _ := runBench(t, "--scenario", "P5", "--http", "--http-clients", "1000", "--runs", "1", "--scale", "5", "--json")
	var m struct {
		Executions int     `json:"executions"`
		What       string  `json:"what"`
		P99        float64 `json:"latency_p99_ms"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m.Executions != 1000 || !strings.Contains(m.What, "1000 at once") || m.P99 <= 0 {
		t.Errorf("report = %+v, want 1000 executions, 1000 at once, with a p99", m)
	}
	t.Logf("1,000 concurrent dispatches over HTTP: p99 %.0f ms", m.P99)
}

// P6 (throughput) reports the activities per second it sustained; every execution
// completed (the bench fails otherwise).
func TestBenchThroughput(t *testing.T) {
	t.Parallel()
	out, _ := runBench(t, "--scenario", "P6", "--runs", "1", "--scale", "0.005", "--json")
	var m struct {
		Executions, Activities int
		PerS                   float64 `json:"activities_per_s"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m.Executions != 100 || m.Activities != 500 || m.PerS <= 0 {
		t.Errorf("report = %+v, want 100 executions, 500 activities and activities_per_s", m)
	}
}

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	out, _ := runBench(t, "--scenario", "P4,P5", "--runs", "2", "--scale", "0.03", "--json", "--concurrency", "8")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON object per scenario, got:\n%s", out)
	}
	for i, want := range []string{"P4", "P5"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, lines[i])
		}
		if m["scenario"] != want {
			t.Errorf("object %d is scenario %v, want %s", i+1, m["scenario"], want)
		}
		if v, _ := m["wall_ms"].(float64); v <= 0 {
			t.Errorf("%s: wall_ms = %v", want, m["wall_ms"])
		}
		if runs, _ := m["runs_wall_ms"].([]any); len(runs) != 2 {
			t.Errorf("%s: runs_wall_ms = %v, want 2 runs", want, m["runs_wall_ms"])
		}
		if w, _ := m["work_per_step"].(map[string]any); w == nil || w["client_cpu_ms"].(float64) <= 0 {
			t.Errorf("%s: work_per_step = %v, want this process's CPU per step", want, m["work_per_step"])
		}
	}
	var p4 struct {
		Steps []struct {
			N         int     `json:"n"`
			PerStepMS float64 `json:"per_step_ms"`
		} `json:"steps"`
		Ratio float64 `json:"per_step_ratio"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &p4); err != nil {
		t.Fatal(err)
	}
	if len(p4.Steps) != 2 || p4.Steps[0].N != 3 || p4.Steps[1].N != 30 || p4.Ratio <= 0 {
		t.Errorf("P4 = %+v, want steps for N=3 and N=30 and a ratio", p4)
	}
	var p5 struct {
		P50 float64 `json:"latency_p50_ms"`
		P99 float64 `json:"latency_p99_ms"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &p5); err != nil {
		t.Fatal(err)
	}
	if p5.P50 <= 0 || p5.P99 < p5.P50 {
		t.Errorf("P5 latencies p50=%v p99=%v", p5.P50, p5.P99)
	}
}

// Extra worker processes (the --workers path) share the run's database.
func TestBenchExtraWorkers(t *testing.T) {
	t.Parallel()
	out, errs := runBench(t, "--scenario", "P1", "--runs", "1", "--scale", "0.05", "--workers", "2", "--concurrency", "8")
	if !strings.Contains(out, "2 worker process(es)") || !strings.Contains(out, "P1") {
		t.Errorf("report:\n%s\nstderr:\n%s", out, errs)
	}
}

func TestBenchBadFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := stent(t, dir, "bench", "--scenario", "P9")
	if r.code != 2 || !strings.Contains(r.stderr, "unknown scenario") {
		t.Errorf("--scenario P9: exit %d, stderr %q", r.code, r.stderr)
	}
	r = stent(t, dir, "bench", "--runs", "0")
	if r.code != 2 || !strings.Contains(r.stderr, "--runs") {
		t.Errorf("--runs 0: exit %d, stderr %q", r.code, r.stderr)
	}
}

// On PostgreSQL every run gets a schema of its own, and extra worker processes join it.
func TestBenchPostgres(t *testing.T) {
	t.Parallel()
	dsn := requiredEnv(t, "STENT_TEST_POSTGRES", "postgres://root@127.0.0.1:5432/test?sslmode=disable", "the PostgreSQL bench")
	out, errs := runBench(t, "--db", dsn, "--scenario", "P1,P5", "--runs", "1", "--scale", "0.05", "--workers", "2", "--concurrency", "8")
	if !strings.Contains(out, "postgres") || !strings.Contains(out, "fresh schema per run") || !strings.Contains(out, "P5") {
		t.Errorf("report:\n%s\nstderr:\n%s", out, errs)
	}
	if strings.Contains(errs, "dropping schema") {
		t.Errorf("a run's schema was not dropped:\n%s", errs)
	}
}
