package ui

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
)

// step is one command of a script as the timeline shows it: an activity (with its
// attempts), a child execution, a timer or a signal wait, from its scheduling to its
// outcome.
type step struct {
	Seq      int
	Kind     string // activity, child, timer, signal
	Name     string
	Start    time.Time
	End      time.Time // zero while it runs
	Outcome  string    // ok, failed, running, timeout
	Attempts int       // activity attempts, when known
	Attempt  int       // the attempt now running or due, for a running activity
	// Prior are earlier runs of the step that failed: its failed attempts, and its runs
	// before a dead-letter replay or a retry ran it again.
	Prior    []prior
	Failed   int // failed attempts since the step's latest run began
	LastErr  string
	CacheHit bool
	Pos      string // file:line:col of the call, once located
	File     string
	Line     int
	data     json.RawMessage // of the scheduling event, decoded by locate
}

// locate reads where the step was called from its scheduling event. Only the steps
// shown need it, so a history of many thousands of steps is not decoded whole.
func (st *step) locate() {
	var d struct {
		Pos string `json:"pos"`
	}
	if st.Pos == "" && json.Unmarshal(st.data, &d) == nil && d.Pos != "" {
		st.Pos = d.Pos
		st.File, st.Line = splitPos(d.Pos)
	}
}

// span is a stretch of time on the timeline.
type span struct{ Start, End time.Time }

// prior is an earlier, failed run of a step: one failed attempt of an activity (from
// its activity_attempt_failed event), or the step's run before a replay or a retry.
type prior struct {
	span
	Attempt int    // the attempt's number; 0 for a run before a replay or retry
	Worker  string // the worker the attempt ran on, when known
	Error   string
}

// steps folds an execution's history into its steps, in sequence order.
func steps(events []backend.Event) []*step {
	bySeq := map[int]*step{}
	var out []*step
	for _, ev := range events {
		switch ev.Kind {
		case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled, backend.EventSignalWait:
			st := &step{Seq: ev.Seq, Name: ev.Name, Start: ev.At, Outcome: "running", Attempts: 0}
			switch ev.Kind {
			case backend.EventActivityScheduled:
				st.Kind = "activity"
			case backend.EventChildScheduled:
				st.Kind = "child"
			case backend.EventTimerScheduled:
				st.Kind = "timer"
			default:
				st.Kind = "signal"
			}
			st.data = ev.Data
			bySeq[ev.Seq] = st
			out = append(out, st)
		case backend.EventDeadLetterReplayed, backend.EventRetried:
			if st := bySeq[ev.Seq]; st != nil && !st.End.IsZero() {
				st.Prior = append(st.Prior, prior{span: span{st.Start, st.End}, Error: st.LastErr})
				st.Start, st.End, st.Outcome, st.Failed, st.LastErr = ev.At, time.Time{}, "running", 0, ""
			}
		case backend.EventActivityAttemptFailed:
			if st := bySeq[ev.Seq]; st != nil && st.End.IsZero() {
				p := failedAttempt(ev, st.Start)
				if p.Attempt == 0 {
					p.Attempt = st.Failed + 1
				}
				st.Prior = append(st.Prior, p)
				st.Start, st.Failed = p.End, p.Attempt
			}
		case backend.EventActivityCompleted, backend.EventActivityFailed, backend.EventChildCompleted,
			backend.EventTimerFired, backend.EventSignalTimedOut, backend.EventSignalReceived:
			st := bySeq[ev.Seq]
			if st == nil || !st.End.IsZero() {
				continue
			}
			st.End = ev.At
			st.CacheHit = ev.CacheHit
			switch {
			case ev.Error != nil:
				st.Outcome = "failed"
				st.Attempts = ev.Error.Attempts
				st.LastErr = ev.Error.Message
			case st.Kind == "signal" && (ev.Kind == backend.EventTimerFired || ev.Kind == backend.EventSignalTimedOut):
				st.Outcome = "timeout"
			default:
				st.Outcome = "ok"
			}
		}
	}
	return out
}

// failedAttempt reads the failed attempt of an activity_attempt_failed event: which
// one, where and when it ran (from since, to the event, when it does not say), and
// its error.
func failedAttempt(ev backend.Event, since time.Time) prior {
	var d backend.AttemptData
	_ = json.Unmarshal(ev.Data, &d)
	p := prior{span: span{d.StartedAt, d.EndedAt}, Attempt: d.Attempt, Worker: d.Worker}
	if p.Start.IsZero() {
		p.Start = since
	}
	if p.End.IsZero() {
		p.End = ev.At
	}
	if ev.Error != nil {
		p.Error = ev.Error.Message
	}
	return p
}

// splitPos splits "path/file.star:12:5" (or "file:12") into the file and the line.
func splitPos(pos string) (string, int) {
	i := strings.LastIndex(pos, ":")
	if i < 0 {
		return pos, 0
	}
	if j := strings.LastIndex(pos[:i], ":"); j >= 0 {
		if n, err := strconv.Atoi(pos[j+1 : i]); err == nil {
			return pos[:j], n
		}
	}
	if n, err := strconv.Atoi(pos[i+1:]); err == nil {
		return pos[:i], n
	}
	return pos, 0
}

// Timeline geometry, in SVG user units.
const (
	tlWidth     = 1000
	tlLabel     = 250 // label column
	tlRight     = 12
	tlRow       = 22
	tlBar       = 14
	tlTop       = 26 // axis
	stepsPerTab = 200
)

type bar struct {
	Seq          int
	Prior        []priorBar
	X, Y, W      float64
	TextY        float64
	Label        string
	Class        string
	Title        string
	Dur          string
	DurX         float64
	DurAnchorEnd bool
	Href         string
}

// priorBar is an earlier, failed run of a step (a failed attempt, or a run before a
// dead-letter replay), with what its tooltip says.
type priorBar struct {
	X, W    float64
	Attempt int
	Title   string
}

type tick struct {
	X      float64
	Label  string
	Anchor string // CSS class: the last label ends at its tick, so it stays inside
}

type timeline struct {
	Width, Height int
	Bars          []bar
	Ticks         []tick
	Span          string
	Total, From   int
	To            int
	Prev, Next    string // query strings of the neighbouring windows, "" when none
}

// layoutTimeline places the steps from offset (at most stepsPerTab of them) on a time
// axis from the execution's start to its end (now, while it runs).
func layoutTimeline(ex *backend.Execution, all []*step, offset int, now time.Time, sourceHref func(*step) string, window func(int) string) *timeline {
	start := ex.CreatedAt
	if ex.StartAt.After(start) && (len(all) == 0 || !all[0].Start.Before(ex.StartAt)) {
		start = ex.StartAt
	}
	end := now
	if ex.CompletedAt != nil {
		end = *ex.CompletedAt
	}
	for _, st := range all {
		if st.Start.Before(start) {
			start = st.Start
		}
		if !st.End.IsZero() && st.End.After(end) {
			end = st.End
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Millisecond
	}
	if offset < 0 || offset >= len(all) {
		offset = 0
	}
	shown := all[offset:min(len(all), offset+stepsPerTab)]
	tl := &timeline{Width: tlWidth, Total: len(all), From: offset + 1, To: offset + len(shown), Span: fmtDuration(span)}
	if offset > 0 {
		tl.Prev = window(max(0, offset-stepsPerTab))
	}
	if offset+len(shown) < len(all) {
		tl.Next = window(offset + stepsPerTab)
	}
	chart := float64(tlWidth - tlLabel - tlRight)
	x := func(t time.Time) float64 {
		return tlLabel + chart*float64(t.Sub(start))/float64(span)
	}
	for i := 0; i <= 4; i++ {
		tk := tick{X: tlLabel + chart*float64(i)/4, Label: "+" + fmtDuration(span*time.Duration(i)/4)}
		if i == 4 {
			tk.Anchor = "end"
		}
		tl.Ticks = append(tl.Ticks, tk)
	}
	for i, st := range shown {
		st.locate()
		y := float64(tlTop + i*tlRow)
		stEnd := st.End
		if stEnd.IsZero() {
			stEnd = end
		}
		x0, x1 := x(st.Start), x(stEnd)
		w := x1 - x0
		if w < 3 {
			w = 3
		}
		if x0+w > tlWidth-tlRight {
			x0 = tlWidth - tlRight - w
		}
		d := stEnd.Sub(st.Start)
		b := bar{Seq: st.Seq, X: x0, Y: y + (tlRow-tlBar)/2, W: w, TextY: y + tlRow/2 + 4,
			Label: fmt.Sprintf("#%d %s %s", st.Seq, st.Kind, st.Name), Class: "k-" + st.Kind + " o-" + st.Outcome,
			Dur: fmtDuration(d), Href: sourceHref(st)}
		if st.Outcome == "running" {
			b.Dur += " …"
		}
		b.Title = fmt.Sprintf("#%d %s %s: %s, %s", st.Seq, st.Kind, st.Name, st.Outcome, b.Dur)
		for _, p := range st.Prior {
			px := x(p.Start)
			b.Prior = append(b.Prior, priorBar{X: px, W: max(3, x(p.End)-px), Attempt: p.Attempt, Title: priorTitle(st, p)})
		}
		reruns := 0
		for _, p := range st.Prior {
			if p.Attempt == 0 {
				reruns++
			}
		}
		if reruns > 0 {
			b.Title += fmt.Sprintf(", run again %d time(s) after failing", reruns)
		}
		if st.Failed > 0 && st.Attempt == 0 {
			b.Title += fmt.Sprintf(", attempt %d after %d failed", st.Failed+1, st.Failed)
		}
		if st.Attempt > 1 {
			b.Title += fmt.Sprintf(", attempt %d", st.Attempt)
			b.Label += fmt.Sprintf(" (attempt %d)", st.Attempt)
		}
		if st.Attempts > 1 {
			b.Title += fmt.Sprintf(", %d attempts", st.Attempts)
			b.Label += fmt.Sprintf(" ×%d", st.Attempts)
		}
		if st.CacheHit {
			b.Title += ", from cache"
		}
		if st.Pos != "" {
			b.Title += " — line " + strconv.Itoa(st.Line)
		}
		// The duration sits right of the bar, or inside its end when there is no room.
		b.DurX = x0 + w + 4
		if b.DurX > tlWidth-tlRight-60 {
			b.DurX, b.DurAnchorEnd = x0-4, true
		}
		tl.Bars = append(tl.Bars, b)
	}
	tl.Height = tlTop + len(shown)*tlRow + 6
	return tl
}

// priorTitle is the tooltip of an earlier, failed run of st.
func priorTitle(st *step, p prior) string {
	what := "earlier run"
	if p.Attempt > 0 {
		what = "attempt " + strconv.Itoa(p.Attempt)
	}
	t := fmt.Sprintf("#%d %s %s: %s failed after %s", st.Seq, st.Kind, st.Name, what, fmtDuration(p.End.Sub(p.Start)))
	if p.Worker != "" {
		t += " on " + p.Worker
	}
	if p.Error != "" {
		t += ": " + shortText(p.Error, 300)
	}
	return t
}

// fmtDuration prints a duration short and readable: 850ms, 3.2s, 4m05s, 2h10m, 3d4h.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
