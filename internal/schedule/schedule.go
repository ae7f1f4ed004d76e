// Package schedule decides how schedules fire: it reads cron expressions in their time
// zone, names the execution each tick starts, and plans what every due tick of a
// schedule does (dispatch, buffer, skip as missed or as overlapping) given the time and
// whether the schedule's last execution still runs. It decides only; the engine claims
// schedules, commits the plan (backend.Schedules.AdvanceSchedule) and wakes workers.
//
// It imports package backend (the schedule records) and internal/errs.
package schedule

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/errs"
)

// DefaultCatchup is the catch-up window of a schedule created without one.
const DefaultCatchup = time.Minute

// catchupGrace is added to every catch-up window for the scheduler's own latency: a
// tick processed within it of its time is never counted as missed.
const catchupGrace = time.Second

// maxTicksPerPass bounds the ticks of one schedule processed in one pass.
const maxTicksPerPass = 1000

// cronParser reads standard 5-field expressions and descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron is a schedule's cron expression read in its zone.
type Cron struct {
	sched cron.Schedule
	loc   *time.Location
	spec  string
}

// Parse reads a cron expression (5 fields or a descriptor such as @daily or @every 1h)
// in time zone tz (an IANA name; "" is UTC). Problems are *errs.InputError.
func Parse(spec, tz string) (Cron, error) {
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Cron{}, &errs.InputError{Err: fmt.Errorf("timezone %q: %v (use an IANA name such as Europe/Paris)", tz, err)}
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return Cron{}, &errs.InputError{Err: fmt.Errorf("cron expression %q: %v (want 5 fields, minute hour day-of-month month day-of-week, or @daily, @every 1h, …)", spec, err)}
	}
	if _, ok := s.(cron.ConstantDelaySchedule); ok {
		// The library turns a delay under a second, zero or negative included, into 1s.
		if d, _ := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(spec), "@every"))); d < time.Second {
			return Cron{}, &errs.InputError{Err: fmt.Errorf("cron expression %q: @every wants a duration of at least 1s (e.g. @every 30s), got %s", spec, d)}
		}
	}
	return Cron{sched: s, loc: loc, spec: spec}, nil
}

// Next returns the first tick strictly after t, or the zero time when there is none
// within five years of t (30 February, say).
func (c Cron) Next(t time.Time) time.Time {
	n := c.sched.Next(t.In(c.loc))
	if n.IsZero() {
		return time.Time{}
	}
	return n.UTC()
}

// First returns the first tick strictly after now; a spec with no tick in the next
// five years (such as "0 0 30 2 *", 30 February) is an *errs.InputError saying so.
func (c Cron) First(now time.Time) (time.Time, error) {
	n := c.Next(now)
	if n.IsZero() {
		return time.Time{}, &errs.InputError{Err: NeverFires(c.spec)}
	}
	return n, nil
}

// NeverFires is the error of a cron expression with no tick in the next five years.
func NeverFires(spec string) error {
	return fmt.Errorf("cron expression %q never fires in the next 5 years (a date that does not exist, such as 30 February?)", spec)
}

// CheckOverlap validates an overlap policy; "" means skip.
func CheckOverlap(o string) (string, error) {
	switch o {
	case "":
		return backend.OverlapSkip, nil
	case backend.OverlapSkip, backend.OverlapBufferOne, backend.OverlapAllow:
		return o, nil
	}
	return "", &errs.InputError{Err: fmt.Errorf("overlap policy %q: want skip, buffer_one or allow", o)}
}

// TickExecutionID is the ID of the execution a schedule's tick starts.
func TickExecutionID(scheduleID string, tick time.Time) string {
	return scheduleID + "@" + tick.UTC().Format(time.RFC3339)
}

// TickExecution is the execution of a tick, started no earlier than now, plus the
// schedule's jitter (the same for a tick wherever it is computed).
func TickExecution(sc *backend.Schedule, tick, now time.Time) backend.NewExecution {
	start := tick
	if sc.Jitter > 0 {
		h := fnv.New64a()
		h.Write([]byte(TickExecutionID(sc.ID, tick)))
		start = start.Add(time.Duration(h.Sum64() % uint64(sc.Jitter)))
	}
	if start.Before(now) {
		start = now
	}
	return backend.NewExecution{ID: TickExecutionID(sc.ID, tick), Bundle: sc.Bundle, Entry: sc.Entry, Args: sc.Args,
		Queue: sc.Queue, StartAt: start}
}

// Plan decides what the due ticks of claimed schedule c do at now, running telling
// whether its last execution still runs: a buffered tick starts once nothing runs;
// each due tick then starts an execution, or is buffered (buffer_one), or is skipped
// because one runs (skip) or because it is older than the catch-up window. At most
// maxTicksPerPass ticks are planned; the rest stay due for the next pass. A schedule
// whose next tick cannot be computed is paused (ScheduleAdvance.Pause says why) rather
// than ticked.
func Plan(c *backend.ClaimedSchedule, cr Cron, now time.Time, running bool) backend.ScheduleAdvance {
	sc := &c.Schedule
	adv := backend.ScheduleAdvance{ID: sc.ID, LeaseUntil: c.LeaseUntil, BufferedAt: sc.BufferedAt}
	start := func(tick time.Time, outcome string) {
		ne := TickExecution(sc, tick, now)
		adv.Executions = append(adv.Executions, ne)
		adv.Ticks = append(adv.Ticks, backend.ScheduleTick{TickAt: tick, Outcome: outcome, ExecutionID: ne.ID})
		adv.LastExecutionID, running = ne.ID, true
	}
	if adv.BufferedAt != nil && !running {
		start(*adv.BufferedAt, backend.TickDispatched)
		adv.BufferedAt = nil
	}
	next := sc.NextAt
	if next.IsZero() || next.Year() <= 1 {
		// Stored by a version that accepted a spec that never fires: start from now.
		next = cr.Next(now)
	}
	for n := 0; !next.IsZero() && !next.After(now) && n < maxTicksPerPass; n++ {
		tick := next
		next = cr.Next(tick)
		switch {
		case now.Sub(tick) > sc.Catchup+catchupGrace:
			adv.Ticks = append(adv.Ticks, backend.ScheduleTick{TickAt: tick, Outcome: backend.TickSkippedMissed})
		case !running || sc.Overlap == backend.OverlapAllow:
			start(tick, backend.TickDispatched)
		case sc.Overlap == backend.OverlapBufferOne && adv.BufferedAt == nil:
			t := tick
			adv.BufferedAt = &t
			adv.Ticks = append(adv.Ticks, backend.ScheduleTick{TickAt: tick, Outcome: backend.TickBuffered})
		default:
			adv.Ticks = append(adv.Ticks, backend.ScheduleTick{TickAt: tick, Outcome: backend.TickSkippedOverlap})
		}
	}
	if next.IsZero() {
		adv.Pause, adv.NextAt = NeverFires(sc.Spec).Error(), sc.NextAt
		return adv
	}
	adv.NextAt = next
	return adv
}
