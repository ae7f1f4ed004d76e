package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
)

// scheduleFixture is an engine on a fake clock with no worker: the test runs the
// scheduler's passes itself.
func scheduleFixture(t *testing.T) (*Engine, *backendtest.FakeClock, backend.Schedules, string) {
	t.Helper()
	clock := backendtest.NewFakeClock(time.Date(2026, 11, 27, 6, 0, 30, 0, time.UTC))
	dir := t.TempDir()
	eng, err := Open(context.Background(), filepath.Join(dir, "stent.db"), WithClock(clock),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &fixture{eng: eng, dir: dir}
	return eng, clock, eng.b.(backend.Schedules), f.script(t, "def main(x):\n    return x\n")
}

// outcomes lists "HH:MM outcome" of the schedule's ticks, oldest first.
func outcomes(t *testing.T, eng *Engine, id string) string {
	t.Helper()
	ticks, err := eng.ScheduleTicks(context.Background(), id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(ticks) - 1; i >= 0; i-- {
		out = append(out, ticks[i].TickAt.Format("15:04")+" "+ticks[i].Outcome)
	}
	return strings.Join(out, ", ")
}

func TestScheduleOverlapAndCatchup(t *testing.T) {
	ctx := context.Background()
	t.Run("skip", func(t *testing.T) {
		eng, clock, st, script := scheduleFixture(t)
		if _, err := eng.CreateSchedule(ctx, "s", script, ScheduleOptions{Cron: "* * * * *", Args: []byte(`[1]`)}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			clock.Advance(time.Minute)
			if err := eng.runSchedules(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing runs the first execution, so the next two overlap it.
		if got, want := outcomes(t, eng, "s"), "06:01 dispatched, 06:02 skipped_overlap, 06:03 skipped_overlap"; got != want {
			t.Fatalf("ticks: %s, want %s", got, want)
		}
		if _, err := eng.Get(ctx, "s@2026-11-27T06:01:00Z"); err != nil {
			t.Fatalf("the tick's execution: %v", err)
		}
	})
	t.Run("buffer_one", func(t *testing.T) {
		eng, clock, st, script := scheduleFixture(t)
		if _, err := eng.CreateSchedule(ctx, "b", script, ScheduleOptions{Cron: "* * * * *", Overlap: backend.OverlapBufferOne}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			clock.Advance(time.Minute)
			eng.runSchedules(ctx, st)
		}
		if err := eng.Cancel(ctx, "b@2026-11-27T06:01:00Z"); err != nil {
			t.Fatal(err)
		}
		eng.runSchedules(ctx, st)
		if got, want := outcomes(t, eng, "b"), "06:01 dispatched, 06:02 buffered, 06:03 skipped_overlap, 06:02 dispatched"; got != want {
			t.Fatalf("ticks: %s, want %s", got, want)
		}
		if s, _ := eng.GetSchedule(ctx, "b"); s.BufferedAt != nil || s.LastExecutionID != "b@2026-11-27T06:02:00Z" {
			t.Fatalf("schedule after the buffered tick ran: %+v", s)
		}
	})
	t.Run("catchup", func(t *testing.T) {
		eng, clock, st, script := scheduleFixture(t)
		if _, err := eng.CreateSchedule(ctx, "c", script, ScheduleOptions{Cron: "* * * * *", Overlap: backend.OverlapAllow,
			Catchup: 3 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		// Everything was down from 06:00:30 to 06:06:30: ticks 06:01 to 06:03 are more
		// than 3m (+1s) late, 06:04 to 06:06 start late.
		clock.Advance(6 * time.Minute)
		eng.runSchedules(ctx, st)
		want := "06:01 skipped_missed, 06:02 skipped_missed, 06:03 skipped_missed, 06:04 dispatched, 06:05 dispatched, 06:06 dispatched"
		if got := outcomes(t, eng, "c"); got != want {
			t.Fatalf("ticks: %s, want %s", got, want)
		}
		// Paused ticks are not caught up; a trigger runs at once.
		if err := eng.PauseSchedule(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Minute)
		eng.runSchedules(ctx, st)
		if err := eng.ResumeSchedule(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		eng.runSchedules(ctx, st)
		id, err := eng.TriggerSchedule(ctx, "c")
		if err != nil || id != "c@2026-11-27T06:16:30Z" {
			t.Fatalf("TriggerSchedule = %q, %v", id, err)
		}
		if got := outcomes(t, eng, "c"); got != want+", 06:16 triggered" {
			t.Fatalf("ticks after pause, resume and trigger: %s", got)
		}
		if s, _ := eng.GetSchedule(ctx, "c"); !s.NextAt.Equal(time.Date(2026, 11, 27, 6, 17, 0, 0, time.UTC)) {
			t.Fatalf("NextAt after resume = %s, want 06:17", s.NextAt)
		}
	})
	t.Run("timezone", func(t *testing.T) {
		eng, _, _, script := scheduleFixture(t)
		s, err := eng.CreateSchedule(ctx, "tz", script, ScheduleOptions{Cron: "0 9 * * *", Timezone: "Europe/Paris"})
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC); !s.NextAt.Equal(want) {
			t.Fatalf("NextAt = %s, want %s (09:00 in Paris)", s.NextAt, want)
		}
	})
}
