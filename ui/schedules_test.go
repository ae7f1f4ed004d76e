package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/ui"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// createSchedule creates a schedule of flow.star, failing the test on error.
func (f *fixture) createSchedule(t *testing.T, id, cron, tz string, paused bool) {
	t.Helper()
	_, err := f.eng.CreateSchedule(context.Background(), id, filepath.Join(f.dir, "flow.star"), stent.ScheduleOptions{
		Cron: cron, Timezone: tz, Args: json.RawMessage(`["` + id + `"]`), Paused: paused})
	if err != nil {
		t.Fatalf("creating schedule %s: %v", id, err)
	}
}

// ticks returns the recorded ticks of a schedule, newest first.
func (f *fixture) ticks(t *testing.T, id string) []backend.ScheduleTick {
	t.Helper()
	ts, err := f.eng.ScheduleTicks(context.Background(), id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// waitTicks waits until schedule id has recorded more than n ticks.
func (f *fixture) waitTicks(t *testing.T, id string, n int) []backend.ScheduleTick {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts := f.ticks(t, id)
		if len(ts) > n {
			return ts
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule %s has %d tick(s) after 30s, want more than %d", id, len(ts), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scheduleRow cuts the row of schedule id out of the schedules page.
func scheduleRow(t *testing.T, page, id string) string {
	t.Helper()
	i := strings.Index(page, `<tr data-id="`+id+`"`)
	if i < 0 {
		t.Fatalf("the schedules page has no row for %s:\n%s", id, page)
	}
	row := page[i:]
	if j := strings.Index(row[1:], `<tr data-id="`); j >= 0 {
		row = row[:j+1]
	}
	return row
}

// The schedules page shows each schedule's spec, zone, next fire times, last runs and
// state; pause, trigger now, resume and delete act, are recorded in the log, and need
// the CSRF token.
func TestSchedulesPage(t *testing.T) {
	logs := &syncBuffer{}
	f := newFixture(t, ui.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()
	f.createSchedule(t, "nightly", "30 3 * * *", "Europe/Paris", false)
	f.createSchedule(t, "every", "@every 1s", "", false)
	f.createSchedule(t, "control", "@every 1s", "", false)
	f.createSchedule(t, "stuck", "0 0 * * *", "", true)
	st := f.eng.Backend().(backend.Schedules)
	sc, err := st.GetSchedule(ctx, "stuck")
	must(t, err)
	sc.PausedReason = "no fire time: test reason <b>"
	must(t, st.UpdateSchedule(ctx, *sc, nil))
	f.waitTicks(t, "every", 0)

	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/schedules", http.StatusOK)
	nightly := scheduleRow(t, page, "nightly")
	if n := strings.Count(nightly, "<li>"); n != 5 || !regexp.MustCompile(`03:30:00 CES?T`).MatchString(nightly) ||
		!strings.Contains(nightly, "30 3 * * *") || !strings.Contains(nightly, "Europe/Paris") || !strings.Contains(nightly, ">skip<") {
		t.Fatalf("the nightly row shows %d fire times (want 5 at 03:30 Paris time), or lacks its spec, zone or overlap:\n%s", n, nightly)
	}
	every := scheduleRow(t, page, "every")
	if !strings.Contains(every, `data-paused="false"`) || !strings.Contains(every, `data-outcome="dispatched"`) ||
		!strings.Contains(every, `href="/executions/every@`) {
		t.Fatalf("the every-second row shows no active state or linked run:\n%s", every)
	}
	stuck := scheduleRow(t, page, "stuck")
	if !strings.Contains(stuck, `data-paused="true"`) || !strings.Contains(stuck, "no fire time: test reason &lt;b&gt;") {
		t.Fatalf("the stuck row shows no paused state with its reason:\n%s", stuck)
	}
	csrf := csrfField.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("the schedules page has no CSRF token")
	}
	post := func(action, id string, token string) *http.Response {
		t.Helper()
		res, err := c.PostForm(f.srv.URL+"/actions/"+action, url.Values{"schedule": {id}, "csrf": {token}, "confirmed": {"1"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}

	// Without the token nothing happens.
	if res := post("pause-schedule", "every", ""); res.StatusCode != http.StatusForbidden {
		t.Fatalf("pause without a CSRF token: %d, want 403", res.StatusCode)
	}
	// Pause: no tick is recorded from then on, while the control schedule goes on firing.
	if res := post("pause-schedule", "every", csrf[1]); res.StatusCode != http.StatusSeeOther ||
		res.Header.Get("Location") != "/schedules?done=pause-schedule" {
		t.Fatalf("pause: %d to %q, want 303 to /schedules?done=pause-schedule", res.StatusCode, res.Header.Get("Location"))
	}
	if sc, err := f.eng.GetSchedule(ctx, "every"); err != nil || !sc.Paused {
		t.Fatalf("after pause the schedule is %+v, %v; want paused", sc, err)
	}
	paused := len(f.ticks(t, "every"))
	f.waitTicks(t, "control", len(f.ticks(t, "control"))+1) // two more seconds of firing
	if n := len(f.ticks(t, "every")); n != paused {
		t.Fatalf("the paused schedule recorded %d more tick(s)", n-paused)
	}
	if !strings.Contains(logs.String(), "action=pause-schedule by=anonymous") || !strings.Contains(logs.String(), "schedule=every") {
		t.Fatalf("the pause was not logged:\n%s", logs)
	}
	page = fetch(t, c, f.srv.URL+"/schedules?done=pause-schedule", http.StatusOK)
	if row := scheduleRow(t, page, "every"); !strings.Contains(row, `data-paused="true"`) || !strings.Contains(row, "/actions/resume-schedule") {
		t.Fatalf("the paused schedule's row:\n%s", row)
	}

	// Trigger now starts one execution, also when paused.
	if res := post("trigger-schedule", "every", csrf[1]); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("trigger: %d, want 303", res.StatusCode)
	}
	ts := f.ticks(t, "every")
	if len(ts) != paused+1 || ts[0].Outcome != backend.TickTriggered || ts[0].ExecutionID == "" {
		t.Fatalf("after trigger the ticks are %+v, want one triggered tick more", ts)
	}
	f.waitStatus(t, ts[0].ExecutionID, backend.StatusCompleted)
	if !strings.Contains(logs.String(), "execution="+ts[0].ExecutionID) {
		t.Fatalf("the trigger was not logged with its execution:\n%s", logs)
	}

	// Resume, then delete.
	if res := post("resume-schedule", "every", csrf[1]); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("resume: %d, want 303", res.StatusCode)
	}
	if sc, err := f.eng.GetSchedule(ctx, "every"); err != nil || sc.Paused {
		t.Fatalf("after resume the schedule is %+v, %v; want active", sc, err)
	}
	if res := post("resume-schedule", "every", csrf[1]); res.StatusCode != http.StatusConflict {
		t.Fatalf("resuming an active schedule: %d, want 409", res.StatusCode)
	}
	if res := post("delete-schedule", "every", csrf[1]); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d, want 303", res.StatusCode)
	}
	if res := post("delete-schedule", "every", csrf[1]); res.StatusCode != http.StatusNotFound {
		t.Fatalf("deleting it again: %d, want 404", res.StatusCode)
	}
	if page := fetch(t, c, f.srv.URL+"/schedules", http.StatusOK); strings.Contains(page, `data-id="every"`) {
		t.Fatalf("the deleted schedule is still listed")
	}
}

// A read-only view lists schedules without their actions and refuses them.
func TestSchedulesReadOnly(t *testing.T) {
	f := newFixture(t, ui.Options{ReadOnly: true})
	f.createSchedule(t, "nightly", "30 3 * * *", "", true)
	c := newClient(t)
	page := fetch(t, c, f.srv.URL+"/schedules", http.StatusOK)
	if !strings.Contains(page, `data-id="nightly"`) || strings.Contains(page, "/actions/") {
		t.Fatalf("the read-only schedules page lacks the schedule or offers actions:\n%s", page)
	}
	res, err := c.PostForm(f.srv.URL+"/actions/trigger-schedule", url.Values{"schedule": {"nightly"}, "confirmed": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || len(f.ticks(t, "nightly")) != 0 {
		t.Fatalf("a read-only trigger: %d, want 403 and no tick", res.StatusCode)
	}
}
