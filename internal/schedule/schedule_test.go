package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/errs"
)

func TestParseRejectsBadInputAsInputError(t *testing.T) {
	for _, tc := range []struct{ spec, tz string }{
		{"* * *", ""},
		{"@every 1m", "Mars/Olympus"},
	} {
		_, err := Parse(tc.spec, tc.tz)
		var ie *errs.InputError
		if !errors.As(err, &ie) {
			t.Errorf("Parse(%q, %q) = %v; want an InputError", tc.spec, tc.tz, err)
		}
	}
}

func TestNextFollowsTheZone(t *testing.T) {
	c, err := Parse("0 9 * * *", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC); !got.Equal(want) { // CEST is UTC+2
		t.Fatalf("Next = %s, want %s", got, want)
	}
}

// Plan: ticks older than the catch-up window are skipped as missed; with skip, the
// first due tick starts and the ones after it are skipped as overlapping; with
// buffer_one one of them is kept for when the running execution ends.
func TestPlanDecidesEachDueTick(t *testing.T) {
	c, err := Parse("@every 1m", "")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0.Add(3*time.Minute + 30*time.Second)
	for _, tc := range []struct {
		overlap string
		running bool
		want    []string
	}{
		{backend.OverlapSkip, false, []string{backend.TickSkippedMissed, backend.TickSkippedMissed, backend.TickDispatched, backend.TickSkippedOverlap}},
		{backend.OverlapBufferOne, true, []string{backend.TickSkippedMissed, backend.TickSkippedMissed, backend.TickBuffered, backend.TickSkippedOverlap}},
		{backend.OverlapAllow, true, []string{backend.TickSkippedMissed, backend.TickSkippedMissed, backend.TickDispatched, backend.TickDispatched}},
	} {
		sc := backend.ClaimedSchedule{Schedule: backend.Schedule{ID: "s", NextAt: t0, Catchup: 90 * time.Second, Overlap: tc.overlap}}
		adv := Plan(&sc, c, now, tc.running)
		var got []string
		for _, tk := range adv.Ticks {
			got = append(got, tk.Outcome)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: outcomes %v, want %v", tc.overlap, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s: outcomes %v, want %v", tc.overlap, got, tc.want)
			}
		}
		if want := t0.Add(4 * time.Minute); !adv.NextAt.Equal(want) {
			t.Fatalf("%s: NextAt %s, want %s", tc.overlap, adv.NextAt, want)
		}
		dispatched := 0
		for _, tk := range adv.Ticks {
			if tk.Outcome != backend.TickDispatched {
				continue
			}
			if tk.ExecutionID != TickExecutionID("s", tk.TickAt) || adv.Executions[dispatched].ID != tk.ExecutionID {
				t.Fatalf("%s: tick %s started %q, want %q", tc.overlap, tk.TickAt, tk.ExecutionID, TickExecutionID("s", tk.TickAt))
			}
			if !adv.Executions[dispatched].StartAt.Equal(now) { // late ticks start now
				t.Fatalf("%s: execution starts at %s, want now", tc.overlap, adv.Executions[dispatched].StartAt)
			}
			dispatched++
		}
		if dispatched != len(adv.Executions) {
			t.Fatalf("%s: %d executions for %d dispatched ticks", tc.overlap, len(adv.Executions), dispatched)
		}
	}
}
