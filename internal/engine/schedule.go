package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/schedule"
	"github.com/stent-go/stent/interpreter"
)

// Schedules: a cron expression, a pinned script and its arguments. Every worker runs
// the scheduler loop: it claims the schedules with a due tick (one process at a time
// per schedule), and each tick dispatches one execution with the deterministic ID
// "SCHEDULE@TICK" (RFC 3339, UTC), so a tick runs exactly once however many workers
// are up. Ticks missed while no worker ran start late when they are within the catch-up
// window, and are skipped (and recorded) beyond it.

// Schedule is a stored schedule, as ListSchedules and GetSchedule return it.
type Schedule = backend.Schedule

// ScheduleTick records what happened to one tick of a schedule.
type ScheduleTick = backend.ScheduleTick

// ScheduleOptions describes a schedule to create. Zero values take the defaults.
type ScheduleOptions struct {
	// Cron is the standard 5-field expression (minute hour day-of-month month
	// day-of-week) or a descriptor: @hourly, @daily, @weekly, @monthly, @yearly,
	// @every 90s. Required.
	Cron string
	// Timezone is the IANA zone the fields are read in (default UTC).
	Timezone string
	// Overlap says what a tick does while the previous tick's execution still runs:
	// backend.OverlapSkip (default), OverlapBufferOne or OverlapAllow.
	Overlap string
	// Catchup is how late a tick may start (after every worker was down) before it is
	// skipped instead (default one minute).
	Catchup time.Duration
	// Jitter delays each execution by a deterministic amount below it.
	Jitter time.Duration
	// Args is the JSON array of positional arguments (default []).
	Args json.RawMessage
	// Entry is the function to run (default "main").
	Entry string
	// Queue is the executions' queue (default "default").
	Queue string
	// Paused creates the schedule paused.
	Paused bool
}

// ScheduleUpdate changes a schedule; nil fields are kept.
type ScheduleUpdate struct {
	Cron, Timezone, Overlap, Entry, Queue *string
	Catchup, Jitter                       *time.Duration
	Args                                  json.RawMessage
	// Script re-pins the schedule to the current content of this script.
	Script *string
}

// DefaultCatchup is the catch-up window of a schedule created without one.
const DefaultCatchup = schedule.DefaultCatchup

// scheduleLease is how long a process holds a claimed schedule while it processes
// its due ticks.
const scheduleLease = 30 * time.Second

func (e *Engine) schedules() (backend.Schedules, error) {
	s, ok := e.b.(backend.Schedules)
	if !ok {
		return nil, fmt.Errorf("this backend (%T) has no schedules", e.b)
	}
	return s, nil
}

// pinScript collects and compiles a script and checks its entry, as Dispatch does.
func (e *Engine) pinScript(script, entry string) (backend.Bundle, map[string][]byte, error) {
	bundle, sources, err := interpreter.CollectBundle(script)
	if err != nil {
		return backend.Bundle{}, nil, &InputError{Err: err}
	}
	prog, err := interpreter.CompileWith(bundle, sources, e.cfg.builtins)
	if err != nil {
		return backend.Bundle{}, nil, &InputError{Err: err}
	}
	if _, err := prog.Entry(entry); err != nil {
		return backend.Bundle{}, nil, &InputError{Err: err}
	}
	return bundle, sources, nil
}

func checkArgs(args json.RawMessage) (json.RawMessage, error) {
	if len(args) == 0 {
		return json.RawMessage("[]"), nil
	}
	if err := checkArgsArray(args); err != nil {
		return nil, &InputError{Err: err}
	}
	return args, nil
}

// CreateSchedule creates schedule id running script (pinned now) at every tick of
// o.Cron. Problems with the options or the script are *InputError; an existing ID is
// an error too.
func (e *Engine) CreateSchedule(ctx context.Context, id, script string, o ScheduleOptions) (*Schedule, error) {
	st, err := e.schedules()
	if err != nil {
		return nil, err
	}
	if err := validateID(id); err != nil {
		return nil, &InputError{Err: fmt.Errorf("schedule ID: %w", err)}
	}
	sc := Schedule{ID: id, Spec: o.Cron, Timezone: o.Timezone, Catchup: o.Catchup, Jitter: o.Jitter,
		Entry: o.Entry, Queue: o.Queue, Paused: o.Paused}
	if sc.Timezone == "" {
		sc.Timezone = "UTC"
	}
	if sc.Entry == "" {
		sc.Entry = "main"
	}
	if sc.Queue == "" {
		sc.Queue = backend.DefaultQueue
	}
	if sc.Catchup == 0 {
		sc.Catchup = DefaultCatchup
	}
	if sc.Overlap, err = schedule.CheckOverlap(o.Overlap); err != nil {
		return nil, err
	}
	if sc.Catchup < 0 || sc.Jitter < 0 {
		return nil, &InputError{Err: errors.New("catch-up and jitter must not be negative")}
	}
	p, err := schedule.Parse(sc.Spec, sc.Timezone)
	if err != nil {
		return nil, err
	}
	if sc.NextAt, err = p.First(e.clock.Now()); err != nil {
		return nil, err
	}
	if sc.Args, err = checkArgs(o.Args); err != nil {
		return nil, err
	}
	bundle, sources, err := e.pinScript(script, sc.Entry)
	if err != nil {
		return nil, err
	}
	sc.Bundle = bundle
	created, err := st.CreateSchedule(ctx, sc, sources)
	if err != nil {
		return nil, fmt.Errorf("creating schedule %s: %w", id, err)
	}
	if !created {
		return nil, &InputError{Err: fmt.Errorf("schedule %q exists already (change it with update, or delete it first)", id)}
	}
	e.wakeAt(sc.NextAt)
	return st.GetSchedule(ctx, id)
}

// GetSchedule returns a schedule; the error wraps backend.ErrNotFound when there is none.
func (e *Engine) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	st, err := e.schedules()
	if err != nil {
		return nil, err
	}
	return st.GetSchedule(ctx, id)
}

// ListSchedules lists every schedule by ID.
func (e *Engine) ListSchedules(ctx context.Context) ([]Schedule, error) {
	st, err := e.schedules()
	if err != nil {
		return nil, err
	}
	return st.ListSchedules(ctx)
}

// ScheduleTicks returns the latest tick records of a schedule (dispatched, triggered,
// buffered, skipped), newest first.
func (e *Engine) ScheduleTicks(ctx context.Context, id string, limit int) ([]ScheduleTick, error) {
	st, err := e.schedules()
	if err != nil {
		return nil, err
	}
	return st.ScheduleTicks(ctx, id, limit)
}

// DeleteSchedule deletes a schedule (the executions it started are kept).
func (e *Engine) DeleteSchedule(ctx context.Context, id string) error {
	st, err := e.schedules()
	if err != nil {
		return err
	}
	return st.DeleteSchedule(ctx, id)
}

// PauseSchedule stops a schedule's ticks until ResumeSchedule.
func (e *Engine) PauseSchedule(ctx context.Context, id string) error {
	return e.changeScheduleWith(ctx, id, func(sc *Schedule) (map[string][]byte, error) {
		sc.Paused = true
		return nil, nil
	})
}

// ResumeSchedule restarts a paused schedule from its next tick after now: the ticks of
// the paused time are not caught up. A schedule that never fires stays paused (an
// *InputError says why).
func (e *Engine) ResumeSchedule(ctx context.Context, id string) error {
	now := e.clock.Now()
	return e.changeScheduleWith(ctx, id, func(sc *Schedule) (map[string][]byte, error) {
		if !sc.Paused {
			return nil, nil
		}
		p, err := schedule.Parse(sc.Spec, sc.Timezone)
		if err != nil {
			return nil, err
		}
		if sc.NextAt, err = p.First(now); err != nil {
			return nil, err
		}
		sc.Paused, sc.PausedReason = false, ""
		return nil, nil
	})
}

// UpdateSchedule changes a schedule's definition; a new cron expression or timezone
// takes effect from the next tick after now, a Script re-pins it.
func (e *Engine) UpdateSchedule(ctx context.Context, id string, u ScheduleUpdate) (*Schedule, error) {
	var sources map[string][]byte
	now := e.clock.Now()
	err := e.changeScheduleWith(ctx, id, func(sc *Schedule) (map[string][]byte, error) {
		retime := false
		if u.Cron != nil {
			sc.Spec, retime = *u.Cron, true
		}
		if u.Timezone != nil {
			sc.Timezone, retime = *u.Timezone, true
		}
		if u.Overlap != nil {
			o, err := schedule.CheckOverlap(*u.Overlap)
			if err != nil {
				return nil, err
			}
			sc.Overlap = o
		}
		if u.Catchup != nil {
			sc.Catchup = *u.Catchup
		}
		if u.Jitter != nil {
			sc.Jitter = *u.Jitter
		}
		if u.Entry != nil {
			sc.Entry = *u.Entry
		}
		if u.Queue != nil {
			sc.Queue = *u.Queue
		}
		if u.Args != nil {
			a, err := checkArgs(u.Args)
			if err != nil {
				return nil, err
			}
			sc.Args = a
		}
		p, err := schedule.Parse(sc.Spec, sc.Timezone)
		if err != nil {
			return nil, err
		}
		if retime {
			if sc.NextAt, err = p.First(now); err != nil {
				return nil, err
			}
			sc.PausedReason = ""
		}
		if u.Script != nil || u.Entry != nil {
			if u.Script == nil {
				return nil, &InputError{Err: errors.New("changing the entry function needs the script too (--script)")}
			}
			b, src, err := e.pinScript(*u.Script, sc.Entry)
			if err != nil {
				return nil, err
			}
			sc.Bundle, sources = b, src
		}
		return sources, nil
	})
	if err != nil {
		return nil, err
	}
	return e.GetSchedule(ctx, id)
}

func (e *Engine) changeScheduleWith(ctx context.Context, id string, fn func(sc *Schedule) (map[string][]byte, error)) error {
	st, err := e.schedules()
	if err != nil {
		return err
	}
	sc, err := st.GetSchedule(ctx, id)
	if err != nil {
		return err
	}
	sources, err := fn(sc)
	if err != nil {
		return err
	}
	if sc.Catchup < 0 || sc.Jitter < 0 {
		return &InputError{Err: errors.New("catch-up and jitter must not be negative")}
	}
	if err := st.UpdateSchedule(ctx, *sc, sources); err != nil {
		return fmt.Errorf("updating schedule %s: %w", id, err)
	}
	if !sc.Paused {
		e.wakeAt(sc.NextAt)
	}
	return nil
}

// TriggerSchedule starts an execution of the schedule now, outside its ticks (also
// when paused), with the ID "SCHEDULE@NOW"; it returns that ID.
func (e *Engine) TriggerSchedule(ctx context.Context, id string) (string, error) {
	st, err := e.schedules()
	if err != nil {
		return "", err
	}
	sc, err := st.GetSchedule(ctx, id)
	if err != nil {
		return "", err
	}
	now := e.clock.Now().UTC().Truncate(time.Second)
	ne := schedule.TickExecution(sc, now, now)
	err = st.AdvanceSchedule(ctx, backend.ScheduleAdvance{ID: id, Trigger: true, LastExecutionID: ne.ID,
		Executions: []backend.NewExecution{ne},
		Ticks:      []backend.ScheduleTick{{TickAt: now, Outcome: backend.TickTriggered, ExecutionID: ne.ID}}})
	if err != nil {
		return "", fmt.Errorf("triggering schedule %s: %w", id, err)
	}
	e.taskReady(ne.Queue)
	return ne.ID, nil
}

// runSchedules processes the due ticks of the schedules this process can claim, until
// none is left to claim.
func (e *Engine) runSchedules(ctx context.Context, st backend.Schedules) error {
	for ctx.Err() == nil {
		claimed, err := st.ClaimDueSchedules(ctx, 16, scheduleLease)
		if err != nil {
			return err
		}
		if len(claimed) == 0 {
			return nil
		}
		for i := range claimed {
			if err := e.tickSchedule(ctx, st, &claimed[i]); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
				e.logger.Warn("processing schedule ticks", "schedule", claimed[i].ID, "err", err)
			}
		}
	}
	return nil
}

// tickSchedule decides what each due tick of a claimed schedule does and commits it.
func (e *Engine) tickSchedule(ctx context.Context, st backend.Schedules, c *backend.ClaimedSchedule) error {
	sc := &c.Schedule
	now := e.clock.Now()
	p, err := schedule.Parse(sc.Spec, sc.Timezone)
	if err != nil {
		// Stored before a check that refuses it now (or written by hand): pause it, with
		// the reason, rather than claim it again every lease.
		return e.pauseSchedule(ctx, st, c, err.Error())
	}
	running := false
	if sc.LastExecutionID != "" && sc.Overlap != backend.OverlapAllow {
		ex, err := e.b.GetExecution(ctx, sc.LastExecutionID)
		switch {
		case err == nil:
			running = ex.Status == backend.StatusRunning
		case !errors.Is(err, backend.ErrNotFound):
			return err
		}
	}
	adv := schedule.Plan(c, p, now, running)
	if err := st.AdvanceSchedule(ctx, adv); err != nil {
		return err
	}
	if adv.Pause != "" {
		e.logger.Warn("schedule paused", "schedule", sc.ID, "reason", adv.Pause)
	}
	for _, ne := range adv.Executions {
		if ne.StartAt.After(now) {
			e.wakeAt(ne.StartAt)
		} else {
			e.taskReady(ne.Queue)
		}
	}
	return nil
}

// pauseSchedule pauses a claimed schedule whose ticks cannot be computed, with reason.
func (e *Engine) pauseSchedule(ctx context.Context, st backend.Schedules, c *backend.ClaimedSchedule, reason string) error {
	e.logger.Warn("schedule paused", "schedule", c.ID, "reason", reason)
	err := st.AdvanceSchedule(ctx, backend.ScheduleAdvance{ID: c.ID, LeaseUntil: c.LeaseUntil, NextAt: c.NextAt,
		BufferedAt: c.BufferedAt, Pause: reason})
	if err != nil {
		return fmt.Errorf("pausing schedule %s: %w", c.ID, err)
	}
	return nil
}

// scheduleLoop runs the scheduler of a worker: it processes due schedule ticks and
// sleeps until the next one (at most poll).
func (w *worker) scheduleLoop(ctx context.Context) {
	e := w.e
	st, ok := e.b.(backend.Schedules)
	if !ok || e.cfg.virtual != nil {
		return
	}
	poll := w.opts.PollInterval
	for {
		if err := e.runSchedules(ctx, st); err != nil && ctx.Err() == nil {
			e.logger.Warn("claiming due schedules", "worker", w.opts.ID, "err", err)
		}
		wait := poll
		if at, ok, err := st.NextScheduleAt(ctx); err == nil && ok {
			// A tick already due here is leased by another process: look again soon,
			// without spinning.
			wait = min(max(time.Until(at), 50*time.Millisecond), poll)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
