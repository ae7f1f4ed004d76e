package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/schedule"
)

const (
	// nextFires is how many coming fire times the schedules page shows.
	nextFires = 5
	// lastRuns is how many of its latest ticks each schedule shows.
	lastRuns = 5
)

type fireTime struct {
	UTC  time.Time
	Zone string // the same instant in the schedule's zone, "" when that is UTC
}

type runRow struct {
	TickAt      time.Time
	Outcome     string
	ExecutionID string
	Status      string // of its execution; "" when it has none or it was deleted
}

type scheduleRow struct {
	ID           string
	Spec         string
	Timezone     string
	Overlap      string
	Script       string
	Entry        string
	Queue        string
	Paused       bool
	PausedReason string
	Next         []fireTime
	NextErr      string // why no fire time can be computed
	Buffered     *time.Time
	Runs         []runRow
}

type schedulesData struct {
	Rows []scheduleRow
	Now  time.Time
}

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadSchedules(r.Context(), time.Now())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "schedules", page{Title: "Schedules", Nav: "schedules", Live: "schedules=1", Data: d})
}

// loadSchedules reads every schedule with its coming fire times and latest ticks.
func (s *Server) loadSchedules(ctx context.Context, now time.Time) (*schedulesData, error) {
	scs, err := s.eng.ListSchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	d := &schedulesData{Now: now}
	for i := range scs {
		sc := &scs[i]
		row := scheduleRow{ID: sc.ID, Spec: sc.Spec, Timezone: sc.Timezone, Overlap: sc.Overlap, Script: sc.Bundle.Main,
			Entry: sc.Entry, Queue: sc.Queue, Paused: sc.Paused, PausedReason: sc.PausedReason, Buffered: sc.BufferedAt}
		if !sc.Paused {
			row.Next, row.NextErr = fireTimes(sc, now, nextFires)
		}
		ticks, err := s.eng.ScheduleTicks(ctx, sc.ID, lastRuns)
		if err != nil {
			return nil, fmt.Errorf("reading the ticks of schedule %s: %w", sc.ID, err)
		}
		for _, tk := range ticks {
			run := runRow{TickAt: tk.TickAt, Outcome: tk.Outcome, ExecutionID: tk.ExecutionID}
			if tk.ExecutionID != "" {
				ex, err := s.b.GetExecution(ctx, tk.ExecutionID)
				switch {
				case err == nil:
					run.Status = string(ex.StatusAt(now))
				case !errors.Is(err, backend.ErrNotFound): // deleted by retention: no status
					return nil, fmt.Errorf("reading execution %s of schedule %s: %w", tk.ExecutionID, sc.ID, err)
				}
			}
			row.Runs = append(row.Runs, run)
		}
		d.Rows = append(d.Rows, row)
	}
	return d, nil
}

// fireTimes returns the next n fire times of an active schedule: its first tick not
// processed yet (which may be due now), then the following ones of its spec.
func fireTimes(sc *backend.Schedule, now time.Time, n int) ([]fireTime, string) {
	cr, err := schedule.Parse(sc.Spec, sc.Timezone)
	if err != nil {
		return nil, err.Error()
	}
	loc, err := time.LoadLocation(sc.Timezone)
	if err != nil || sc.Timezone == "" || sc.Timezone == "UTC" {
		loc = nil
	}
	t := sc.NextAt
	if t.IsZero() {
		t = cr.Next(now)
	}
	var out []fireTime
	for len(out) < n && !t.IsZero() {
		ft := fireTime{UTC: t.UTC()}
		if loc != nil {
			ft.Zone = t.In(loc).Format("2006-01-02 15:04:05 MST")
		}
		out = append(out, ft)
		t = cr.Next(t)
	}
	if len(out) == 0 {
		return nil, schedule.NeverFires(sc.Spec).Error()
	}
	return out, ""
}

// schedulesState is what changes on the schedules page: each schedule's state, its
// next tick and its latest run.
func (s *Server) schedulesState(ctx context.Context) (any, error) {
	scs, err := s.eng.ListSchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	var st []any
	for _, sc := range scs {
		st = append(st, sc.ID, sc.Spec, sc.Timezone, sc.Overlap, sc.Paused, sc.PausedReason, sc.NextAt.UnixMilli(),
			sc.LastExecutionID, sc.BufferedAt)
		if sc.LastExecutionID != "" {
			if ex, err := s.b.GetExecution(ctx, sc.LastExecutionID); err == nil {
				st = append(st, ex.Status)
			}
		}
	}
	return st, nil
}

// scheduleAction prepares one of the schedule actions (pause-schedule,
// resume-schedule, trigger-schedule, delete-schedule) of the action handler: it
// fills the confirmation and returns what to do, or the status code and error to
// answer with.
func (s *Server) scheduleAction(r *http.Request, act string, c *confirmData) (func() error, int, error) {
	ctx := r.Context()
	id := r.PostFormValue("schedule")
	c.Fields = [][2]string{{"schedule", id}}
	sc, err := s.eng.GetSchedule(ctx, id)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return nil, http.StatusNotFound, fmt.Errorf("no schedule %s", id)
		}
		return nil, http.StatusInternalServerError, fmt.Errorf("reading schedule %s: %w", id, err)
	}
	var do func() error
	switch act {
	case "pause-schedule":
		if sc.Paused {
			return nil, http.StatusConflict, fmt.Errorf("schedule %s is paused already", id)
		}
		c.Question = "Pause schedule " + id + "?"
		c.Detail = "Its ticks stop until it is resumed; an execution it started keeps running."
		do = func() error { return s.eng.PauseSchedule(ctx, id) }
	case "resume-schedule":
		if !sc.Paused {
			return nil, http.StatusConflict, fmt.Errorf("schedule %s is not paused", id)
		}
		c.Question = "Resume schedule " + id + "?"
		c.Detail = "It fires again from its next tick after now; the ticks of the paused time are not caught up."
		do = func() error { return s.eng.ResumeSchedule(ctx, id) }
	case "trigger-schedule":
		c.Question = "Trigger schedule " + id + " now?"
		c.Detail = "One execution of " + sc.Bundle.Main + " starts now, outside its ticks (also when paused)."
		do = func() error {
			ex, err := s.eng.TriggerSchedule(ctx, id)
			if err == nil {
				c.Fields = append(c.Fields, [2]string{"execution", ex})
			}
			return err
		}
	case "delete-schedule":
		c.Question = "Delete schedule " + id + "?"
		c.Detail = "It never fires again; the executions it started are kept."
		do = func() error { return s.eng.DeleteSchedule(ctx, id) }
	}
	return do, 0, nil
}
