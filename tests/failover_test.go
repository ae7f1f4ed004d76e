package tests

// PostgreSQL primary failover (issue 28, items 1 and 2): two local clusters, a primary
// and a streaming standby; four `stent worker` processes connect through a multi-host
// DSN with target_session_attrs=read-write. In the middle of 2,000 executions of five
// command activities the primary's processes are killed (kill -9) and the standby is
// promoted. With synchronous replication nothing committed is lost: every execution
// completes, no step is recorded twice, every activity ran once per attempt its
// history records, and `stent verify` is clean. With asynchronous replication the test
// makes the failover lose the commits of the last moments (the standby streams through
// a proxy that holds them), reports what was lost, and checks the engine still
// finishes every execution with the right result and without corrupt state.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// failoverExecutions is how many executions the failover test runs: 2,000, or
// STENT_FAILOVER_EXECUTIONS.
func failoverExecutions(t *testing.T) int {
	t.Helper()
	v := os.Getenv("STENT_FAILOVER_EXECUTIONS")
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10 {
		t.Fatalf("STENT_FAILOVER_EXECUTIONS=%q: want a number of at least 10", v)
	}
	return n
}

func TestPostgresFailover(t *testing.T) {
	if os.Getenv("STENT_TEST_FAILOVER") == "" {
		t.Skip("the PostgreSQL failover run is `make test-failover` (STENT_TEST_FAILOVER=1)")
	}
	// The subtests run one after the other: each is four workers and two servers on a
	// small machine.
	t.Run("sync", func(t *testing.T) { runFailover(t, true) })
	t.Run("async", func(t *testing.T) { runFailover(t, false) })
}

// failoverFigures is what one run measured.
type failoverFigures struct {
	promoteToCommit time.Duration // pg_ctl promote issued → first new event on the new primary
	killToCommit    time.Duration // kill -9 → first new event
	lostCommits     int           // commits the old primary acknowledged after the standby's last received LSN
}

func runFailover(t *testing.T, synchronous bool) {
	const steps = 5
	executions := failoverExecutions(t)
	root := newPgRoot(t)
	primary := root.newPrimary(t)
	// Asynchronous replication loses what the standby had not received: the standby
	// streams through a proxy that holds the WAL for the last moments before the kill,
	// so that the failover loses commits the workers were told of (on a quiet loopback
	// the standby would have nearly everything).
	var wal *cutProxy
	via := ""
	if !synchronous {
		wal = startCutProxy(t, fmt.Sprintf("127.0.0.1:%d", primary.port))
		via = wal.addr()
	}
	standby := root.newStandby(t, primary, via)
	if synchronous {
		makeSynchronous(t, primary)
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/stent?sslmode=disable&target_session_attrs=read-write&connect_timeout=5",
		primary.port, standby.port)

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgFiveSteps, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), faultStepSh, 0o755)
	logFile := filepath.Join(dir, "effects.log")

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // a loaded machine is slow
	defer cancel()
	eng := openPgEngine(t, withParams(t, dsn, "application_name", "stent-test"))
	// The default lease (five minutes): the tasks of a claim whose answer the failover
	// lost must be released seconds after the new primary answers, not when their lease
	// ends.
	ws := startPgWorkers(t, dir, withParams(t, dsn, "pool_max_conns", "8"), logFile, 4,
		"--activity", "step=./step.sh", "--concurrency", "16")
	began := time.Now()
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), indexArgs(executions))
	t.Logf("%d executions dispatched in %s", executions, time.Since(began).Round(time.Millisecond))

	// The failover, when two fifths of the activities have run.
	waitEffects(t, logFile, executions*steps*2/5, 2*time.Minute, func() string { return pgStuck(t, primary.admin()) + killAll(ws) })
	var fig failoverFigures
	// The standby's connection is open before the kill, so that the promote follows it
	// at once and the first new commit is seen within milliseconds.
	watch, err := pgx.Connect(ctx, standby.admin())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())
	if wal != nil {
		// The standby receives nothing more while about a hundred more activities run.
		wal.hold()
		waitEffects(t, logFile, executions*steps*2/5+100, 2*time.Minute, func() string { wal.release(); return pgStuck(t, primary.admin()) + killAll(ws) })
	}
	killed := time.Now()
	root.kill(t, primary)
	if wal != nil {
		wal.cutAll() // what it held is gone with the primary
		wal.release()
	}
	var receivedLSN string
	var baseline int64
	if err := watch.QueryRow(ctx, `SELECT pg_last_wal_receive_lsn()::text, (SELECT coalesce(max(id), 0) FROM events)`).Scan(&receivedLSN, &baseline); err != nil {
		t.Fatal(err)
	}
	firstCommit := watchFirstCommit(ctx, watch, baseline)
	promoted := time.Now()
	root.promote(t, standby)
	promoteDone := time.Since(promoted)
	select {
	case at := <-firstCommit:
		fig.promoteToCommit, fig.killToCommit = at.Sub(promoted), at.Sub(killed)
	case <-time.After(2 * time.Minute):
		t.Fatalf("no event committed on the promoted standby within 2 minutes\n%s\n%s", pgStuck(t, standby.admin()), killAll(ws))
	}
	fig.lostCommits = root.commitsAfter(t, primary, receivedLSN)
	t.Logf("killed the primary at %s; the standby had received up to %s; promote took %s; first new commit %s after promote (%s after the kill); %d commits the old primary acknowledged are lost",
		killed.Sub(began).Round(time.Millisecond), receivedLSN, promoteDone.Round(time.Millisecond),
		fig.promoteToCommit.Round(time.Millisecond), fig.killToCommit.Round(time.Millisecond), fig.lostCommits)

	// What is still running a minute after the promotion, for the report.
	allDone, snapped := make(chan struct{}), make(chan string, 1)
	go func() {
		select {
		case <-allDone:
			snapped <- ""
		case <-time.After(time.Minute):
			snapped <- pgStuck(t, standby.admin())
		}
	}()
	waitAll(ctx, t, eng, ids, steps, func() string { return pgStuck(t, standby.admin()) + killAll(ws) })
	close(allDone)
	if s := <-snapped; s != "" {
		t.Logf("a minute after the promotion, %s", s)
	}
	t.Logf("%d executions completed in %s", executions, time.Since(began).Round(time.Millisecond))

	// Every worker listens again, on the new primary.
	deadline := time.Now().Add(time.Minute)
	for n := int64(0); n < 4; {
		n = pgQueryInt(t, standby.admin(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = 'stent' AND application_name LIKE 'stent-listener%' AND query ILIKE 'LISTEN%' AND state = 'idle'`)
		if n < 4 && time.Now().After(deadline) {
			t.Fatalf("%d of 4 LISTEN connections on the promoted standby a minute after the executions completed", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	ef := effectsAgainstHistories(ctx, t, eng, ids, logFile, steps)
	lat := stepLatencies(ctx, t, eng, ids, killed, killed.Add(fig.killToCommit))
	for _, w := range ws {
		stopWorker(t, w.name, w.cmd, w.stderr, 2*time.Minute)
		checkOutageLogging(t, w.name, w.stderr.String(), 1)
	}
	if r := stentOn(t, t.TempDir(), dsn, "verify"); r.code != 0 {
		t.Fatalf("stent verify after the failover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if synchronous {
		if fig.lostCommits != 0 {
			t.Errorf("synchronous replication lost %d acknowledged commits", fig.lostCommits)
		}
		for _, p := range ef.problems {
			t.Error(p)
		}
	} else {
		for _, p := range ef.problems {
			t.Logf("after the loss: %s", p)
		}
	}
	mode := map[bool]string{true: "sync", false: "async"}[synchronous]
	t.Logf("FAILOVER %s: %d executions ok, verify clean; promote→first commit %s (kill→first commit %s); step latency p50 %s p99 %s max %s, steps across the outage: %d, p99 %s; lost commits %d; activities run more often than recorded %d, attempts recorded %d",
		mode, executions, fig.promoteToCommit.Round(time.Millisecond), fig.killToCommit.Round(time.Millisecond),
		lat.p50, lat.p99, lat.max, lat.acrossN, lat.acrossP99, fig.lostCommits, ef.extraRuns, ef.attempts)
	if lat.slowest != "" {
		id, _, _ := strings.Cut(lat.slowest, " ")
		evs, _ := eng.History(ctx, id)
		var b strings.Builder
		for _, ev := range evs {
			fmt.Fprintf(&b, "\n  #%d %s seq %d at %s", ev.ID, ev.Kind, ev.Seq, ev.At.Sub(killed).Round(time.Millisecond))
		}
		t.Logf("slowest step: %s, %s (times from the kill):%s", lat.slowest, lat.slowestAt.Round(time.Millisecond), b.String())
	}
	if fig.promoteToCommit > 5*time.Second {
		t.Logf("promote→first commit %s is above the 5s target", fig.promoteToCommit.Round(time.Millisecond))
	}
}

// waitEffects waits until the side-effect log holds n lines. A loaded machine only
// makes that slower: the run is stuck when no line was added for stall.
func waitEffects(t *testing.T, logFile string, n int, stall time.Duration, describe func() string) {
	t.Helper()
	last, lastAt := -1, time.Now()
	for {
		b, _ := os.ReadFile(logFile)
		got := strings.Count(string(b), "\n")
		if got >= n {
			return
		}
		if got != last {
			last, lastAt = got, time.Now()
		}
		if time.Since(lastAt) > stall {
			t.Fatalf("%d of %d activities ran, none in the last %s\n%s", got, n, stall, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchFirstCommit polls conn (to the standby about to be promoted) and sends the time
// an event newer than baseline first shows.
func watchFirstCommit(ctx context.Context, conn *pgx.Conn, baseline int64) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			if id, err := maxEventID(ctx, conn); err == nil && id > baseline {
				out <- time.Now()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return out
}

// waitAll waits for every execution to complete with the result of pgFiveSteps. A wait
// that fails because the database is unavailable is tried again.
func waitAll(ctx context.Context, t *testing.T, eng *stentapi.Engine, ids []string, steps int, describe func() string) {
	t.Helper()
	retries := 0
	for i, id := range ids {
		for {
			res, err := eng.WaitFor(ctx, id)
			if err != nil && ctx.Err() == nil && backend.Retryable(err) {
				retries++
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("execution %d (%s): %v\n%s", i, id, err, describe())
			}
			var got []int
			if err := res.Decode(&got); err != nil {
				t.Fatalf("execution %d (%s): %v", i, id, err)
			}
			for j, v := range got {
				if want := (i*10 + j) * 2; v != want || len(got) != steps {
					t.Fatalf("execution %d (%s) returned %v", i, id, got)
				}
			}
			break
		}
	}
	if retries > 0 {
		t.Logf("waiting for the executions: %d waits retried while the database was unavailable", retries)
	}
}

// effects compares the side-effect log with the histories.
type effects struct {
	attempts  int      // activity attempts the histories record
	extraRuns int      // activity runs beyond the attempts recorded
	problems  []string // each mismatch, said once
}

// effectsAgainstHistories checks that no step is recorded twice (a failure in any
// mode) and compares each step's runs in the side-effect log with the attempts its
// history records (what a synchronous failover must keep equal).
func effectsAgainstHistories(ctx context.Context, t *testing.T, eng *stentapi.Engine, ids []string, logFile string, steps int) effects {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{} // "exec seq" -> lines
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("malformed side-effect line %q", l)
		}
		runs[f[0]+" "+f[1]]++
	}
	var ef effects
	for _, id := range ids {
		completed, attempts := stepCounts(ctx, t, eng, id)
		if len(completed) != steps {
			t.Errorf("execution %s: %d steps completed, want %d", id, len(completed), steps)
		}
		for seq, n := range completed {
			if n != 1 {
				t.Errorf("execution %s: seq %d recorded %d completions", id, seq, n)
			}
			k := fmt.Sprintf("%s %d", id, seq)
			ran := runs[k]
			delete(runs, k)
			ef.attempts += attempts[seq]
			if ran != attempts[seq] {
				ef.problems = append(ef.problems, fmt.Sprintf("execution %s seq %d: %d attempts recorded, the activity ran %d times", id, seq, attempts[seq], ran))
				ef.extraRuns += max(0, ran-attempts[seq])
			}
		}
	}
	for k, n := range runs {
		ef.problems = append(ef.problems, fmt.Sprintf("side effect of %q (%d runs) belongs to no step recorded in a history", k, n))
		ef.extraRuns += n
	}
	return ef
}

// latencies of the steps: from activity_scheduled to activity_completed.
type latencies struct {
	p50, p99, max time.Duration
	acrossN       int           // steps scheduled before the outage ended and completed after it began
	acrossP99     time.Duration // their p99
	slowest       string        // the slowest step's execution and seq
	slowestAt     time.Duration
}

func stepLatencies(ctx context.Context, t *testing.T, eng *stentapi.Engine, ids []string, outageFrom, outageTo time.Time) latencies {
	t.Helper()
	var all, across []time.Duration
	var l latencies
	for _, id := range ids {
		evs, err := eng.History(ctx, id)
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		scheduled := map[int]time.Time{}
		for _, ev := range evs {
			switch ev.Kind {
			case backend.EventActivityScheduled:
				scheduled[ev.Seq] = ev.At
			case backend.EventActivityCompleted:
				s, ok := scheduled[ev.Seq]
				if !ok {
					continue
				}
				d := ev.At.Sub(s)
				all = append(all, d)
				if d > l.slowestAt {
					l.slowest, l.slowestAt = fmt.Sprintf("%s seq %d", id, ev.Seq), d
				}
				if s.Before(outageTo) && ev.At.After(outageFrom) {
					across = append(across, d)
				}
			}
		}
	}
	l.p50, l.p99, l.max = percentile(all, 50), percentile(all, 99), percentile(all, 100)
	l.acrossN, l.acrossP99 = len(across), percentile(across, 99)
	return l
}

// percentile is the p-th percentile of ds (nearest rank), rounded to the millisecond.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	return ds[min(max(i-1, 0), len(ds)-1)].Round(time.Millisecond)
}
