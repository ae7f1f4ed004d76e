// Package wire is the JSON contract Stent speaks to the outside: what the CLI's --json
// prints and what the HTTP API sends and takes. Field names are snake_case and stable;
// README.md documents each one, and tests/cli/schema_test.go decodes real output into
// copies of them.
//
// It imports package backend (the records it shows) and internal/engine (Wait).
package wire

import (
	"encoding/json"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/engine"
)

// Execution is an execution as `status --json` and `list --json` print it.
type Execution struct {
	ID          string             `json:"id"`
	Status      backend.Status     `json:"status"` // scheduled, running, completed, failed, cancelled, timed_out
	Script      string             `json:"script"`
	Entry       string             `json:"entry"`
	Args        json.RawMessage    `json:"args"`
	Queue       string             `json:"queue"`
	ParentID    string             `json:"parent_id,omitempty"`
	ParentSeq   int                `json:"parent_seq,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	StartAt     time.Time          `json:"start_at"`
	Deadline    *time.Time         `json:"deadline,omitempty"`
	CompletedAt *time.Time         `json:"completed_at,omitempty"`
	Result      json.RawMessage    `json:"result,omitempty"`
	Error       *backend.ErrorInfo `json:"error,omitempty"`
	Version     int64              `json:"version"`
	Run         int                `json:"run"`
}

// NewExecution shows ex as it is at now (scheduled derived from its start time).
func NewExecution(ex *backend.Execution, now time.Time) Execution {
	args := ex.Args
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	return Execution{
		ID: ex.ID, Status: ex.StatusAt(now), Script: ex.Bundle.Main, Entry: ex.Entry, Args: args,
		Queue: ex.Queue, ParentID: ex.ParentID, ParentSeq: ex.ParentSeq,
		CreatedAt: ex.CreatedAt.UTC(), StartAt: ex.StartAt.UTC(), Deadline: utcPtr(ex.Deadline),
		CompletedAt: utcPtr(ex.CompletedAt), Result: ex.Result, Error: ex.Error,
		Version: ex.Version, Run: ex.Run,
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// List is what `list --json` prints: one page of executions, newest first, the
// count of every matching execution per status, and the cursor of the next page.
// Counts stop at backend.DefaultCountAtMost: the statuses in CountsCapped have at
// least their count, maybe more.
type List struct {
	Executions   []Execution            `json:"executions"`
	Counts       map[backend.Status]int `json:"counts"`
	CountsCapped []backend.Status       `json:"counts_capped,omitempty"`
	NextCursor   string                 `json:"next_cursor,omitempty"`
}

// NewList is the page list with the counts of f (from CountExecutions with f), the
// capped ones named in lifecycle order.
func NewList(f backend.ListFilter, counts map[backend.Status]int) List {
	out := List{Executions: []Execution{}, Counts: counts}
	for _, st := range backend.Statuses {
		if f.CountCapped(counts[st]) {
			out.CountsCapped = append(out.CountsCapped, st)
		}
	}
	return out
}

// Event is one history event as `history --json` prints it (one object per line).
// Number counts the execution's events from 1; Seq is the script step it belongs to
// (0 for started, completed, failed).
type Event struct {
	Number   int                `json:"number"`
	Seq      int                `json:"seq"`
	Kind     backend.EventKind  `json:"kind"`
	Name     string             `json:"name,omitempty"`
	Data     json.RawMessage    `json:"data,omitempty"`
	Error    *backend.ErrorInfo `json:"error,omitempty"`
	CacheHit bool               `json:"cache_hit,omitempty"`
	At       time.Time          `json:"at"`
}

func NewEvent(number int, ev backend.Event) Event {
	data := ev.Data
	if string(data) == "null" {
		data = nil
	}
	return Event{Number: number, Seq: ev.Seq, Kind: ev.Kind, Name: ev.Name, Data: data, Error: ev.Error,
		CacheHit: ev.CacheHit, At: ev.At.UTC()}
}

// LogLine is one printed line as `logs --json` prints it (one object per line).
type LogLine struct {
	Run     int       `json:"run"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// DeadLetter is a dead letter as `dlq list --json` (one per line) and `dlq show`
// print it.
type DeadLetter struct {
	ID          int64              `json:"id"`
	ExecutionID string             `json:"execution_id"`
	Seq         int                `json:"seq"`
	Activity    string             `json:"activity"`
	Payload     json.RawMessage    `json:"payload"`
	Error       *backend.ErrorInfo `json:"error,omitempty"`
	Status      string             `json:"status"` // open, replayed, discarded
	CreatedAt   time.Time          `json:"created_at"`
}

func NewDeadLetter(d *backend.DeadLetter) DeadLetter {
	payload := d.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	}
	return DeadLetter{ID: d.ID, ExecutionID: d.ExecutionID, Seq: d.Seq, Activity: d.Activity, Payload: payload,
		Error: d.Error, Status: d.Status, CreatedAt: d.CreatedAt.UTC()}
}

// CacheClear is what `cache clear --json` prints.
type CacheClear struct {
	Activity string `json:"activity,omitempty"` // empty: every activity
	Cleared  int    `json:"cleared"`
}

// Status is what `status --json` prints and GET /api/v1/executions/{id} returns: the
// execution and, while it runs, what it waits for.
type Status struct {
	Execution
	WaitingFor   []engine.Wait     `json:"waiting_for,omitempty"`
	CustomStatus json.RawMessage   `json:"custom_status,omitempty"` // set_status(value): the latest value
	Tags         map[string]string `json:"tags,omitempty"`          // given at dispatch or by set_tags
	NeedsWorker  []string          `json:"needs_worker,omitempty"`  // steps no live worker can take
	// ResetFrom is the execution this one runs again from a step (stent reset);
	// ResetInto the executions this one was reset into.
	ResetFrom *backend.ResetLink  `json:"reset_from,omitempty"`
	ResetInto []backend.ResetLink `json:"reset_into,omitempty"`
}

// NewStatus shows ex and its description as they are at now.
func NewStatus(ex *backend.Execution, d *engine.Description, now time.Time) Status {
	return Status{Execution: NewExecution(ex, now), WaitingFor: d.Waits, CustomStatus: d.CustomStatus, Tags: d.Tags,
		NeedsWorker: d.NeedsWorker, ResetFrom: d.ResetFrom, ResetInto: d.ResetInto}
}

// Worker is a live worker as `workers --json` prints it (one per line) and
// GET /api/v1/workers lists it.
type Worker struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Queues      []string  `json:"queues"` // [] = every queue
	Activities  []string  `json:"activities"`
	Concurrency int       `json:"concurrency"`
	InFlight    int       `json:"tasks_in_flight"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"last_heartbeat_at"`
}

func NewWorker(w *backend.WorkerInfo) Worker {
	j := Worker{ID: w.ID, Host: w.Host, PID: w.PID, Queues: w.Queues, Activities: w.Activities,
		Concurrency: w.Concurrency, InFlight: w.InFlight, StartedAt: w.StartedAt.UTC(), HeartbeatAt: w.HeartbeatAt.UTC()}
	if j.Queues == nil {
		j.Queues = []string{}
	}
	if j.Activities == nil {
		j.Activities = []string{}
	}
	return j
}

// Schedule is a schedule as `schedule list --json` (one per line) and
// `schedule show --json` (with its latest ticks) print it.
type Schedule struct {
	ID              string          `json:"id"`
	Cron            string          `json:"cron"`
	Timezone        string          `json:"timezone"`
	Overlap         string          `json:"overlap"` // skip, buffer_one, allow
	CatchupMS       int64           `json:"catchup_ms"`
	JitterMS        int64           `json:"jitter_ms"`
	Script          string          `json:"script"`
	Entry           string          `json:"entry"`
	Args            json.RawMessage `json:"args"`
	Queue           string          `json:"queue"`
	Paused          bool            `json:"paused"`
	PausedReason    string          `json:"paused_reason,omitempty"` // why the scheduler paused it
	NextAt          time.Time       `json:"next_at"`
	BufferedAt      *time.Time      `json:"buffered_at,omitempty"`
	LastExecutionID string          `json:"last_execution_id,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	Ticks           []ScheduleTick  `json:"ticks,omitempty"`
}

// ScheduleTick is what one tick of a schedule did (dispatched, triggered, buffered,
// skipped, missed), newest first in Schedule.Ticks.
type ScheduleTick struct {
	TickAt      time.Time `json:"tick_at"`
	Outcome     string    `json:"outcome"`
	ExecutionID string    `json:"execution_id,omitempty"`
	At          time.Time `json:"at"`
}

// NewSchedule shows s with ticks (newest first; none for a list).
func NewSchedule(s *backend.Schedule, ticks []backend.ScheduleTick) Schedule {
	args := s.Args
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	j := Schedule{ID: s.ID, Cron: s.Spec, Timezone: s.Timezone, Overlap: s.Overlap,
		CatchupMS: s.Catchup.Milliseconds(), JitterMS: s.Jitter.Milliseconds(), Script: s.Bundle.Main, Entry: s.Entry,
		Args: args, Queue: s.Queue, Paused: s.Paused, PausedReason: s.PausedReason, NextAt: s.NextAt.UTC(), BufferedAt: utcPtr(s.BufferedAt),
		LastExecutionID: s.LastExecutionID, CreatedAt: s.CreatedAt.UTC()}
	for _, t := range ticks {
		j.Ticks = append(j.Ticks, ScheduleTick{TickAt: t.TickAt.UTC(), Outcome: t.Outcome, ExecutionID: t.ExecutionID, At: t.At.UTC()})
	}
	return j
}
