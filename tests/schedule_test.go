package tests

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stent-go/stent/internal/schedule"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// A schedule `@every 1s` served by three worker processes on PostgreSQL starts one
// execution per tick (IDs unique, none missing). Then every worker stops for more
// than five ticks and starts again: the ticks missed within the catch-up window (3s
// plus the scheduler's 1s grace) start late, those beyond it are skipped and recorded,
// and no tick is lost or run twice.
func TestPostgresScheduleEverySecond(t *testing.T) {
	db := newPostgresDB(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tick.star"), "def main(n):\n    return n\n", 0o644)
	if r := stentOn(t, dir, db.dsn, "schedule", "create", "tick", "--cron", "@every 1s", "--overlap", "allow",
		"--catchup", "3s", "tick.star", "--args", "[7]"); r.code != 0 {
		t.Fatalf("schedule create: exit %d\n%s", r.code, r.stderr)
	}
	eng := openPgEngine(t, db.dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// serve runs three workers for at least d, and on until done says so (at most five
	// minutes more: on a loaded machine, workers take a while to start).
	serve := func(d time.Duration, done func() bool) {
		var ws []*pgWorker
		for i := range 3 {
			cmd, _, errb := startStent(t, dir, pgEnv(db.dsn), "worker")
			ws = append(ws, &pgWorker{name: string(rune('A' + i)), cmd: cmd, stderr: errb})
		}
		time.Sleep(d)
		for end := time.Now().Add(5 * time.Minute); !done() && time.Now().Before(end); {
			time.Sleep(200 * time.Millisecond)
		}
		for _, w := range ws {
			stopWorker(t, w.name, w.cmd, w.stderr, 30*time.Second)
		}
	}
	serve(10*time.Second, func() bool { return true })
	first := ticksOf(ctx, t, eng)
	checkTicks(t, first, 3*time.Second)
	// Every tick is recorded once (checkTicks); on a busy machine a pass that comes
	// later than the catch-up window records a tick as missed, which is its outcome,
	// not a loss. Most are dispatched.
	dispatched := 0
	for _, tk := range first {
		switch tk.Outcome {
		case backend.TickDispatched:
			dispatched++
		case backend.TickSkippedMissed:
			t.Logf("tick %s was missed (the scheduler came later than the catch-up window)", tk.TickAt)
		default:
			t.Fatalf("while three workers served, tick %s was %s, want dispatched (or missed)", tk.TickAt, tk.Outcome)
		}
	}
	if dispatched < 3 {
		t.Fatalf("%d ticks dispatched in 10s of @every 1s, want most of about 10", dispatched)
	}

	time.Sleep(6 * time.Second) // every worker down: at least 5 ticks pass
	// Serve until the workers have caught up (a tick due after they came back is
	// recorded), then pause the schedule and serve until every execution it started has
	// completed: on a loaded machine the last ones may still wait for a worker.
	back := time.Now()
	paused := false
	serve(4*time.Second, func() bool {
		if !paused {
			ticks := ticksOf(ctx, t, eng)
			if len(ticks) == 0 || !ticks[len(ticks)-1].TickAt.After(back) {
				return false
			}
			if r := stentOn(t, dir, db.dsn, "schedule", "pause", "tick"); r.code != 0 {
				t.Fatalf("schedule pause: exit %d\n%s", r.code, r.stderr)
			}
			paused = true
		}
		return pgQueryInt(t, db.dsn, `SELECT count(*) FROM executions WHERE id LIKE 'tick@%' AND status <> 'completed'`) == 0
	})
	if !paused {
		t.Fatal("the workers never caught up: no tick due after they came back was recorded")
	}
	all := ticksOf(ctx, t, eng)
	checkTicks(t, all, 3*time.Second)
	var skipped, late int
	for _, tk := range all {
		switch {
		case tk.Outcome == backend.TickSkippedMissed:
			skipped++
		case tk.At.Sub(tk.TickAt) > 1500*time.Millisecond:
			late++
		}
	}
	if skipped == 0 || late == 0 {
		t.Fatalf("after 6s with no worker: %d ticks skipped, %d started late; want some of each (catch-up 3s)", skipped, late)
	}
	// Exactly one execution per dispatched tick, with its deterministic ID, all completed.
	want := map[string]bool{}
	for _, tk := range all {
		if tk.Outcome == backend.TickDispatched {
			want[tk.ExecutionID] = true
			if tk.ExecutionID != schedule.TickExecutionID("tick", tk.TickAt) {
				t.Fatalf("tick %s started %s, want %s", tk.TickAt, tk.ExecutionID, schedule.TickExecutionID("tick", tk.TickAt))
			}
		}
	}
	n := pgQueryInt(t, db.dsn, `SELECT count(*) FROM executions WHERE id LIKE 'tick@%'`)
	if int(n) != len(want) {
		t.Fatalf("%d executions of the schedule, want %d (one per dispatched tick)", n, len(want))
	}
	for id := range want {
		res, err := eng.WaitFor(ctx, id)
		if err != nil || res.Err() != nil || string(res.Value) != "7" {
			t.Fatalf("execution %s: %v %v", id, err, res)
		}
	}
	t.Logf("%d ticks: %d dispatched (%d late), %d skipped", len(all), len(want), late, skipped)
}

func ticksOf(ctx context.Context, t *testing.T, eng *stentapi.Engine) []stentapi.ScheduleTick {
	t.Helper()
	ticks, err := eng.ScheduleTicks(ctx, "tick", 1000)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].TickAt.Before(ticks[j].TickAt) })
	return ticks
}

// checkTicks checks that ticks are one second apart, none missing and none twice, and
// that each was dispatched within the catch-up window (plus the 1s grace) or skipped
// beyond it.
func checkTicks(t *testing.T, ticks []stentapi.ScheduleTick, catchup time.Duration) {
	t.Helper()
	if len(ticks) == 0 {
		t.Fatal("no tick recorded")
	}
	window := catchup + time.Second
	for i, tk := range ticks {
		if i > 0 && tk.TickAt.Sub(ticks[i-1].TickAt) != time.Second {
			t.Fatalf("ticks %s and %s: want consecutive seconds (none missing, none twice)", ticks[i-1].TickAt, tk.TickAt)
		}
		lateness := tk.At.Sub(tk.TickAt)
		switch tk.Outcome {
		case backend.TickDispatched:
			if lateness > window {
				t.Fatalf("tick %s dispatched %s late, beyond the catch-up window %s", tk.TickAt, lateness, window)
			}
		case backend.TickSkippedMissed:
			if lateness <= window {
				t.Fatalf("tick %s skipped only %s late, within the catch-up window %s", tk.TickAt, lateness, window)
			}
		default:
			t.Fatalf("tick %s: outcome %s, want dispatched or skipped_missed", tk.TickAt, tk.Outcome)
		}
	}
}
