package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A spec with no tick in the next five years is refused at create and update.
func TestScheduleThatNeverFiresIsRefused(t *testing.T) {
	ctx := context.Background()
	eng, _, _, script := scheduleFixture(t)
	_, err := eng.CreateSchedule(ctx, "feb30", script, ScheduleOptions{Cron: "0 0 30 2 *"})
	var in *InputError
	if !errors.As(err, &in) || !strings.Contains(err.Error(), "never fires") {
		t.Fatalf("create feb30: %v, want an InputError saying it never fires", err)
	}
	if _, err := eng.GetSchedule(ctx, "feb30"); err == nil {
		t.Fatal("the refused schedule was stored")
	}
	if _, err := eng.CreateSchedule(ctx, "ok", script, ScheduleOptions{Cron: "@daily"}); err != nil {
		t.Fatal(err)
	}
	bad := "0 0 31 4 *" // 31 April
	if _, err := eng.UpdateSchedule(ctx, "ok", ScheduleUpdate{Cron: &bad}); !errors.As(err, &in) {
		t.Fatalf("update to 31 April: %v, want an InputError", err)
	}
	if sc, _ := eng.GetSchedule(ctx, "ok"); sc.Spec != "@daily" {
		t.Fatalf("spec after the refused update: %q", sc.Spec)
	}
}

// A stored schedule whose next time cannot be computed is paused with the reason and
// never ticked; resuming it is refused while the spec stays bad.
func TestStoredScheduleThatNeverFiresIsPaused(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"0 0 30 2 *", "not a cron"} {
		t.Run(spec, func(t *testing.T) {
			eng, clock, st, script := scheduleFixture(t)
			if _, err := eng.CreateSchedule(ctx, "s", script, ScheduleOptions{Cron: "* * * * *"}); err != nil {
				t.Fatal(err)
			}
			// As a version without the check stored it: the spec, and next tick year 1.
			sc, err := st.GetSchedule(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			sc.Spec, sc.NextAt = spec, time.Time{}
			if err := st.UpdateSchedule(ctx, *sc, nil); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				clock.Advance(time.Minute)
				if err := eng.runSchedules(ctx, st); err != nil {
					t.Fatal(err)
				}
			}
			if got := outcomes(t, eng, "s"); got != "" {
				t.Fatalf("ticks recorded: %s", got)
			}
			sc, err = eng.GetSchedule(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			if !sc.Paused || sc.PausedReason == "" || !strings.Contains(sc.PausedReason, spec) {
				t.Fatalf("paused=%v reason=%q, want paused with a reason naming %q", sc.Paused, sc.PausedReason, spec)
			}
			if _, ok, err := st.NextScheduleAt(ctx); err != nil || ok {
				t.Fatalf("NextScheduleAt: ok=%v err=%v, want no unpaused schedule", ok, err)
			}
			if err := eng.ResumeSchedule(ctx, "s"); err == nil {
				t.Fatal("resumed a schedule that never fires")
			}
			good := "@hourly"
			if _, err := eng.UpdateSchedule(ctx, "s", ScheduleUpdate{Cron: &good}); err != nil {
				t.Fatal(err)
			}
			if err := eng.ResumeSchedule(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			if sc, _ := eng.GetSchedule(ctx, "s"); sc.Paused || sc.PausedReason != "" {
				t.Fatalf("after a fix and resume: paused=%v reason=%q", sc.Paused, sc.PausedReason)
			}
		})
	}
}
