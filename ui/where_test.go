package ui_test

import (
	"html"
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

// TestListTagChips: each row of the list shows its execution's tags as chips, in key
// order; a chip narrows the page's filter to its tag (replacing a term of the same tag,
// keeping the others) and the narrowed list shows only the executions that have it.
func TestListTagChips(t *testing.T) {
	f := newFixture(t, ui.Options{CountTTL: -1})
	tags := func(kv ...string) stent.DispatchOption {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return stent.WithTags(m)
	}
	gold := f.dispatch(t, "flaky.star", []any{"a"}, tags("plan", "gold", "customer", "42"))
	silver := f.dispatch(t, "flaky.star", []any{"b"}, tags("plan", "silver plus", "customer", "42"))
	plain := f.dispatch(t, "flow.star", []any{"c"})
	f.waitStatus(t, gold, backend.StatusFailed)
	f.waitStatus(t, silver, backend.StatusFailed)
	f.waitStatus(t, plain, backend.StatusCompleted)
	c := newClient(t)

	page := fetch(t, c, f.srv.URL+"/?status=failed", http.StatusOK)
	rowTags := regexp.MustCompile(`<tr data-status="[a-z_]+" data-id="([^"]+)">[\s\S]*?</tr>`)
	chip := regexp.MustCompile(`<a class="tagchip mono" href="([^"]*)" title="filter by this tag">([^<]*)</a>`)
	got := map[string][]string{}
	hrefs := map[string]string{}
	for _, row := range rowTags.FindAllStringSubmatch(page, -1) {
		for _, m := range chip.FindAllStringSubmatch(row[0], -1) {
			got[row[1]] = append(got[row[1]], m[2])
			hrefs[m[2]] = html.UnescapeString(m[1])
		}
	}
	if strings.Join(got[gold], " ") != "customer=42 plan=gold" || strings.Join(got[silver], " ") != "customer=42 plan=silver plus" {
		t.Fatalf("row tags %v, want customer=42 plan=gold on %s and customer=42 plan=silver plus on %s:\n%s", got, gold, silver, page)
	}
	// The chip keeps status=failed and adds its tag, quoted when it holds a space.
	href := hrefs["plan=silver plus"]
	q, err := url.ParseQuery(strings.TrimPrefix(href, "?"))
	if err != nil || q.Get("status") != "failed" || q.Get("where") != `tag:plan="silver plus"` {
		t.Fatalf("chip plan=silver plus links to %q, want status=failed and where tag:plan=\"silver plus\"", href)
	}
	page = fetch(t, c, f.srv.URL+"/"+href, http.StatusOK)
	if !strings.Contains(page, `href="/executions/`+silver+`"`) || strings.Contains(page, `href="/executions/`+gold+`"`) {
		t.Fatalf("the chip plan=silver plus does not list only %s:\n%s", silver, page)
	}
	// On a list filtered by another plan, the chip replaces that term.
	page = fetch(t, c, f.srv.URL+"/?"+url.Values{"where": {"tag:plan=gold tag:customer=42"}}.Encode(), http.StatusOK)
	m := regexp.MustCompile(`href="([^"]*)" title="filter by this tag">customer=42<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no customer=42 chip on the list of tag:plan=gold:\n%s", page)
	}
	if q, _ := url.ParseQuery(strings.TrimPrefix(html.UnescapeString(m[1]), "?")); q.Get("where") != "tag:plan=gold tag:customer=42" {
		t.Fatalf("chip customer=42 on tag:plan=gold links to where %q, want the filter unchanged", q.Get("where"))
	}
	if strings.Contains(page, `data-id="`+plain+`"`) {
		t.Fatalf("an execution without tags is listed by tag")
	}
}

// TestListCountsStopAtCountAtMost: a status with more executions than CountAtMost
// shows "N+" on its chip (and the total with it); the others show their count.
func TestListCountsStopAtCountAtMost(t *testing.T) {
	f := newFixture(t, ui.Options{CountTTL: -1, CountAtMost: 2})
	var ids []string
	for _, arg := range []string{"a", "b", "c"} {
		ids = append(ids, f.dispatch(t, "flaky.star", []any{arg}))
	}
	done := f.dispatch(t, "flow.star", []any{"d"})
	for _, id := range ids {
		f.waitStatus(t, id, backend.StatusFailed)
	}
	f.waitStatus(t, done, backend.StatusCompleted)
	page := fetch(t, newClient(t), f.srv.URL+"/", http.StatusOK)
	for _, chip := range []string{`data-status=""[^>]*>all <b>3\+</b>`, `data-status="failed"[^>]*>failed <b>2\+</b>`, `data-status="completed"[^>]*>completed <b>1</b>`} {
		if !regexp.MustCompile(chip).MatchString(page) {
			t.Fatalf("no chip %s:\n%s", chip, page)
		}
	}
}
