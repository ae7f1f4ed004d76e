package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/wire"
)

// The schedule endpoints are `stent schedule`'s: create, list, show, update, pause,
// resume, trigger, delete.
func (a *API) scheduleRoutes() {
	m := a.mux
	m.HandleFunc("POST /api/v1/schedules", a.createSchedule)
	m.HandleFunc("GET /api/v1/schedules", a.schedules)
	m.HandleFunc("GET /api/v1/schedules/{id}", a.schedule)
	m.HandleFunc("PATCH /api/v1/schedules/{id}", a.updateSchedule)
	m.HandleFunc("DELETE /api/v1/schedules/{id}", a.deleteSchedule)
	m.HandleFunc("POST /api/v1/schedules/{id}/pause", a.pauseSchedule(true))
	m.HandleFunc("POST /api/v1/schedules/{id}/resume", a.pauseSchedule(false))
	m.HandleFunc("POST /api/v1/schedules/{id}/trigger", a.triggerSchedule)
}

// scheduleTicks is how many of its latest ticks GET /api/v1/schedules/{id} shows, as
// `stent schedule show`.
const scheduleTicks = 20

// scheduleRequest is the body of POST /api/v1/schedules and PATCH
// /api/v1/schedules/{id}: a PATCH changes the fields it sends and keeps the others
// (it takes no id and no paused: pause and resume have their own endpoints).
type scheduleRequest struct {
	ID       string          `json:"id"`
	Script   *string         `json:"script"`
	Cron     *string         `json:"cron"`
	Timezone *string         `json:"timezone"`
	Overlap  *string         `json:"overlap"`
	Catchup  *string         `json:"catchup"`
	Jitter   *string         `json:"jitter"`
	Args     json.RawMessage `json:"args"`
	Entry    *string         `json:"entry"`
	Queue    *string         `json:"queue"`
	Paused   *bool           `json:"paused"`
}

// durations reads catchup and jitter (a duration such as "1m", "0s" for none).
func (req *scheduleRequest) durations() (catchup, jitter *time.Duration, err error) {
	read := func(field string, s *string) (*time.Duration, error) {
		if s == nil {
			return nil, nil
		}
		d, err := time.ParseDuration(*s)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s %q: want a duration such as 30s or 2h", field, *s)
		}
		return &d, nil
	}
	if catchup, err = read("catchup", req.Catchup); err == nil {
		jitter, err = read("jitter", req.Jitter)
	}
	return catchup, jitter, err
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (a *API) createSchedule(w http.ResponseWriter, r *http.Request) {
	var req scheduleRequest
	if !a.decode(w, r, &req) {
		return
	}
	switch {
	case req.ID == "":
		a.problem(w, http.StatusBadRequest, "invalid-request", "no id", `"id" is required: the schedule's name`)
		return
	case str(req.Cron) == "":
		a.problem(w, http.StatusBadRequest, "invalid-request", "no cron", `"cron" is required, e.g. "0 */6 * * *" or "@every 1h"`)
		return
	}
	script, err := a.scriptPath(str(req.Script))
	if err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-script", "script not allowed", err.Error())
		return
	}
	catchup, jitter, err := req.durations()
	if err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad duration", err.Error())
		return
	}
	o := stent.ScheduleOptions{Cron: *req.Cron, Timezone: str(req.Timezone), Overlap: str(req.Overlap), Args: req.Args,
		Entry: str(req.Entry), Queue: str(req.Queue), Paused: req.Paused != nil && *req.Paused}
	if catchup != nil {
		o.Catchup = *catchup
	}
	if jitter != nil {
		o.Jitter = *jitter
	}
	if _, err := a.eng.GetSchedule(r.Context(), req.ID); err == nil {
		a.problem(w, http.StatusConflict, "schedule-exists", "the schedule exists already",
			fmt.Sprintf("schedule %q exists already: change it with PATCH /api/v1/schedules/{id}, or delete it first", req.ID))
		return
	}
	s, err := a.eng.CreateSchedule(r.Context(), req.ID, script, o)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/schedules/"+url.PathEscape(s.ID))
	a.json(w, http.StatusCreated, wire.NewSchedule(s, nil))
}

func (a *API) schedules(w http.ResponseWriter, r *http.Request) {
	list, err := a.eng.ListSchedules(r.Context())
	if err != nil {
		a.fail(w, fmt.Errorf("listing schedules: %w", err))
		return
	}
	out := make([]wire.Schedule, len(list))
	for i := range list {
		out[i] = wire.NewSchedule(&list[i], nil)
	}
	a.json(w, http.StatusOK, map[string]any{"schedules": out})
}

// loadSchedule reads the schedule the path names, answering 404 when there is none.
func (a *API) loadSchedule(w http.ResponseWriter, r *http.Request) (*stent.Schedule, bool) {
	id := r.PathValue("id")
	s, err := a.eng.GetSchedule(r.Context(), id)
	if errors.Is(err, backend.ErrNotFound) {
		a.problem(w, http.StatusNotFound, "no-such-schedule", "no such schedule", fmt.Sprintf("no schedule %q", id))
		return nil, false
	}
	if err != nil {
		a.fail(w, fmt.Errorf("reading schedule %s: %w", id, err))
		return nil, false
	}
	return s, true
}

// showSchedule answers the schedule id with its latest ticks.
func (a *API) showSchedule(w http.ResponseWriter, r *http.Request, code int) {
	s, ok := a.loadSchedule(w, r)
	if !ok {
		return
	}
	ticks, err := a.eng.ScheduleTicks(r.Context(), s.ID, scheduleTicks)
	if err != nil {
		a.fail(w, fmt.Errorf("reading the ticks of schedule %s: %w", s.ID, err))
		return
	}
	a.json(w, code, wire.NewSchedule(s, ticks))
}

func (a *API) schedule(w http.ResponseWriter, r *http.Request) {
	a.showSchedule(w, r, http.StatusOK)
}

func (a *API) updateSchedule(w http.ResponseWriter, r *http.Request) {
	var req scheduleRequest
	if !a.decode(w, r, &req) {
		return
	}
	if req.ID != "" || req.Paused != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "field not changeable",
			`a schedule's "id" cannot change, and "paused" changes with POST …/pause and …/resume`)
		return
	}
	u := stent.ScheduleUpdate{Cron: req.Cron, Timezone: req.Timezone, Overlap: req.Overlap, Entry: req.Entry, Queue: req.Queue, Args: req.Args}
	var err error
	if u.Catchup, u.Jitter, err = req.durations(); err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad duration", err.Error())
		return
	}
	if req.Script != nil {
		script, err := a.scriptPath(*req.Script)
		if err != nil {
			a.problem(w, http.StatusBadRequest, "invalid-script", "script not allowed", err.Error())
			return
		}
		u.Script = &script
	}
	s, ok := a.loadSchedule(w, r)
	if !ok {
		return
	}
	if _, err := a.eng.UpdateSchedule(r.Context(), s.ID, u); err != nil {
		a.fail(w, err)
		return
	}
	a.showSchedule(w, r, http.StatusOK)
}

func (a *API) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	s, ok := a.loadSchedule(w, r)
	if !ok {
		return
	}
	if err := a.eng.DeleteSchedule(r.Context(), s.ID); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pauseSchedule pauses or resumes a schedule and returns it; either is idempotent.
func (a *API) pauseSchedule(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.loadSchedule(w, r)
		if !ok {
			return
		}
		fn := a.eng.ResumeSchedule
		if pause {
			fn = a.eng.PauseSchedule
		}
		if err := fn(r.Context(), s.ID); err != nil {
			a.fail(w, err)
			return
		}
		a.showSchedule(w, r, http.StatusOK)
	}
}

// triggerSchedule starts an execution of the schedule now (also when paused): 201
// with the execution.
func (a *API) triggerSchedule(w http.ResponseWriter, r *http.Request) {
	s, ok := a.loadSchedule(w, r)
	if !ok {
		return
	}
	id, err := a.eng.TriggerSchedule(r.Context(), s.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	ex, err := a.eng.Get(r.Context(), id)
	if err != nil {
		a.fail(w, fmt.Errorf("reading execution %s of schedule %s: %w", id, s.ID, err))
		return
	}
	w.Header().Set("Location", "/api/v1/executions/"+url.PathEscape(id))
	a.json(w, http.StatusCreated, wire.NewExecution(ex, time.Now()))
}
