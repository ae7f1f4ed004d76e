package ui_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	if page := fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK); !strings.Contains(page, `class="prior"`) {
		t.Fatalf("the retried step does not show its failed run on the timeline")
	}
}
