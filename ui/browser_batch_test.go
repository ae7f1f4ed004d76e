package ui_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// TestBrowserBatchAndReset drives the list page's where filter and batch retry, and the
// execution page's "reset from here", in headless Chromium: three of four failed
// executions selected and retried complete, the fourth stays failed; a completed
// execution reset from its third step runs again as ID-r1.
func TestBrowserBatchAndReset(t *testing.T) {
	bctx := newBrowser(t)
	f := newFixture(t, ui.Options{})
	base := f.srv.URL + "/"
	docs := docShots(t)
	shot := func(name string) {
		if docs != "" {
			shots{t, docs}.take(bctx, name)
		}
	}
	var failed []string
	for _, x := range []string{"a", "b", "c", "d"} {
		failed = append(failed, f.dispatch(t, "flaky.star", []any{x}))
	}
	done := f.dispatch(t, "flow.star", []any{"Ada"})
	for _, id := range failed {
		f.waitStatus(t, id, backend.StatusFailed)
	}
	f.waitStatus(t, done, backend.StatusCompleted)

	// Filter with the where box: only the failed ones are listed.
	run(t, bctx, "open the list", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`#where`)))
	run(t, bctx, "filter status=failed", chromedp.SendKeys(chromedp.CSS(`#where`), "status=failed\n"),
		chromedp.WaitVisible(chromedp.CSS(`#executions tbody tr[data-status="failed"]`)))
	if loc := get(t, bctx, "read the URL", chromedp.Location()); !strings.Contains(loc, "where=status%3Dfailed") {
		t.Fatalf("the where box submitted to %s", loc)
	}
	if n, all := count(t, bctx, `#executions tbody tr[data-status="failed"]`), count(t, bctx, `#executions tbody tr[data-id]`); n != 4 || all != 4 {
		t.Fatalf("status=failed lists %d failed of %d rows, want 4 of 4", n, all)
	}

	// Select three and retry them.
	for _, id := range failed[:3] {
		clickLive(t, bctx, `#executions tr[data-id="`+id+`"] input.pick`)
	}
	shot("batch-select")
	f.healthy.Store(true)
	run(t, bctx, "retry the selected", chromedp.Click(chromedp.CSS(`#batch-retry`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-form`)))
	if q := get(t, bctx, "read the question", chromedp.Text(chromedp.CSS(`main h1`))); q != "Retry 3 executions?" {
		t.Fatalf("the batch confirmation asks %q", q)
	}
	run(t, bctx, "confirm the batch", chromedp.Click(chromedp.CSS(`#confirm-form button.primary`)),
		chromedp.WaitVisible(chromedp.CSS(`#batch-result`)))
	shot("batch-result")
	if n := get(t, bctx, "read the summary", chromedp.Evaluate[string](`document.getElementById("batch-result").dataset.done`)); n != "3" {
		t.Fatalf("the batch summary says %s retried, want 3", n)
	}
	for _, id := range failed[:3] {
		f.waitStatus(t, id, backend.StatusCompleted)
	}
	f.waitStatus(t, failed[3], backend.StatusFailed)
	evs, err := f.eng.History(context.Background(), failed[3])
	must(t, err)
	for _, ev := range evs {
		if ev.Kind == backend.EventRetried {
			t.Fatalf("the unselected execution %s was retried", failed[3])
		}
	}

	// Reset the completed execution from its third step.
	run(t, bctx, "open the completed execution", chromedp.Navigate(base+"executions/"+done),
		chromedp.WaitVisible(chromedp.CSS(`button.reset[data-seq="3"]`)))
	shot("reset-history")
	clickLive(t, bctx, `button.reset[data-seq="3"]`)
	confirm(t, bctx, "reset")
	loc := get(t, bctx, "read the URL", chromedp.Location())
	if !strings.Contains(loc, "/executions/"+done+"-r1?") {
		t.Fatalf("the reset led to %s, want the new execution %s-r1", loc, done)
	}
	run(t, bctx, "see the link to the old execution", chromedp.WaitVisible(chromedp.CSS(`#reset-from a[href$="/executions/`+done+`"]`)))
	f.waitStatus(t, done+"-r1", backend.StatusCompleted)
}

// TestBrowserTagChip: the list rows show their tags as chips; clicking one lists the
// executions that have that tag, with the term in the where box.
func TestBrowserTagChip(t *testing.T) {
	bctx := newBrowser(t)
	f := newFixture(t, ui.Options{})
	gold := f.dispatch(t, "flow.star", []any{"a"}, stent.WithTags(map[string]string{"plan": "gold"}))
	silver := f.dispatch(t, "flow.star", []any{"b"}, stent.WithTags(map[string]string{"plan": "silver"}))
	f.waitStatus(t, gold, backend.StatusCompleted)
	f.waitStatus(t, silver, backend.StatusCompleted)

	run(t, bctx, "open the list", chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#executions`)))
	chip := `#executions tr[data-id="` + gold + `"] .tagchip`
	if text := get(t, bctx, "read the row's tag", chromedp.Text(chromedp.CSS(chip))); text != "plan=gold" {
		t.Fatalf("the row of %s shows tag %q, want plan=gold", gold, text)
	}
	run(t, bctx, "click the tag", chromedp.Click(chromedp.CSS(chip)),
		chromedp.WaitVisible(chromedp.CSS(`#where[value="tag:plan=gold"]`)))
	if n, g := count(t, bctx, `#executions tbody tr[data-id]`), count(t, bctx, `#executions tr[data-id="`+gold+`"]`); n != 1 || g != 1 {
		t.Fatalf("filtered by plan=gold, the list shows %d rows (%d of %s), want only %s", n, g, gold, gold)
	}
}
