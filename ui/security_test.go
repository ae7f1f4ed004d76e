package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

const evil = `<script>alert("x")</script>`

// fetch GETs a page of the view and returns its body, failing unless it answers want.
func fetch(t *testing.T, c *http.Client, u string, want int) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d:\n%s", u, res.StatusCode, want, body)
	}
	return string(body)
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestEscapesScriptValues puts <script> in everything a script or activity produces
// (arguments, results, logs, errors, signal names and payloads, source, dead letters)
// and checks every page shows it as text.
func TestEscapesScriptValues(t *testing.T) {
	f := newFixture(t, ui.Options{})
	src := `# ` + evil + `
def main(x):
    print(x)
    r = durable("greet", x)
    wait_signal("go")
    return {x: r}
`
	if err := os.WriteFile(filepath.Join(f.dir, "evil.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	id := f.dispatch(t, "evil.star", []any{evil})
	f.waitHistory(t, id, backend.EventSignalWait, "go")
	must(t, f.eng.SignalJSON(context.Background(), id, evil, []byte(`"`+strings.ReplaceAll(evil, `"`, `\"`)+`"`)))
	failed := f.dispatch(t, "flaky.star", []any{evil})
	f.waitStatus(t, failed, backend.StatusFailed)
	c := newClient(t)
	pages := map[string]string{
		"list":         f.srv.URL + "/",
		"execution":    f.srv.URL + "/executions/" + id,
		"source":       f.srv.URL + "/executions/" + id + "/source",
		"failed":       f.srv.URL + "/executions/" + failed,
		"dead letters": f.srv.URL + "/dead-letters",
	}
	must(t, f.eng.SignalJSON(context.Background(), id, "go", nil))
	f.waitStatus(t, id, backend.StatusCompleted)
	pages["completed"] = f.srv.URL + "/executions/" + id
	// Pending signals are only listed while the execution waits: look before it ends.
	for name, u := range pages {
		body := fetch(t, c, u, http.StatusOK)
		if strings.Contains(body, "<script>alert") {
			t.Errorf("the %s page has an unescaped <script>:\n%s", name, body)
		}
	}
	for name, want := range map[string]string{
		"execution": "&lt;script&gt;alert", "source": "# &lt;script&gt;alert", "failed": "upstream unavailable for &lt;script&gt;alert",
		"dead letters": "&lt;script&gt;alert", "completed": "&lt;script&gt;alert",
	} {
		if body := fetch(t, c, pages[name], http.StatusOK); !strings.Contains(body, want) {
			t.Errorf("the %s page does not show %q as text", name, want)
		}
	}
}

// TestEscapesPendingSignalNames checks a pending signal named <script> is shown as text.
func TestEscapesPendingSignalNames(t *testing.T) {
	f := newFixture(t, ui.Options{})
	id := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, id, backend.EventTimerScheduled, "sleep")
	must(t, f.eng.SignalJSON(context.Background(), id, evil, []byte(`{"html": "<img src=x onerror=alert(1)>"}`)))
	body := fetch(t, newClient(t), f.srv.URL+"/executions/"+id, http.StatusOK)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("a pending signal's name or payload is not escaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Fatalf("the pending signal is not listed:\n%s", body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestActionsNeedCSRFToken: a POST without the page's token (or with another
// browser's) is refused and changes nothing; with it, the action asks for
// confirmation first, then acts.
func TestActionsNeedCSRFToken(t *testing.T) {
	f := newFixture(t, ui.Options{})
	id := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, id, backend.EventTimerScheduled, "sleep")
	cancelURL := f.srv.URL + "/actions/cancel"
	post := func(c *http.Client, form url.Values) *http.Response {
		t.Helper()
		res, err := c.PostForm(cancelURL, form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	running := func() {
		t.Helper()
		if ex, _ := f.eng.Get(context.Background(), id); ex.Status != backend.StatusRunning {
			t.Fatalf("execution is %s after a refused action, want running", ex.Status)
		}
	}

	// No token at all, from a client that never saw a page.
	if res := post(newClient(t), url.Values{"id": {id}, "confirmed": {"1"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel without a CSRF token: %d, want 403", res.StatusCode)
	}
	running()

	// A browser that saw the page, posting without the token, or with a forged one.
	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/executions/"+id, http.StatusOK)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the execution page has no CSRF token:\n%s", page)
	}
	for _, tok := range []string{"", strings.Repeat("0", 64)} {
		if res := post(c, url.Values{"id": {id}, "confirmed": {"1"}, "csrf": {tok}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("cancel with CSRF token %q: %d, want 403", tok, res.StatusCode)
		}
		running()
	}
	// Another browser's valid token is not this browser's.
	other := newClient(t)
	if res := post(other, url.Values{"id": {id}, "confirmed": {"1"}, "csrf": {m[1]}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel with another browser's token: %d, want 403", res.StatusCode)
	}
	running()

	// With the token but unconfirmed: a confirmation page, nothing done.
	if res := post(c, url.Values{"id": {id}, "csrf": {m[1]}}); res.StatusCode != http.StatusOK {
		t.Fatalf("unconfirmed cancel: %d, want 200 (the confirmation page)", res.StatusCode)
	}
	running()
	res := post(c, url.Values{"id": {id}, "csrf": {m[1]}, "confirmed": {"1"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirmed cancel with the token: %d, want 303", res.StatusCode)
	}
	f.waitStatus(t, id, backend.StatusCancelled)
}

// TestReadOnlyHidesAndRefusesActions: no action form is shown and a POST is refused.
func TestReadOnlyHidesAndRefusesActions(t *testing.T) {
	f := newFixture(t, ui.Options{ReadOnly: true})
	id := f.dispatch(t, "sleepy.star", nil)
	f.waitHistory(t, id, backend.EventTimerScheduled, "sleep")
	failed := f.dispatch(t, "flaky.star", []any{"x"})
	f.waitStatus(t, failed, backend.StatusFailed)
	c := newClient(t)
	for _, u := range []string{"/executions/" + id, "/dead-letters"} {
		if body := fetch(t, c, f.srv.URL+u, http.StatusOK); strings.Contains(body, "/actions/") {
			t.Fatalf("read-only %s shows an action:\n%s", u, body)
		}
	}
	page := fetch(t, c, f.srv.URL+"/", http.StatusOK)
	_ = page
	res, err := c.PostForm(f.srv.URL+"/actions/cancel", url.Values{"id": {id}, "confirmed": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only cancel: %d, want 403", res.StatusCode)
	}
	if ex, _ := f.eng.Get(context.Background(), id); ex.Status != backend.StatusRunning {
		t.Fatalf("read-only view cancelled the execution (%s)", ex.Status)
	}
}

// TestCredentials: with a user or a token configured, every request needs them.
func TestCredentials(t *testing.T) {
	f := newFixture(t, ui.Options{Username: "ops", Password: "s3cret", Token: "tok-123"})
	for _, tc := range []struct {
		name string
		set  func(r *http.Request)
		want int
	}{
		{"none", func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("ops", "nope") }, http.StatusUnauthorized},
		{"wrong token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"user and password", func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }, http.StatusOK},
		{"bearer token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok-123") }, http.StatusOK},
		{"token as password", func(r *http.Request) { r.SetBasicAuth("anyone", "tok-123") }, http.StatusOK},
	} {
		for _, path := range []string{"/", "/static/ui.css", "/live?list=1"} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
			tc.set(req)
			if path == "/live?list=1" && tc.want == http.StatusOK {
				continue // a stream: its status is checked through the others
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("%s, GET %s: %d, want %d", tc.name, path, res.StatusCode, tc.want)
			}
		}
	}
}

// TestCheckAddr: loopback is always allowed; any other address needs credentials.
func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		opts ui.Options
		ok   bool
	}{
		{"127.0.0.1:8233", ui.Options{}, true},
		{"localhost:8233", ui.Options{}, true},
		{"[::1]:8233", ui.Options{}, true},
		{"127.1.2.3:0", ui.Options{}, true},
		{"0.0.0.0:8233", ui.Options{}, false},
		{":8233", ui.Options{}, false},
		{"[::]:8233", ui.Options{}, false},
		{"10.1.2.3:8233", ui.Options{}, false},
		{"example.com:8233", ui.Options{}, false},
		{"0.0.0.0:8233", ui.Options{Username: "u", Password: "p"}, true},
		{"0.0.0.0:8233", ui.Options{Token: "t"}, true},
		{"8233", ui.Options{}, false},
	} {
		err := ui.CheckAddr(tc.addr, tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, user=%q token=%q) = %v, want ok=%v", tc.addr, tc.opts.Username, tc.opts.Token, err, tc.ok)
		}
		if err != nil && tc.addr != "8233" && !strings.Contains(err.Error(), "--auth user:pass or set STENT_UI_TOKEN") {
			t.Errorf("CheckAddr(%q) says %q: it should say what to do", tc.addr, err)
		}
	}
}
