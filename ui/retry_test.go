package ui_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// TestRetryAndCustomStatus: the page shows what set_status() recorded (escaped), and
// the retry action resumes a failed execution once its cause is fixed.
func TestRetryAndCustomStatus(t *testing.T) {
	f := newFixture(t, ui.Options{})
	src := `
def main(x):
    set_status({"phase": "charging", "note": "<script>alert(1)</script>"})
    return durable("flaky", x)
`
	if err := os.WriteFile(filepath.Join(f.dir, "phased.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	id := f.dispatch(t, "phased.star", []any{"r1"})
	f.waitStatus(t, id, backend.StatusFailed)
	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK)
	if !strings.Contains(page, `id="custom-status"`) || !strings.Contains(page, "&#34;phase&#34;: &#34;charging&#34;") ||
		strings.Contains(page, "<script>alert") {
		t.Fatalf("the custom status is missing or not escaped:\n%s", page)
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "/actions/retry") {
		t.Fatalf("the failed execution's page offers no retry:\n%s", page)
	}
	f.healthy.Store(true)
	res, err := c.PostForm(f.srv.URL+"/actions/retry", url.Values{"id": {id}, "csrf": {m[1]}, "confirmed": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry: %d, want 303", res.StatusCode)
	}
	ex := f.waitStatus(t, id, backend.StatusCompleted)
	if string(ex.Result) != `"ok r1"` {
		t.Fatalf("the retried execution returned %s", ex.Result)
	}
	if page := fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK); !strings.Contains(page, `class="prior o-failed"`) {
		t.Fatalf("the retried step does not show its failed run on the timeline")
	}
}

// A failed attempt that was retried shows on the timeline as a red bar of its own with
// its error as tooltip, and in the history with its attempt number and worker.
func TestFailedAttemptOnPage(t *testing.T) {
	f := newFixture(t, ui.Options{})
	id := f.dispatch(t, "bumpy.star", []any{"b1"})
	f.waitStatus(t, id, backend.StatusCompleted)
	page := fetch(t, newClient(t), f.srv.URL+"/executions/"+id, http.StatusOK)
	bar := regexp.MustCompile(`<rect class="prior o-failed" data-attempt="1"[^>]*><title>([^<]*)</title></rect>`).FindStringSubmatch(page)
	if bar == nil || !strings.Contains(bar[1], "attempt 1 failed") || !strings.Contains(bar[1], "first attempt refused for b1") {
		t.Fatalf("the timeline has no red bar for attempt 1 with its error:\n%s", page)
	}
	if !strings.Contains(page, `class="bar k-activity o-ok"`) || !strings.Contains(page, "attempt 2 after 1 failed") {
		t.Fatalf("the timeline has no bar for the successful attempt 2")
	}
	if !regexp.MustCompile(`<td>activity_attempt_failed</td><td class="mono">bumpy</td><td class="mono data"><span class="dim attempt-note">attempt 1 on [^<]+, ran [^<]+:</span> <span class="errmsg">first attempt refused for b1</span>`).MatchString(page) {
		t.Fatalf("the history lacks the failed attempt's row:\n%s", page)
	}
}
