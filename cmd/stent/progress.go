package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// showProgress prints the steps of execution id as they are scheduled and finish.
func showProgress(ctx context.Context, eng *stent.Engine, id string, w io.Writer) {
	var last int64
	done, ticks := 0, 0
	stopped := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if ticks%4 == 0 { // every second: is a worker holding a step gone?
			if s := stoppedWorker(ctx, eng, id); s != stopped {
				fmt.Fprintf(w, "\r\033[K")
				if s != "" {
					fmt.Fprintf(w, "… %s", s)
				}
				stopped = s
			}
		}
		ticks++
		events, err := eng.Backend().History(ctx, id, last)
		if err == nil {
			for _, ev := range events {
				last = ev.ID
				switch ev.Kind {
				case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled:
					fmt.Fprintf(w, "\r\033[K… step %d: %s %s", ev.Seq, ev.Name, eventDetail(ev))
				case backend.EventActivityCompleted, backend.EventChildCompleted, backend.EventTimerFired, backend.EventSignalTimedOut:
					done++
					fmt.Fprintf(w, "\r\033[K✓ %d steps done (last: %s)", done, ev.Name)
				case backend.EventActivityAttemptFailed:
					fmt.Fprintf(w, "\r\033[K… step %d: %s %s, retrying", ev.Seq, ev.Name, attemptDetail(ev))
				case backend.EventActivityFailed:
					fmt.Fprintf(w, "\r\033[K✗ step %d: %s failed\n", ev.Seq, ev.Name)
				case backend.EventCompleted, backend.EventFailed:
					fmt.Fprint(w, "\r\033[K")
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprint(w, "\r\033[K")
			return
		case <-tick.C:
		}
	}
}

// stoppedWorker says which worker holding a step of execution id stopped heartbeating
// and when its work is reclaimed, or "".
func stoppedWorker(ctx context.Context, eng *stent.Engine, id string) string {
	ex, err := eng.Backend().GetExecution(ctx, id)
	if err != nil {
		return ""
	}
	waits, err := eng.Waits(ctx, ex)
	if err != nil {
		return ""
	}
	for _, wt := range waits {
		if s := wt.Stopped(); s != "" {
			return s
		}
	}
	return ""
}

// attemptDetail describes an activity_attempt_failed event: "attempt 2 on W failed
// after 1.2s: error: …".
func attemptDetail(ev backend.Event) string {
	var d backend.AttemptData
	_ = json.Unmarshal(ev.Data, &d)
	s := fmt.Sprintf("attempt %d", d.Attempt)
	if d.Worker != "" {
		s += " on " + d.Worker
	}
	s += " failed"
	if !d.StartedAt.IsZero() && d.EndedAt.After(d.StartedAt) {
		s += " after " + d.EndedAt.Sub(d.StartedAt).Round(time.Millisecond).String()
	}
	if ev.Error != nil {
		s += ": " + shorten(ev.Error.Message, 80)
	}
	return s
}
