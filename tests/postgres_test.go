package tests

// End-to-end tests of the PostgreSQL backend with several `stent worker` processes on
// one database: a worker killed mid-run, wake-ups through LISTEN/NOTIFY, connections
// dropped by the server, and concurrent migrations. Each test runs in a database of its
// own (see newPostgresDB); they need STENT_TEST_POSTGRES.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// pgStepSh is a command activity that doubles its argument. Around a short sleep it
// appends "<execution> <seq> start|done <worker>" to $LOG, each line with a single
// write to a file opened O_APPEND, so lines of concurrent activities never interleave.
const pgStepSh = `#!/bin/sh
read -r args || true
n=${args#[}
n=${n%]}
printf '%s %s start %s\n' "$STENT_EXECUTION_ID" "$STENT_SEQ" "$WORKER" >> "$LOG"
sleep 0.1
printf '%s %s done %s\n' "$STENT_EXECUTION_ID" "$STENT_SEQ" "$WORKER" >> "$LOG"
echo $((n * 2))
`

const pgFiveSteps = `
def main(i):
    out = []
    for j in range(5):
        out.append(durable("step", i * 10 + j))
    return out
`

type stepKey struct {
	exec string
	seq  int
}

// stepRuns is what the activity log says about one (execution, seq): the workers that
// started it and those that finished it, in log order.
type stepRuns struct {
	starts, dones []string
}

// readStepLog parses the shared activity log (an unfinished last line is ignored).
func readStepLog(t *testing.T, file string) (map[stepKey]*stepRuns, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	runs := map[stepKey]*stepRuns{}
	dones := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			t.Fatalf("malformed line in the activity log: %q", sc.Text())
		}
		seq, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("malformed line in the activity log: %q", sc.Text())
		}
		k := stepKey{f[0], seq}
		r := runs[k]
		if r == nil {
			r = &stepRuns{}
			runs[k] = r
		}
		switch f[2] {
		case "start":
			r.starts = append(r.starts, f[3])
		case "done":
			r.dones = append(r.dones, f[3])
			dones++
		default:
			t.Fatalf("malformed line in the activity log: %q", sc.Text())
		}
	}
	return runs, dones
}

// pgEnv is the environment of a stent process on dsn. startStent points STENT_DB at a
// SQLite file, and the CLI lets STENT_DB win over a --db given before the command name
// (see flagValue in cmd/stent/main.go), so the variable is overridden too.
func pgEnv(dsn string, kv ...string) []string {
	return append([]string{"STENT_DB=" + dsn}, kv...)
}

type pgWorker struct {
	name   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startPgWorkers(t *testing.T, dir, dsn, logFile string, n int, args ...string) []*pgWorker {
	t.Helper()
	var ws []*pgWorker
	for i := range n {
		name := fmt.Sprintf("w%d", i+1)
		cmd, _, errb := startStent(t, dir, pgEnv(dsn, "LOG="+logFile, "WORKER="+name),
			append([]string{"--db", dsn, "worker"}, args...)...)
		ws = append(ws, &pgWorker{name: name, cmd: cmd, stderr: errb})
	}
	return ws
}

// killAll kills the workers and returns their stderr (safe to read once they ended).
func killAll(ws []*pgWorker) string {
	var sb strings.Builder
	for _, w := range ws {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
		fmt.Fprintf(&sb, "--- worker %s stderr:\n%s\n", w.name, tail(w.stderr.String(), 4000))
	}
	return sb.String()
}

func openPgEngine(t *testing.T, dsn string) *stentapi.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := stentapi.Open(ctx, withParams(t, dsn, "pool_max_conns", "4"), stentapi.WithLogger(pgQuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// indexArgs is the arguments of n executions: each gets its index.
func indexArgs(n int) [][]any {
	args := make([][]any, n)
	for i := range args {
		args[i] = []any{i}
	}
	return args
}

// dispatchMany dispatches script once per argument list, from a few goroutines.
func dispatchMany(ctx context.Context, t *testing.T, eng *stentapi.Engine, script string, args [][]any) []string {
	t.Helper()
	ids := make([]string, len(args))
	errs := make([]error, len(args))
	var wg sync.WaitGroup
	const par = 4
	for g := range par {
		wg.Go(func() {
			for i := g; i < len(args); i += par {
				ids[i], errs[i] = eng.Dispatch(ctx, script, args[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("dispatching: %v", err)
	}
	return ids
}

// Three worker processes share one database; one of them is killed (SIGKILL) a third
// of the way through 300 workflows of 5 activities. Every workflow completes with the
// right result, no step has two completions in its history, and the only activities
// that ran twice are some of those the killed worker had in flight.
func TestPostgresWorkerKilledMidRun(t *testing.T) {
	t.Parallel()
	db := newPostgresDB(t)
	const (
		workflows   = 300
		steps       = 5
		concurrency = 16
	)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgFiveSteps, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), pgStepSh, 0o755)
	logFile := filepath.Join(dir, "activities.log")
	began := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // generous: a loaded machine is slow
	defer cancel()
	eng := openPgEngine(t, db.dsn)
	args := indexArgs(workflows)
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), args)
	t.Logf("dispatched %d workflows in %s", workflows, time.Since(began).Round(time.Millisecond))

	// A bounded pool per worker: all tests of the package share one server.
	// Only the killed worker's work may run twice, at most `concurrency` activities (the
	// tasks it held), and the test checks that bound. It holds only while every live
	// worker keeps its heartbeat within the grace: one that a loaded machine starves for
	// longer is rightly taken for dead and its activities run again elsewhere
	// (at-least-once), which this test does not count. So the grace is the default
	// 10s, not a short one that a busy 2-core machine exceeds.
	workerDSN := withParams(t, db.dsn, "pool_max_conns", "8")
	ws := startPgWorkers(t, dir, workerDSN, logFile, 3,
		"--activity", "step=./step.sh", "--concurrency", strconv.Itoa(concurrency), "--dead-worker-grace", "10s")

	// A third of the way: kill the worker with the most activities in flight.
	total := workflows * steps
	for {
		runs, dones := readStepLog(t, logFile)
		if dones >= total/3 {
			inflight := map[string]int{}
			for _, r := range runs {
				for _, w := range r.starts {
					inflight[w]++
				}
				for _, w := range r.dones {
					inflight[w]--
				}
			}
			victim := ws[0]
			for _, w := range ws {
				if inflight[w.name] > inflight[victim.name] {
					victim = w
				}
			}
			if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killedAt := time.Now()
			t.Logf("killed worker %s after %d of %d activities (%s in); in flight per worker: %v",
				victim.name, dones, total, killedAt.Sub(began).Round(time.Millisecond), inflight)
			waitExit(t, victim.cmd, 2*time.Minute)
			if s := victim.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
				t.Errorf("worker %s reported a panic or a data race before it was killed:\n%s", victim.name, tail(s, 8000))
			}
			checkKilledRun(ctx, t, eng, db.dsn, ids, logFile, victim.name, killedAt, concurrency, func() string { return killAll(ws) })
			t.Logf("all %d workflows completed %s after the kill (%s in all)", workflows,
				time.Since(killedAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
			for _, w := range ws {
				if w != victim {
					stopWorker(t, w.name, w.cmd, w.stderr, 30*time.Second)
				}
			}
			if r := stentOn(t, t.TempDir(), db.dsn, "verify"); r.code != 0 {
				t.Fatalf("stent verify after the kill run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d activities done within the time limit\n%s", dones, total, killAll(ws))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkKilledRun(ctx context.Context, t *testing.T, eng *stentapi.Engine, dsn string, ids []string, logFile, victim string,
	killedAt time.Time, concurrency int, dump func() string) {
	t.Helper()
	// Every workflow completes with the right result.
	for i, id := range ids {
		res, err := eng.WaitFor(ctx, id)
		if err != nil {
			t.Fatalf("workflow %d (%s): %v\n%s\n%s", i, id, err, pgStuck(t, dsn), dump())
		}
		var got []int
		if err := res.Decode(&got); err != nil {
			t.Fatalf("workflow %d (%s): %v", i, id, err)
		}
		want := make([]int, 5)
		for j := range want {
			want[j] = (i*10 + j) * 2
		}
		if !slices.Equal(got, want) {
			t.Errorf("workflow %d (%s) returned %v, want %v", i, id, got, want)
		}
	}

	// No step has two completions; note when each was recorded.
	completedAt := map[stepKey]time.Time{}
	for _, id := range ids {
		evs, err := eng.History(ctx, id)
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Kind != backend.EventActivityCompleted {
				continue
			}
			n++
			k := stepKey{id, ev.Seq}
			if _, dup := completedAt[k]; dup {
				t.Errorf("execution %s: seq %d has two %s events", id, ev.Seq, ev.Kind)
			}
			completedAt[k] = ev.At
		}
		if n != 5 {
			t.Errorf("execution %s: %d activity completions in its history, want 5", id, n)
		}
	}

	// Activities whose completion was recorded before the kill ran once; those that ran
	// twice are some of the killed worker's in-flight activities, run again elsewhere.
	runs, _ := readStepLog(t, logFile)
	var twice []string
	doneTwice := 0
	for k, at := range completedAt {
		r := runs[k]
		if r == nil || len(r.dones) == 0 {
			t.Errorf("execution %s seq %d completed, but the activity log has no run of it", k.exec, k.seq)
			continue
		}
		if len(r.starts) == 1 && len(r.dones) == 1 {
			continue
		}
		twice = append(twice, fmt.Sprintf("%s/%d starts=%v dones=%v", k.exec, k.seq, r.starts, r.dones))
		if len(r.dones) > 1 {
			doneTwice++
		}
		switch {
		case at.Before(killedAt):
			t.Errorf("execution %s seq %d was completed before the kill (%s), yet ran again: starts by %v, dones by %v",
				k.exec, k.seq, killedAt.Sub(at), r.starts, r.dones)
		case len(r.starts) != 2 || r.starts[0] != victim || r.starts[1] == victim:
			t.Errorf("execution %s seq %d: started by %v, finished by %v; only a run on the killed worker %s may be repeated, once, elsewhere",
				k.exec, k.seq, r.starts, r.dones, victim)
		}
	}
	for k := range runs {
		if _, ok := completedAt[k]; !ok {
			t.Errorf("the activity log has a run of %s seq %d, which no history has completed", k.exec, k.seq)
		}
	}
	sort.Strings(twice)
	t.Logf("activities run twice (in flight on %s when it was killed): %d, of which %d finished twice (bound: concurrency %d) %v",
		victim, len(twice), doneTwice, concurrency, twice)
	if len(twice) > concurrency {
		t.Errorf("%d activities ran twice; the killed worker could have had at most %d in flight", len(twice), concurrency)
	}
}

const pgStampSh = `#!/bin/sh
printf '%s %s\n' "$STENT_EXECUTION_ID" "$(date +%s%N)" >> "$LOG"
echo '"ok"'
`

const pgOneStep = `
def main():
    return durable("stamp")
`

// An idle worker in another process that never polls (once an hour) starts a
// dispatched workflow: only the dispatch's NOTIFY can wake it, so every workflow
// completing (within a generous deadline) is the outcome; the latencies are logged.
// Not parallel: the latencies it logs mean more on a quiet server.
func TestPostgresNotifyWakesIdleWorker(t *testing.T) {
	db := newPostgresDB(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgOneStep, 0o644)
	writeFile(t, filepath.Join(dir, "stamp.sh"), pgStampSh, 0o755)
	logFile := filepath.Join(dir, "stamps.log")
	ws := startPgWorkers(t, dir, db.dsn, logFile, 1, "--poll", "1h", "--activity", "stamp=./stamp.sh")
	db.waitForListeners(t, 1, 2*time.Minute, func() string { return killAll(ws) })
	eng := openPgEngine(t, db.dsn)
	script := filepath.Join(dir, "flow.star")
	run := func(timeout time.Duration) (pickup, result time.Duration, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		id, err := eng.Dispatch(ctx, script, nil)
		if err != nil {
			return 0, 0, err
		}
		res, err := eng.WaitFor(ctx, id)
		if err != nil {
			return 0, 0, err
		}
		result = time.Since(start)
		if v, _ := res.Unwrap(); v != "ok" {
			return 0, 0, fmt.Errorf("result %s, want \"ok\"", res.Value)
		}
		b, _ := os.ReadFile(logFile)
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == id {
				ns, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("stamp line %q: %v", line, err)
				}
				return time.Unix(0, ns).Sub(start), result, nil
			}
		}
		return 0, 0, fmt.Errorf("the activity of %s left no stamp", id)
	}
	// Warm-up: connections, prepared statements, the script's program cache.
	if _, _, err := run(2 * time.Minute); err != nil {
		t.Fatalf("warm-up: %v\n%s", err, killAll(ws))
	}

	var pickups, results []time.Duration
	for range 10 {
		// Likely the worker is back in its wait by then; a run it claims before it
		// waits again passes without NOTIFY, which only makes the test weaker, never
		// flaky.
		time.Sleep(150 * time.Millisecond)
		p, r, err := run(2 * time.Minute)
		if err != nil {
			t.Fatalf("a worker that does not poll must be woken by the dispatch's NOTIFY: %v\n%s", err, killAll(ws))
		}
		pickups, results = append(pickups, p), append(results, r)
	}
	t.Logf("worker polling every hour: dispatch→activity start median %s max %s; dispatch→result median %s max %s",
		median(pickups).Round(100*time.Microsecond), slices.Max(pickups).Round(100*time.Microsecond),
		median(results).Round(100*time.Microsecond), slices.Max(results).Round(100*time.Microsecond))
	stopWorker(t, ws[0].name, ws[0].cmd, ws[0].stderr, 2*time.Minute)
}

const pgSleepyFlow = `
def main(n):
    a = durable("step", n)
    sleep("1s")
    b = durable("step", n + 1000)
    sleep("500ms")
    c = durable("step", n + 2000)
    return [a, b, c]
`

// The server drops every connection of the workers (and of the dispatching process)
// three times while 50 workflows run their activities and timers: the workers
// reconnect, and every workflow completes with the right result.
func TestPostgresConnectionsTerminated(t *testing.T) {
	t.Parallel()
	db := newPostgresDB(t)
	const workflows = 50
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgSleepyFlow, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), pgStepSh, 0o755)
	logFile := filepath.Join(dir, "activities.log")
	ws := startPgWorkers(t, dir, withParams(t, db.dsn, "pool_max_conns", "8"), logFile, 2,
		"--activity", "step=./step.sh", "--concurrency", "16")
	db.waitForListeners(t, 2, 60*time.Second, func() string { return killAll(ws) })

	// A run takes seconds (minutes on a loaded machine); a task stranded by a dropped
	// connection would wait for its 5-minute lease.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	eng := openPgEngine(t, db.dsn)
	args := indexArgs(workflows)
	began := time.Now()
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), args)

	// Drop the connections as the workflows go through their first step, their first
	// sleep and their second step.
	terminated := 0
	for i, at := range []time.Duration{300 * time.Millisecond, 1300 * time.Millisecond, 2300 * time.Millisecond} {
		time.Sleep(time.Until(began.Add(at)))
		n := pgQueryInt(t, db.admin, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()) AS k`, db.name)
		_, dones := readStepLog(t, logFile)
		t.Logf("termination %d at +%s: %d connections dropped; %d of %d activities done",
			i+1, time.Since(began).Round(time.Millisecond), n, dones, 3*workflows)
		terminated += int(n)
	}
	if terminated == 0 {
		t.Fatal("pg_terminate_backend found no connection to drop")
	}

	transient := 0
	for i, id := range ids {
		var res *stentapi.Result
		var err error
		for try := 0; ; try++ {
			res, err = eng.WaitFor(ctx, id)
			var xe *stentapi.ExecutionError
			if err == nil || errors.As(err, &xe) || ctx.Err() != nil || try == 5 {
				break
			}
			// The test process's own pooled connections were dropped as well.
			transient++
			t.Logf("WaitFor(%s) in the test process: %v (retrying)", id, err)
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			// A task still claimed by a live worker that logged "handing it back" was
			// stranded: its release failed too, and it waits for its 5-minute lease.
			t.Fatalf("workflow %d (%s): %v\n%s\n%s", i, id, err, pgStuck(t, db.dsn), killAll(ws))
		}
		var got []int
		if err := res.Decode(&got); err != nil {
			t.Fatalf("workflow %d (%s): %v", i, id, err)
		}
		if want := []int{2 * i, 2 * (i + 1000), 2 * (i + 2000)}; !slices.Equal(got, want) {
			t.Errorf("workflow %d (%s) returned %v, want %v", i, id, got, want)
		}
	}
	runs, _ := readStepLog(t, logFile)
	again := 0
	for _, r := range runs {
		if len(r.starts) > 1 {
			again++
		}
	}
	t.Logf("all %d workflows completed %s after dispatch; %d activities ran more than once; %d WaitFor calls of the test process failed on a dropped connection",
		workflows, time.Since(began).Round(time.Millisecond), again, transient)
	// The workers' LISTEN connections are back.
	db.waitForListeners(t, 2, 15*time.Second, func() string { return killAll(ws) })
	for _, w := range ws {
		stopWorker(t, w.name, w.cmd, w.stderr, 30*time.Second)
	}
}

// Two processes running `stent migrate` on a fresh database at the same moment both
// succeed, and the schema is migrated once.
func TestPostgresConcurrentMigrate(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		t.Run(fmt.Sprintf("round%d", round+1), func(t *testing.T) {
			t.Parallel()
			db := newPostgresDB(t)
			dir := t.TempDir()
			dsn := withParams(t, db.dsn, "pool_max_conns", "2")
			type proc struct {
				cmd          *exec.Cmd
				stdout, errb *bytes.Buffer
			}
			var ps []proc
			for range 2 {
				cmd, out, errb := startStent(t, dir, pgEnv(dsn), "--db", dsn, "migrate")
				ps = append(ps, proc{cmd, out, errb})
			}
			for i, p := range ps {
				if code := waitExit(t, p.cmd, 60*time.Second); code != 0 {
					t.Errorf("migrate process %d exited %d (-1: timed out); stderr:\n%s", i+1, code, p.errb)
				}
			}
			n := pgQueryInt(t, db.dsn, `SELECT count(*) FROM schema_migrations`)
			distinct := pgQueryInt(t, db.dsn, `SELECT count(DISTINCT version) FROM schema_migrations`)
			if n == 0 || n != distinct {
				t.Errorf("schema_migrations has %d rows for %d versions after two concurrent migrations", n, distinct)
			}
		})
	}
}
