package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// scheduleTests check the optional backend.Schedules extension.
var scheduleTests = []test{
	{"CreateGetListUpdateDelete", testScheduleCRUD},
	{"ClaimAdvance", testScheduleClaimAdvance},
	{"TriggerAndTicks", testScheduleTrigger},
	{"Pause", testSchedulePause},
}

func (e *env) scheduleStore() backend.Schedules { return required[backend.Schedules](e) }

func newSchedule(id string, next time.Time) backend.Schedule {
	return backend.Schedule{ID: id, Spec: "@every 1m", Timezone: "UTC", Overlap: backend.OverlapSkip,
		Catchup: time.Minute, Jitter: time.Second, Entry: "main", Args: json.RawMessage(`[1]`), Queue: "q",
		Bundle: backend.Bundle{Main: "main.star", Files: map[string]string{"main.star": mainHash}}, NextAt: next}
}

func testScheduleCRUD(t *testing.T, e *env) {
	st := e.scheduleStore()
	sc := newSchedule("s1", Epoch.Add(time.Minute))
	created, err := st.CreateSchedule(e.ctx, sc, map[string][]byte{mainHash: []byte(mainSource)})
	if err != nil || !created {
		t.Fatalf("CreateSchedule = %v, %v; want created", created, err)
	}
	if created, err = st.CreateSchedule(e.ctx, sc, nil); err != nil || created {
		t.Fatalf("CreateSchedule of an existing ID = %v, %v; want false, nil", created, err)
	}
	if src, err := e.b.GetScript(e.ctx, mainHash); err != nil || string(src) != mainSource {
		t.Fatalf("GetScript after CreateSchedule = %q, %v; want the pinned source", src, err)
	}
	got, err := st.GetSchedule(e.ctx, "s1")
	if err != nil {
		t.Fatalf("GetSchedule: %v", err)
	}
	if got.Spec != sc.Spec || got.Overlap != sc.Overlap || got.Catchup != sc.Catchup || got.Jitter != sc.Jitter ||
		got.Queue != "q" || got.Entry != "main" || string(got.Args) != `[1]` || got.Bundle.Main != "main.star" ||
		!got.NextAt.Equal(sc.NextAt) || got.Paused || got.BufferedAt != nil || !got.CreatedAt.Equal(Epoch) {
		t.Fatalf("GetSchedule = %+v, want %+v", got, sc)
	}
	_, err = st.GetSchedule(e.ctx, "nope")
	wantErrIs(t, "GetSchedule(unknown)", err, backend.ErrNotFound)
	st.CreateSchedule(e.ctx, newSchedule("s0", Epoch), nil)
	list, err := st.ListSchedules(e.ctx)
	if err != nil || len(list) != 2 || list[0].ID != "s0" || list[1].ID != "s1" {
		t.Fatalf("ListSchedules = %+v, %v; want s0, s1", list, err)
	}
	sc.Spec, sc.Paused, sc.NextAt = "0 * * * *", true, Epoch.Add(time.Hour)
	if err := st.UpdateSchedule(e.ctx, sc, nil); err != nil {
		t.Fatalf("UpdateSchedule: %v", err)
	}
	if got, _ = st.GetSchedule(e.ctx, "s1"); got.Spec != "0 * * * *" || !got.Paused || !got.NextAt.Equal(sc.NextAt) {
		t.Fatalf("after UpdateSchedule: %+v", got)
	}
	wantErrIs(t, "UpdateSchedule(unknown)", st.UpdateSchedule(e.ctx, newSchedule("nope", Epoch), nil), backend.ErrNotFound)
	if err := st.DeleteSchedule(e.ctx, "s1"); err != nil {
		t.Fatalf("DeleteSchedule: %v", err)
	}
	wantErrIs(t, "DeleteSchedule again", st.DeleteSchedule(e.ctx, "s1"), backend.ErrNotFound)
	if at, ok, err := st.NextScheduleAt(e.ctx); err != nil || !ok || !at.Equal(Epoch) {
		t.Fatalf("NextScheduleAt = %v, %v, %v; want s0's", at, ok, err)
	}
}

func testScheduleClaimAdvance(t *testing.T, e *env) {
	st := e.scheduleStore()
	st.CreateSchedule(e.ctx, newSchedule("due", Epoch), map[string][]byte{mainHash: []byte(mainSource)})
	st.CreateSchedule(e.ctx, newSchedule("later", Epoch.Add(time.Hour)), nil)
	paused := newSchedule("paused", Epoch)
	paused.Paused = true
	st.CreateSchedule(e.ctx, paused, nil)
	claimed, err := st.ClaimDueSchedules(e.ctx, 10, time.Minute)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "due" {
		t.Fatalf("ClaimDueSchedules = %+v, %v; want only due", claimed, err)
	}
	if again, _ := st.ClaimDueSchedules(e.ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("ClaimDueSchedules while leased = %+v, want none", again)
	}
	c := claimed[0]
	ne := backend.NewExecution{ID: "due@tick", Bundle: c.Bundle, Entry: "main", Args: c.Args, Queue: "q"}
	buffered := Epoch.Add(30 * time.Second)
	adv := backend.ScheduleAdvance{ID: "due", LeaseUntil: c.LeaseUntil, NextAt: Epoch.Add(time.Minute),
		BufferedAt: &buffered, LastExecutionID: ne.ID, Executions: []backend.NewExecution{ne},
		Ticks: []backend.ScheduleTick{{TickAt: Epoch, Outcome: backend.TickDispatched, ExecutionID: ne.ID}}}
	stale := adv
	stale.LeaseUntil = c.LeaseUntil.Add(-time.Millisecond)
	wantErrIs(t, "AdvanceSchedule with a stale lease", st.AdvanceSchedule(e.ctx, stale), backend.ErrLeaseLost)
	if err := st.AdvanceSchedule(e.ctx, adv); err != nil {
		t.Fatalf("AdvanceSchedule: %v", err)
	}
	wantErrIs(t, "AdvanceSchedule twice", st.AdvanceSchedule(e.ctx, adv), backend.ErrLeaseLost)
	x := e.get("due@tick")
	if x.Queue != "q" || string(x.Args) != "[1]" {
		t.Fatalf("tick execution = %+v", x)
	}
	wf := e.claimOne(backend.TaskWorkflow, "due@tick")
	got, _ := st.GetSchedule(e.ctx, "due")
	if !got.NextAt.Equal(adv.NextAt) || got.BufferedAt == nil || !got.BufferedAt.Equal(buffered) || got.LastExecutionID != ne.ID {
		t.Fatalf("after AdvanceSchedule: %+v", got)
	}
	// A buffered tick makes the schedule claimable before its NextAt once the last
	// execution ended; an update drops the lease, so the claimer's advance writes nothing.
	if claimed, _ = st.ClaimDueSchedules(e.ctx, 10, time.Minute); len(claimed) != 0 {
		t.Fatalf("ClaimDueSchedules with a buffered tick while the last execution runs = %+v, want none", claimed)
	}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "due@tick",
		Finish: &backend.Finish{Status: backend.StatusCompleted}})
	claimed, _ = st.ClaimDueSchedules(e.ctx, 10, time.Minute)
	if len(claimed) != 1 || claimed[0].ID != "due" {
		t.Fatalf("ClaimDueSchedules with a buffered tick = %+v, want due", claimed)
	}
	if err := st.UpdateSchedule(e.ctx, *got, nil); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, "AdvanceSchedule after an update", st.AdvanceSchedule(e.ctx, backend.ScheduleAdvance{ID: "due",
		LeaseUntil: claimed[0].LeaseUntil, NextAt: Epoch.Add(time.Hour)}), backend.ErrLeaseLost)
	// An execution ID that exists is left alone.
	claimed, _ = st.ClaimDueSchedules(e.ctx, 10, time.Minute)
	if err := st.AdvanceSchedule(e.ctx, backend.ScheduleAdvance{ID: "due", LeaseUntil: claimed[0].LeaseUntil,
		NextAt: Epoch.Add(time.Minute), Executions: []backend.NewExecution{ne}}); err != nil {
		t.Fatalf("AdvanceSchedule with an existing execution ID: %v", err)
	}
	e.wantKinds("due@tick", backend.EventStarted, backend.EventCompleted) // not started again
}

func testScheduleTrigger(t *testing.T, e *env) {
	st := e.scheduleStore()
	st.CreateSchedule(e.ctx, newSchedule("s", Epoch.Add(time.Hour)), nil)
	for i, outcome := range []string{backend.TickSkippedMissed, backend.TickTriggered} {
		id := ""
		var execs []backend.NewExecution
		if outcome == backend.TickTriggered {
			id = "s@now"
			execs = []backend.NewExecution{{ID: id, Bundle: backend.Bundle{Main: "main.star"}, Entry: "main"}}
		}
		e.clock.Advance(time.Second)
		if err := st.AdvanceSchedule(e.ctx, backend.ScheduleAdvance{ID: "s", Trigger: true, LastExecutionID: id,
			Executions: execs, Ticks: []backend.ScheduleTick{{TickAt: Epoch.Add(time.Duration(i) * time.Minute), Outcome: outcome, ExecutionID: id}}}); err != nil {
			t.Fatalf("AdvanceSchedule(Trigger): %v", err)
		}
	}
	ticks, err := st.ScheduleTicks(e.ctx, "s", 10)
	if err != nil || len(ticks) != 2 || ticks[0].Outcome != backend.TickTriggered || ticks[0].ExecutionID != "s@now" ||
		!ticks[0].At.Equal(Epoch.Add(2*time.Second)) || ticks[1].Outcome != backend.TickSkippedMissed || !ticks[1].TickAt.Equal(Epoch) {
		t.Fatalf("ScheduleTicks = %+v, %v; want triggered then skipped_missed, newest first", ticks, err)
	}
	got, _ := st.GetSchedule(e.ctx, "s")
	if got.LastExecutionID != "s@now" || !got.NextAt.Equal(Epoch.Add(time.Hour)) {
		t.Fatalf("after a trigger: %+v (NextAt kept, LastExecutionID set)", got)
	}
	if err := st.DeleteSchedule(e.ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if ticks, _ := st.ScheduleTicks(e.ctx, "s", 10); len(ticks) != 0 {
		t.Fatalf("ScheduleTicks after delete = %+v", ticks)
	}
}

// testSchedulePause: an advance with Pause pauses the schedule with its reason (no
// longer claimed nor counted by NextScheduleAt); an update clears the reason.
func testSchedulePause(t *testing.T, e *env) {
	st := e.scheduleStore()
	st.CreateSchedule(e.ctx, newSchedule("bad", Epoch), nil)
	claimed, err := st.ClaimDueSchedules(e.ctx, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimDueSchedules = %+v, %v; want bad", claimed, err)
	}
	if err := st.AdvanceSchedule(e.ctx, backend.ScheduleAdvance{ID: "bad", LeaseUntil: claimed[0].LeaseUntil,
		NextAt: Epoch, Pause: "never fires"}); err != nil {
		t.Fatalf("AdvanceSchedule with Pause: %v", err)
	}
	got, err := st.GetSchedule(e.ctx, "bad")
	if err != nil || !got.Paused || got.PausedReason != "never fires" {
		t.Fatalf("after a pausing advance: %+v, %v; want paused with the reason", got, err)
	}
	if again, _ := st.ClaimDueSchedules(e.ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("ClaimDueSchedules of a paused schedule = %+v, want none", again)
	}
	if _, ok, err := st.NextScheduleAt(e.ctx); err != nil || ok {
		t.Fatalf("NextScheduleAt = %v, %v; want none", ok, err)
	}
	got.Paused, got.PausedReason = false, ""
	if err := st.UpdateSchedule(e.ctx, *got, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ = st.GetSchedule(e.ctx, "bad"); got.Paused || got.PausedReason != "" {
		t.Fatalf("after UpdateSchedule: %+v", got)
	}
}
