package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// post sends form to path and returns the status and the body.
func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	res, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// TestBatchActions: three of four failed executions selected on the list page are
// retried (a running one selected with them is skipped, the fourth is untouched);
// "all matching the filter" cancels what a where filter selects; both need the CSRF
// token and a confirmation that gives the count.
func TestBatchActions(t *testing.T) {
	f := newFixture(t, ui.Options{CountTTL: -1})
	var failed []string
	for _, x := range []string{"a", "b", "c", "d"} {
		failed = append(failed, f.dispatch(t, "flaky.star", []any{x}))
	}
	running := f.dispatch(t, "sleepy.star", nil)
	for _, id := range failed {
		f.waitStatus(t, id, backend.StatusFailed)
	}
	f.waitHistory(t, running, backend.EventTimerScheduled, "sleep")
	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/", http.StatusOK)
	m := csrfField.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `id="batch"`) || !strings.Contains(page, `name="ids" value="`+failed[0]+`"`) {
		t.Fatalf("the list page offers no batch form with row checkboxes:\n%s", page)
	}
	picked := url.Values{"scope": {"selected"}, "ids": {failed[0], failed[1], failed[2], running}}
	form := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, vals := range picked {
			v[k] = vals
		}
		for k, vals := range extra {
			v[k] = vals
		}
		return v
	}
	status := func(id string) backend.Status {
		t.Helper()
		ex, err := f.eng.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return ex.Status
	}

	// Refused without the token; unconfirmed, a page giving the count.
	if code, _ := post(t, c, f.srv.URL+"/actions/batch-retry", form(url.Values{"confirmed": {"1"}})); code != http.StatusForbidden {
		t.Fatalf("batch retry without a CSRF token: %d, want 403", code)
	}
	code, body := post(t, c, f.srv.URL+"/actions/batch-retry", form(url.Values{"csrf": {m[1]}}))
	if code != http.StatusOK || !strings.Contains(body, "Retry 3 executions?") || !strings.Contains(body, "1 more execution") {
		t.Fatalf("unconfirmed batch retry: %d, want the confirmation of 3 (1 skipped):\n%s", code, body)
	}
	for _, id := range failed {
		if st := status(id); st != backend.StatusFailed {
			t.Fatalf("%s is %s before the batch was confirmed", id, st)
		}
	}

	f.healthy.Store(true)
	code, body = post(t, c, f.srv.URL+"/actions/batch-retry", form(url.Values{"csrf": {m[1]}, "confirmed": {"1"}}))
	if code != http.StatusOK || !strings.Contains(body, `data-done="3" data-skipped="1" data-failed="0"`) {
		t.Fatalf("batch retry: %d, want a summary of 3 retried, 1 skipped:\n%s", code, body)
	}
	for _, id := range failed[:3] {
		f.waitStatus(t, id, backend.StatusCompleted)
	}
	if st := status(failed[3]); st != backend.StatusFailed {
		t.Fatalf("the unselected %s is %s, want failed (untouched)", failed[3], st)
	}
	if st := status(running); st != backend.StatusRunning {
		t.Fatalf("the running execution selected with them is %s, want running (skipped)", st)
	}

	// All matching a where filter: cancel the running one only.
	all := url.Values{"scope": {"all"}, "where": {"status=running script=" + f.dir + "/sleepy.star"}, "csrf": {m[1]}}
	code, body = post(t, c, f.srv.URL+"/actions/batch-cancel", all)
	if code != http.StatusOK || !strings.Contains(body, "Cancel 1 execution?") {
		t.Fatalf("unconfirmed batch cancel of all matching: %d:\n%s", code, body)
	}
	all.Set("confirmed", "1")
	if code, body = post(t, c, f.srv.URL+"/actions/batch-cancel", all); code != http.StatusOK || !strings.Contains(body, `data-done="1"`) {
		t.Fatalf("batch cancel of all matching: %d:\n%s", code, body)
	}
	f.waitStatus(t, running, backend.StatusCancelled)
	if st := status(failed[3]); st != backend.StatusFailed {
		t.Fatalf("the batch cancel touched the failed %s (%s)", failed[3], st)
	}
	// A bad filter is a clear 400, acting on nothing.
	all.Set("where", "colour=red")
	if code, body = post(t, c, f.srv.URL+"/actions/batch-terminate", all); code != http.StatusBadRequest || !strings.Contains(body, "unknown key") {
		t.Fatalf("batch with a bad filter: %d, want 400:\n%s", code, body)
	}
}

// TestBatchReadOnly: a read-only view shows no batch form and refuses a batch POST.
func TestBatchReadOnly(t *testing.T) {
	f := newFixture(t, ui.Options{ReadOnly: true})
	id := f.dispatch(t, "flaky.star", []any{"x"})
	f.waitStatus(t, id, backend.StatusFailed)
	c := newClient(t)
	if page := fetch(t, c, f.srv.URL+"/", http.StatusOK); strings.Contains(page, "/actions/") || strings.Contains(page, `name="ids"`) {
		t.Fatalf("the read-only list shows batch actions:\n%s", page)
	}
	f.healthy.Store(true)
	code, _ := post(t, c, f.srv.URL+"/actions/batch-retry", url.Values{"scope": {"selected"}, "ids": {id}, "confirmed": {"1"}})
	if code != http.StatusForbidden {
		t.Fatalf("read-only batch retry: %d, want 403", code)
	}
	if ex, _ := f.eng.Get(context.Background(), id); ex.Status != backend.StatusFailed {
		t.Fatalf("the read-only view retried %s (%s)", id, ex.Status)
	}
}
