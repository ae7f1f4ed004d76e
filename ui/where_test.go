package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// TestWhereFilter: the list page's where box takes the CLI's --where language and
// narrows the rows and the counts; the execution page shows the tags, linked to it.
func TestWhereFilter(t *testing.T) {
	f := newFixture(t, ui.Options{CountTTL: -1})
	tag := func(v string) stent.DispatchOption { return stent.WithTags(map[string]string{"customer": v}) }
	want := f.dispatch(t, "flaky.star", []any{"a"}, tag("42"))
	other := f.dispatch(t, "flaky.star", []any{"b"}, tag("7"))
	done := f.dispatch(t, "flow.star", []any{"c"}, tag("42"))
	f.waitStatus(t, want, backend.StatusFailed)
	f.waitStatus(t, other, backend.StatusFailed)
	f.waitStatus(t, done, backend.StatusCompleted)
	c := newClient(t)
	list := func(where string, code int) string {
		t.Helper()
		return fetch(t, c, f.srv.URL+"/?"+url.Values{"where": {where}}.Encode(), code)
	}

	page := list("status=failed tag:customer=42", http.StatusOK)
	if !strings.Contains(page, `href="/executions/`+want+`"`) || strings.Contains(page, `href="/executions/`+other+`"`) ||
		strings.Contains(page, `href="/executions/`+done+`"`) {
		t.Fatalf("status=failed tag:customer=42 does not list only %s:\n%s", want, page)
	}
	if !strings.Contains(page, `value="status=failed tag:customer=42"`) {
		t.Fatalf("the where box does not keep the filter")
	}
	// Its status is the active chip, and a chip replaces it (keeping the tag term).
	if !regexp.MustCompile(`class="chip active st-failed" data-status="failed"`).MatchString(page) ||
		!strings.Contains(page, `href="?status=completed&amp;where=tag%3Acustomer%3D42"`) {
		t.Fatalf("the chips do not follow the where filter's status:\n%s", page)
	}
	if page := fetch(t, c, f.srv.URL+"/?status=completed&where=tag%3Acustomer%3D42", http.StatusOK); !strings.Contains(page, `href="/executions/`+done+`"`) ||
		strings.Contains(page, `href="/executions/`+want+`"`) {
		t.Fatalf("the completed chip of tag:customer=42 does not list only %s:\n%s", done, page)
	}
	// The counts are those of the filter: one failed, nothing else.
	page = list("tag:customer=42", http.StatusOK)
	for _, chip := range []string{`data-status=""[^>]*>all <b>2</b>`, `data-status="failed"[^>]*>failed <b>1</b>`, `data-status="completed"[^>]*>completed <b>1</b>`} {
		if !regexp.MustCompile(chip).MatchString(page) {
			t.Fatalf("tag:customer=42: no chip %s:\n%s", chip, page)
		}
	}
	if strings.Contains(page, `href="/executions/`+other+`"`) {
		t.Fatalf("tag:customer=42 lists %s (customer 7)", other)
	}
	// A mistake is a clear 400, in the CLI's words.
	for expr, msg := range map[string]string{"colour=red": "unknown key", "status=burnt": "status wants one of", "tag:": "tag"} {
		if page := list(expr, http.StatusBadRequest); !strings.Contains(page, msg) {
			t.Fatalf("where %q: the error page does not say %q:\n%s", expr, msg, page)
		}
	}
	// The execution page shows its tags, each linking to the list filtered by it.
	page = fetch(t, c, f.srv.URL+"/executions/"+want, http.StatusOK)
	if !strings.Contains(page, `id="tags"`) || !strings.Contains(page, `href="/?where=tag%3Acustomer%3D42"`) {
		t.Fatalf("the execution page does not show its tag customer=42:\n%s", page)
	}
}
