package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// chromiumPath finds Debian's chromium. Missing, the browser test fails in CI (which
// installs it) and is skipped elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is required in CI for the web view's browser tests (apt-get install chromium)")
	}
	t.Skip("chromium not found on PATH (apt-get install chromium); skipping the browser tests")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// run runs browser actions with a bound, failing the test with what it was doing.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// count counts the elements a CSS selector matches.
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return get(t, ctx, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

type shots struct {
	t   *testing.T
	dir string
}

func (s shots) take(ctx context.Context, name string) {
	s.t.Helper()
	png := get(s.t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// TestBrowser drives the web view in headless Chromium as an operator would: list,
// filter, execution timeline, source, signal, cancel and dead-letter replay, checking
// the database after each action.
func TestBrowser(t *testing.T) {
	bctx := newBrowser(t)
	f := newFixture(t, ui.Options{})
	dir, err := os.MkdirTemp("", "stent-ui-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	shot := shots{t, dir}
	ctx := context.Background()

	done := f.dispatch(t, "flow.star", []any{"Ada"})
	f.waitStatus(t, done, backend.StatusCompleted)
	failed := f.dispatch(t, "flaky.star", []any{"x1"})
	f.waitStatus(t, failed, backend.StatusFailed)
	parent := f.dispatch(t, "parent.star", nil)
	f.waitStatus(t, parent, backend.StatusCompleted)
	waiting := f.dispatch(t, "wait.star", nil)
	f.waitHistory(t, waiting, backend.EventSignalWait, "approve")
	sleepy := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, sleepy, backend.EventTimerScheduled, "sleep")
	base := f.srv.URL + "/"

	// The list, then only the failed ones.
	run(t, bctx, "open the list", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`#executions`)))
	rows := count(t, bctx, "#executions tbody tr[data-status]")
	if rows != 5 {
		t.Fatalf("the list shows %d executions, want 5", rows)
	}
	if n := get(t, bctx, "read the failed chip", chromedp.Text(chromedp.CSS(`.chip[data-status="failed"] b`))); n != "1" {
		t.Fatalf("the failed chip counts %q, want 1", n)
	}
	shot.take(bctx, "1-list")
	run(t, bctx, "filter to failed", chromedp.Click(chromedp.CSS(`.chip[data-status="failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.chip.active[data-status="failed"]`)))
	rows, failedRows := count(t, bctx, "#executions tbody tr[data-status]"), count(t, bctx, "#executions tbody tr[data-status=failed]")
	if rows != 1 || failedRows != 1 {
		t.Fatalf("filtered to failed, the list shows %d rows (%d failed), want 1 failed", rows, failedRows)
	}
	shot.take(bctx, "2-list-failed")

	// The failed execution: its error and dead letter's step.
	run(t, bctx, "open the failed execution", chromedp.Click(chromedp.CSS(`#executions tbody a`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)))
	errText := get(t, bctx, "read the error", chromedp.Text(chromedp.CSS(`#error`)))
	if !strings.Contains(errText, "upstream unavailable for x1") {
		t.Fatalf("the failed execution's page shows error %q", errText)
	}
	shot.take(bctx, "3-execution-failed")

	// A completed execution: its timeline has one bar per step (activity, timer, activity).
	run(t, bctx, "open the completed execution", chromedp.Navigate(base+"executions/"+done),
		chromedp.WaitVisible(chromedp.CSS(`svg.gantt`)))
	bars := count(t, bctx, "svg.gantt rect.bar")
	if bars != 3 {
		t.Fatalf("the timeline of %s has %d bars, want 3 (greet, sleep, greet)", done, bars)
	}
	shot.take(bctx, "4-execution-completed")

	// Clicking the timer's bar shows its line in the pinned source.
	run(t, bctx, "click the timer bar", chromedp.Click(chromedp.CSS(`svg.gantt a.step[data-seq="2"] rect`)),
		chromedp.WaitVisible(chromedp.CSS(`#source tr.chosen`)))
	line := get(t, bctx, "read the chosen line", chromedp.Text(chromedp.CSS(`#source tr.chosen td.code`)))
	if strings.TrimSpace(line) != `sleep("20ms")` {
		t.Fatalf("the timer's bar shows source line %q, want sleep(\"20ms\")", line)
	}
	shot.take(bctx, "5-source")

	// The parent's children tree.
	run(t, bctx, "open the parent", chromedp.Navigate(base+"executions/"+parent),
		chromedp.WaitVisible(chromedp.CSS(`#children ul.tree`)))
	kids := count(t, bctx, "#children ul.tree li")
	if kids != 2 {
		t.Fatalf("the parent's tree shows %d children, want 2", kids)
	}
	shot.take(bctx, "6-execution-children")

	// Signal the waiting execution; the page then shows it complete without a reload.
	run(t, bctx, "send a signal", chromedp.Navigate(base+"executions/"+waiting),
		chromedp.WaitVisible(chromedp.CSS(`#signal-name`)),
		chromedp.WaitVisible(chromedp.CSS(`#waits li`)),
		chromedp.SendKeys(chromedp.CSS(`#signal-name`), "approve"),
		chromedp.SendKeys(chromedp.CSS(`#signal-payload`), `{"ok": true}`),
		chromedp.Click(chromedp.CSS(`#signal-send`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)))
	if w := get(t, bctx, "read the waits", chromedp.Text(chromedp.CSS(`#waits li`))); !strings.HasPrefix(w, "signal approve (step 1)") {
		t.Fatalf("the waiting execution waits for %q, want signal approve (step 1)", w)
	}
	shot.take(bctx, "7-confirm-signal")
	run(t, bctx, "confirm the signal", chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	f.waitHistory(t, waiting, backend.EventSignalReceived, "approve")
	status := get(t, bctx, "mark the page", chromedp.Evaluate[string](`window.stentMarker = 1; document.querySelector("#status").textContent`))
	if status != "running" {
		t.Fatalf("after the signal the execution shows %q, want running (its gate activity holds it)", status)
	}
	close(f.gate)
	run(t, bctx, "see it complete live", chromedp.WaitVisible(chromedp.CSS(`#status.st-completed`)))
	marker := get(t, bctx, "read the marker", chromedp.Evaluate[int](`window.stentMarker || 0`))
	updates := get(t, bctx, "count live updates", chromedp.Evaluate[int](`Number(document.body.dataset.updated || 0)`))
	if marker != 1 || updates < 1 {
		t.Fatalf("the page reloaded instead of updating live (marker %d, live updates %d)", marker, updates)
	}
	ex := f.waitStatus(t, waiting, backend.StatusCompleted)
	if string(ex.Result) != `{"ok":true}` {
		t.Fatalf("the signalled execution returned %s, want the payload {\"ok\":true}", ex.Result)
	}
	shot.take(bctx, "8-execution-signalled")

	// Cancel the sleeping execution.
	run(t, bctx, "cancel", chromedp.Navigate(base+"executions/"+sleepy), chromedp.WaitVisible(chromedp.CSS(`#cancel`)),
		chromedp.Click(chromedp.CSS(`#cancel`)), chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)))
	if ex, _ := f.eng.Get(ctx, sleepy); ex.Status != backend.StatusRunning {
		t.Fatalf("the execution is %s before the cancel was confirmed", ex.Status)
	}
	run(t, bctx, "confirm the cancel", chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#status.st-cancelled`)))
	f.waitStatus(t, sleepy, backend.StatusCancelled)
	shot.take(bctx, "9-execution-cancelled")

	// Replay the dead letter once the activity works again.
	dls, err := f.eng.DeadLetters(ctx, "open", 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("open dead letters: %v, %v; want 1", dls, err)
	}
	f.healthy.Store(true)
	row := fmt.Sprintf(`#dead-letters tr[data-id="%d"]`, dls[0].ID)
	run(t, bctx, "open dead letters", chromedp.Navigate(base+"dead-letters"), chromedp.WaitVisible(chromedp.CSS(row)))
	shot.take(bctx, "10-dead-letters")
	run(t, bctx, "replay", chromedp.Click(chromedp.CSS(row+` button.replay`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-dialog[open]`)), chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-status="replayed"]`)))
	dl, err := f.eng.Backend().GetDeadLetter(ctx, dls[0].ID)
	if err != nil || dl.Status != "replayed" {
		t.Fatalf("dead letter after replay: %+v, %v; want replayed", dl, err)
	}
	ex = f.waitStatus(t, failed, backend.StatusCompleted)
	var res string
	_ = json.Unmarshal(ex.Result, &res)
	if res != "ok x1" {
		t.Fatalf("the replayed execution returned %s, want \"ok x1\"", ex.Result)
	}
	shot.take(bctx, "11-dead-letter-replayed")
	run(t, bctx, "open the replayed execution", chromedp.Navigate(base+"executions/"+failed),
		chromedp.WaitVisible(chromedp.CSS(`#status.st-completed`)))
	if prior, ok := count(t, bctx, "svg.gantt rect.prior"), count(t, bctx, "svg.gantt rect.bar.o-ok"); prior != 1 || ok != 1 {
		t.Fatalf("the replayed step shows %d failed earlier runs and %d successful bars, want 1 and 1", prior, ok)
	}
	shot.take(bctx, "12-execution-replayed")

	// The list again, every status now shown.
	run(t, bctx, "open the list again", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`#executions`)))
	shot.take(bctx, "13-list-after")
}
