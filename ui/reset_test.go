package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// TestResetFromStep: a step of an ended execution's history offers "reset from here";
// confirmed, it starts ID-r1 on the pinned script, linked both ways, and redirects to
// it. A running execution is refused with a clear message.
func TestResetFromStep(t *testing.T) {
	f := newFixture(t, ui.Options{})
	id := f.dispatch(t, "flow.star", []any{"Ada"})
	f.waitStatus(t, id, backend.StatusCompleted)
	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK)
	m := csrfField.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `/actions/reset`) || !strings.Contains(page, `name="step" value="3"`) {
		t.Fatalf("the ended execution's history offers no reset from step 3:\n%s", page)
	}
	form := url.Values{"id": {id}, "step": {"3"}, "csrf": {m[1]}}
	if code, body := post(t, c, f.srv.URL+"/actions/reset", form); code != http.StatusOK || !strings.Contains(body, "from step #3?") {
		t.Fatalf("unconfirmed reset: %d, want its confirmation:\n%s", code, body)
	}
	form.Set("confirmed", "1")
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noFollow.PostForm(f.srv.URL+"/actions/reset", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	newID := id + "-r1"
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/executions/"+newID+"?done=reset" {
		t.Fatalf("reset: %d to %q, want 303 to the new execution %s", res.StatusCode, res.Header.Get("Location"), newID)
	}
	ex := f.waitStatus(t, newID, backend.StatusCompleted)
	if string(ex.Result) != `["Hello, Ada","Hello, Ada!"]` {
		t.Fatalf("the reset execution returned %s", ex.Result)
	}
	from, into, err := f.eng.ResetLinks(context.Background(), id)
	if err != nil || from != nil || len(into) != 1 || into[0].ID != newID || into[0].Step != 3 {
		t.Fatalf("the old execution's reset links: %+v %+v %v; want into %s at step 3", from, into, err, newID)
	}
	page = fetch(t, c, f.srv.URL+"/executions/"+newID+"?done=reset", http.StatusOK)
	if !strings.Contains(page, `id="reset-from"`) || !strings.Contains(page, `href="/executions/`+id+`"`) || !strings.Contains(page, "Reset: this execution") {
		t.Fatalf("the new execution's page does not link the one it runs again:\n%s", page)
	}
	if page = fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK); !strings.Contains(page, `id="reset-into"`) || !strings.Contains(page, `href="/executions/`+newID+`"`) {
		t.Fatalf("the old execution's page does not link its reset:\n%s", page)
	}

	// Not ended yet: no reset offered, and a POST is refused saying why.
	running := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, running, backend.EventTimerScheduled, "sleep")
	if page := fetch(t, c, f.srv.URL+"/executions/"+running, http.StatusOK); strings.Contains(page, "/actions/reset") {
		t.Fatalf("a running execution offers a reset")
	}
	code, body := post(t, c, f.srv.URL+"/actions/reset", url.Values{"id": {running}, "step": {"1"}, "csrf": {m[1]}, "confirmed": {"1"}})
	if code != http.StatusConflict || !strings.Contains(body, "only an ended execution can be reset") {
		t.Fatalf("reset of a running execution: %d, want 409 saying why:\n%s", code, body)
	}
	if code, _ := post(t, c, f.srv.URL+"/actions/reset", url.Values{"id": {id}, "step": {"2"}, "confirmed": {"1"}}); code != http.StatusForbidden {
		t.Fatalf("reset without a CSRF token: %d, want 403", code)
	}
}
