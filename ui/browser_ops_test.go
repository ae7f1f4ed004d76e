package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// docShots returns where the screenshots of the docs go: $STENT_SCREENSHOTS (a
// directory; relative to the repository's root), or "" when it is not set.
func docShots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STENT_SCREENSHOTS")
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// remoteWorker heartbeats a worker row as a `stent worker` on another host would,
// until kill stops it without a word (as SIGKILL does: its row stays).
func remoteWorker(t *testing.T, b backend.Backend, info backend.WorkerInfo) (kill func()) {
	t.Helper()
	rt := b.(backend.Routing)
	if err := rt.RecordWorker(context.Background(), info); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = rt.RecordWorker(context.Background(), info)
			}
		}
	}()
	var once sync.Once
	kill = func() { once.Do(func() { close(stop); <-done }) }
	t.Cleanup(kill)
	return kill
}

// clickLive clicks an element of a part of the page that live updates swap: found and
// clicked in one step, so that a swap cannot come between.
func clickLive(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	run(t, ctx, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	js := fmt.Sprintf(`(function () { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)
	if !get(t, ctx, "click "+sel, chromedp.Evaluate[bool](js)) {
		t.Fatalf("browser: no %s to click", sel)
	}
}

// confirm confirms the dialog of action act, then waits for the page the action
// redirects to (?done=act): a live update of the page it left could otherwise pass
// for the action's outcome.
func confirm(t *testing.T, ctx context.Context, act string) {
	t.Helper()
	get(t, ctx, "mark the page", chromedp.Evaluate[int](`window.stentLeaving = 1`))
	run(t, ctx, "confirm "+act, chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)), chromedp.Click(chromedp.CSS(`#confirm-ok`)))
	js := fmt.Sprintf(`!window.stentLeaving && document.readyState === "complete" && new URLSearchParams(location.search).get("done") === %q`, act)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		done, err := chromedp.Run(c, chromedp.Evaluate[bool](js)) // fails while the page navigates
		cancel()
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser: no page after %s within 30s (last error %v)", act, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserOperations drives the workers and schedules pages and the attempts of the
// timeline in headless Chromium: a live worker, then stopped once it is killed; a
// schedule paused on the page stops firing, and trigger now fires it once; a failed
// attempt is a red bar. With STENT_SCREENSHOTS=docs it writes docs/workers.png and
// docs/schedules.png.
func TestBrowserOperations(t *testing.T) {
	bctx := newBrowser(t)
	f := newFixture(t, ui.Options{DeadWorkerGrace: 3 * time.Second})
	ctx := context.Background()
	base := f.srv.URL + "/"
	docs := docShots(t)
	shot := func(name string) {
		if docs != "" {
			shots{t, docs}.take(bctx, name)
		}
	}

	// Workers: this process's worker holding the gate activity, and one on another host.
	held := f.dispatch(t, "wait.star", nil)
	f.waitHistory(t, held, backend.EventSignalWait, "approve")
	must(t, f.eng.Signal(ctx, held, "approve", map[string]any{"ok": true}))
	f.waitHistory(t, held, backend.EventActivityScheduled, "gate")
	defer close(f.gate)
	kill := remoteWorker(t, f.eng.Backend(), backend.WorkerInfo{ID: "edge-1-4242-payments", Host: "edge-1", PID: 4242,
		Queues: []string{"payments"}, Activities: []string{"charge", "refund"}, Concurrency: 8,
		StartedAt: time.Now().Add(-90 * time.Minute)})
	edge := `#workers tr[data-id="edge-1-4242-payments"]`
	run(t, bctx, "open the workers page", chromedp.Navigate(base+"workers"),
		chromedp.WaitVisible(chromedp.CSS(edge+`[data-state="live"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#workers tr[data-state="live"] ul.held a[href$="/executions/`+held+`"]`)))
	if n := count(t, bctx, `#workers tr[data-state="live"]`); n != 2 {
		t.Fatalf("the workers page shows %d live workers, want 2", n)
	}
	kill()
	run(t, bctx, "see the killed worker stopped", chromedp.WaitVisible(chromedp.CSS(edge+`[data-state="stopped"]`)))
	state := get(t, bctx, "read its state", chromedp.Text(chromedp.CSS(edge+` td:nth-child(2)`)))
	if !strings.Contains(state, "stopped") || !strings.Contains(state, "leases reclaimed") {
		t.Fatalf("the stopped worker's state reads %q", state)
	}
	shot("workers")

	// Schedules: pause one due every second on the page; it records no tick while
	// another one goes on firing.
	f.createSchedule(t, "every-second", "@every 1s", "", false)
	f.createSchedule(t, "reports", "@every 1s", "", false)
	f.createSchedule(t, "nightly-billing", "30 3 * * *", "Europe/Paris", false)
	f.waitTicks(t, "every-second", 0)
	row := `#schedules tr[data-id="every-second"]`
	run(t, bctx, "open the schedules page", chromedp.Navigate(base+"schedules"),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-paused="false"]`)))
	clickLive(t, bctx, row+` button.pause`)
	confirm(t, bctx, "pause-schedule")
	run(t, bctx, "see it paused", chromedp.WaitVisible(chromedp.CSS(row+`[data-paused="true"]`)))
	if sc, err := f.eng.GetSchedule(ctx, "every-second"); err != nil || !sc.Paused {
		t.Fatalf("after the pause on the page the schedule is %+v, %v; want paused", sc, err)
	}
	paused := len(f.ticks(t, "every-second"))
	f.waitTicks(t, "reports", len(f.ticks(t, "reports"))+1)
	if n := len(f.ticks(t, "every-second")); n != paused {
		t.Fatalf("the paused schedule recorded %d tick(s) after its pause", n-paused)
	}

	// Trigger now fires it once.
	clickLive(t, bctx, row+` button.trigger`)
	confirm(t, bctx, "trigger-schedule")
	run(t, bctx, "see the triggered run", chromedp.WaitVisible(chromedp.CSS(row+` tr[data-outcome="triggered"] a`)))
	ts := f.ticks(t, "every-second")
	if len(ts) != paused+1 || ts[0].Outcome != backend.TickTriggered {
		t.Fatalf("after trigger now the schedule has ticks %+v, want one triggered more", ts)
	}
	f.waitStatus(t, ts[0].ExecutionID, backend.StatusCompleted)
	clickLive(t, bctx, `#schedules tr[data-id="reports"] button.pause`)
	confirm(t, bctx, "pause-schedule")
	run(t, bctx, "see both paused and the triggered run done",
		chromedp.WaitVisible(chromedp.CSS(`#schedules tr[data-id="reports"][data-paused="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` tr[data-outcome="triggered"] .st-completed`)))
	shot("schedules")

	// A failed attempt that was retried: a red bar with its error on hover.
	bumpy := f.dispatch(t, "bumpy.star", []any{"order-17"})
	f.waitStatus(t, bumpy, backend.StatusCompleted)
	attempt := `svg.gantt rect.prior.o-failed[data-attempt="1"]`
	run(t, bctx, "open the retried execution", chromedp.Navigate(base+"executions/"+bumpy),
		chromedp.WaitVisible(chromedp.CSS(attempt)))
	fill := get(t, bctx, "read the attempt's colour", chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector('`+attempt+`')).fill`))
	title := get(t, bctx, "read the attempt's tooltip", chromedp.Evaluate[string](
		`document.querySelector('`+attempt+` title').textContent`))
	if fill != "rgb(201, 42, 42)" || !strings.Contains(title, "attempt 1 failed") || !strings.Contains(title, "first attempt refused for order-17") {
		t.Fatalf("the failed attempt's bar is %s with tooltip %q, want red with its error", fill, title)
	}
	if n := count(t, bctx, `svg.gantt rect.bar.o-ok`); n != 1 {
		t.Fatalf("the timeline has %d successful bars, want 1 (the last attempt)", n)
	}
}
