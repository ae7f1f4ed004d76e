package ui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

var (
	rowID     = regexp.MustCompile(`<tr data-status="[a-z_]+"[^>]*>\s*(?:<td class="pick">[^\n]*</td>\s*)?<td class="mono"><a href="/executions/([^"]+)">`)
	olderLink = regexp.MustCompile(`href="\?([^"]*)" id="older"`)
	chipCount = regexp.MustCompile(`data-status="([a-z_]*)" href="[^"]*">[a-z ]+ <b>(\d+)</b>`)
)

// listed returns the IDs a list page shows, its counts per chip and the query of its
// "Older" link ("" on the last page).
func listed(t *testing.T, f *fixture, query string) (ids []string, counts map[string]string, older string) {
	t.Helper()
	body := fetch(t, newClient(t), f.srv.URL+"/?"+query, http.StatusOK)
	for _, m := range rowID.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	counts = map[string]string{}
	for _, m := range chipCount.FindAllStringSubmatch(body, -1) {
		counts[m[1]] = m[2]
	}
	if m := olderLink.FindStringSubmatch(body); m != nil {
		older = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return ids, counts, older
}

// TestListFilters: status chips count, and the script, ID prefix and time filters and
// the pages narrow the list as they say.
func TestListFilters(t *testing.T) {
	f := newFixture(t, ui.Options{PageSize: 3})
	for _, id := range []string{"order-1", "order-2", "order-3", "order-4"} {
		f.waitStatus(t, f.dispatch(t, "flow.star", []any{id}, stent.ID(id)), backend.StatusCompleted)
	}
	f.waitStatus(t, f.dispatch(t, "flaky.star", []any{"x"}, stent.ID("refund-1")), backend.StatusFailed)
	f.dispatch(t, "sleepy.star", nil, stent.ID("later-1"), stent.Delay(time.Hour))
	f.waitStatus(t, f.dispatch(t, "parent.star", nil, stent.ID("tree-1")), backend.StatusCompleted)

	ids, counts, older := listed(t, f, "")
	if strings.Join(ids, ",") != "tree-1,later-1,refund-1" || older == "" {
		t.Fatalf("first page: %v (older %q), want tree-1,later-1,refund-1 and a next page (children are not listed)", ids, older)
	}
	want := map[string]string{"": "7", "completed": "5", "failed": "1", "scheduled": "1", "running": "0"}
	for st, n := range want {
		if counts[st] != n {
			t.Errorf("chip %q counts %s, want %s (all: %v)", st, counts[st], n, counts)
		}
	}
	ids, _, older = listed(t, f, older)
	if strings.Join(ids, ",") != "order-4,order-3,order-2" || older == "" {
		t.Fatalf("second page: %v (older %q)", ids, older)
	}
	ids, _, older = listed(t, f, older)
	if strings.Join(ids, ",") != "order-1" || older != "" {
		t.Fatalf("last page: %v (older %q)", ids, older)
	}

	for q, want := range map[string]string{
		"status=failed":                                  "refund-1",
		"status=scheduled":                               "later-1",
		"id=order-&status=completed":                     "order-4,order-3,order-2",
		"script=" + url.QueryEscape(f.dir+"/flaky.star"): "refund-1",
		"since=2000-01-01T00:00&until=2001-01-01T00:00":  "",
		"until=" + time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04") + "&id=tree": "tree-1",
	} {
		ids, _, _ := listed(t, f, q)
		if got := strings.Join(ids, ","); got != want {
			t.Errorf("?%s lists %q, want %q", q, got, want)
		}
	}
	_, counts, _ = listed(t, f, "id=order-")
	if counts[""] != "4" || counts["completed"] != "4" {
		t.Errorf("with the order- prefix the chips count %v, want 4 completed", counts)
	}
	for _, q := range []string{"status=bogus", "since=yesterday", "after=not-a-cursor"} {
		fetch(t, newClient(t), f.srv.URL+"/?"+q, http.StatusBadRequest)
	}
}

// TestMountedUnderPrefix: a host mounts the view under a path; links stay under it.
func TestMountedUnderPrefix(t *testing.T) {
	f := newFixture(t, ui.Options{})
	id := f.dispatch(t, "flow.star", []any{"Ada"})
	f.waitStatus(t, id, backend.StatusCompleted)
	h, err := ui.Handler(f.eng, ui.Options{BasePath: "/ops/stent"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/stent/", http.StripPrefix("/ops/stent", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t)
	body := fetch(t, c, srv.URL+"/ops/stent/", http.StatusOK)
	for _, want := range []string{`href="/ops/stent/static/ui.css"`, `href="/ops/stent/executions/` + id + `"`, `data-base="/ops/stent/"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the mounted list page lacks %s", want)
		}
	}
	fetch(t, c, srv.URL+"/ops/stent/executions/"+id, http.StatusOK)
	fetch(t, c, srv.URL+"/ops/stent/static/ui.js", http.StatusOK)
}
