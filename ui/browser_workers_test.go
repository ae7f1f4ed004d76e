package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// TestBrowserWorkerKilled: a real worker process on the same database shows on the
// workers page as live with its queue and activities; after its SIGKILL (no goodbye)
// it leaves the page, its work reclaimed at once.
func TestBrowserWorkerKilled(t *testing.T) {
	bctx := newBrowser(t)
	f := newFixture(t, ui.Options{DeadWorkerGrace: 3 * time.Second})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STENT_UI_TEST_WORKER="+filepath.Join(f.dir, "stent.db"), "STENT_UI_TEST_WORKER_ID=payments-7")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// A loaded machine may take a while to start the process: wait until it has
	// recorded itself, then open the page.
	rt := f.eng.Backend().(backend.Routing)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ws, err := rt.ListWorkers(context.Background(), time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ws, func(w backend.WorkerInfo) bool { return w.ID == "payments-7" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker process did not record itself within 2 minutes; workers: %+v", ws)
		}
		time.Sleep(50 * time.Millisecond)
	}
	row := `#workers tr[data-id="payments-7"]`
	run(t, bctx, "see the worker process live", chromedp.Navigate(f.srv.URL+"/workers"),
		chromedp.WaitVisible(chromedp.CSS(row+`[data-state="live"]`)))
	text := get(t, bctx, "read its row", chromedp.Text(chromedp.CSS(row)))
	for _, want := range []string{"payments", "charge"} {
		if !strings.Contains(text, want) {
			t.Errorf("the live worker's row %q does not name %q", text, want)
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	// On this host the engine serving the page sees the process gone (its pid no longer
	// exists) and forgets the worker at once, reclaiming its work without waiting for
	// the grace: the page's live updates drop the row. (A worker on another host is
	// shown stopped instead: TestBrowserOperations.)
	js := `(function () { const r = document.querySelector('` + row + `'); return r ? r.dataset.state + " | " + r.innerText : "gone"; })()`
	for deadline := time.Now().Add(2 * time.Minute); ; {
		st := get(t, bctx, "read its row", chromedp.Evaluate[string](js))
		if st == "gone" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 minutes after its SIGKILL the worker's row reads %q", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
