package backend

import (
	"context"
	"encoding/json"
	"time"
)

// Overlap policies of a schedule: what a tick does while the execution of an earlier
// tick still runs.
const (
	OverlapSkip      = "skip"       // the tick is skipped (recorded)
	OverlapBufferOne = "buffer_one" // one tick waits for the running execution to end; more are skipped
	OverlapAllow     = "allow"      // the tick starts another execution
)

// Outcomes of a schedule tick.
const (
	TickDispatched     = "dispatched"
	TickTriggered      = "triggered"       // started by hand (stent schedule trigger)
	TickBuffered       = "buffered"        // held back by overlap=buffer_one
	TickSkippedMissed  = "skipped_missed"  // its time passed beyond the catch-up window
	TickSkippedOverlap = "skipped_overlap" // an earlier tick's execution still ran
)

// Schedule is a stored cron schedule: a pinned script, its entry and arguments, run at
// every tick of Spec.
type Schedule struct {
	ID       string
	Spec     string // cron expression: 5 fields, or a descriptor (@daily, @every 1h, …)
	Timezone string // IANA name the fields are read in
	Overlap  string
	Catchup  time.Duration // ticks later than this are skipped
	Jitter   time.Duration // each execution starts up to this much after its tick
	Bundle   Bundle
	Entry    string
	Args     json.RawMessage
	Queue    string
	Paused   bool
	// PausedReason says why the scheduler paused the schedule (its next fire time could
	// not be computed); "" when paused by hand or not paused.
	PausedReason string
	// NextAt is the first tick not processed yet.
	NextAt time.Time
	// BufferedAt is a tick held back by overlap=buffer_one, if any.
	BufferedAt *time.Time
	// LastExecutionID is the execution of the latest tick that started one.
	LastExecutionID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ScheduleTick records what happened to one tick.
type ScheduleTick struct {
	TickAt      time.Time
	Outcome     string
	ExecutionID string // of dispatched and triggered ticks
	At          time.Time
}

// ScheduleAdvance is the outcome of processing a claimed schedule's due ticks,
// committed atomically by AdvanceSchedule.
type ScheduleAdvance struct {
	ID string
	// LeaseUntil is the lease the schedule was claimed with (Schedule.UpdatedAt is not
	// used): a schedule updated, deleted or claimed again since writes nothing.
	LeaseUntil time.Time
	// Trigger: a run by hand; no lease is checked and NextAt and BufferedAt are kept.
	Trigger bool
	// Pause, when not empty, pauses the schedule with this reason (its next fire time
	// could not be computed); NextAt is stored as given.
	Pause           string
	NextAt          time.Time
	BufferedAt      *time.Time
	LastExecutionID string
	// Executions to create (an ID that exists already is left alone).
	Executions []NewExecution
	Ticks      []ScheduleTick
}

// Schedules is an optional extension of Backend, implemented by both stores: cron
// schedules. Workers claim due schedules (ClaimDueSchedules) so that one process at a
// time processes a schedule's ticks; the deterministic execution IDs of ticks make a
// tick start one execution however many processes race.
type Schedules interface {
	// CreateSchedule stores s (NextAt set by the caller) and the sources of its
	// bundle; created is false (and nothing is written) when the ID exists.
	CreateSchedule(ctx context.Context, s Schedule, sources map[string][]byte) (created bool, err error)
	// GetSchedule returns ErrNotFound when there is no such schedule.
	GetSchedule(ctx context.Context, id string) (*Schedule, error)
	// ListSchedules lists every schedule by ID.
	ListSchedules(ctx context.Context) ([]Schedule, error)
	// UpdateSchedule replaces the definition of an existing schedule (every field but
	// ID, CreatedAt, BufferedAt and LastExecutionID; PausedReason included), storing new sources, and drops any
	// lease on it. ErrNotFound when there is none.
	UpdateSchedule(ctx context.Context, s Schedule, sources map[string][]byte) error
	// DeleteSchedule deletes a schedule and its tick records; ErrNotFound when there is
	// none. Executions it started are kept.
	DeleteSchedule(ctx context.Context, id string) error
	// ScheduleTicks returns the latest tick records of a schedule, newest first.
	ScheduleTicks(ctx context.Context, id string, limit int) ([]ScheduleTick, error)
	// ClaimDueSchedules leases up to limit unpaused schedules that have a due tick
	// (NextAt at or before now) or a buffered one whose LastExecutionID is no longer
	// running, and no unexpired lease, until
	// now+lease; concurrent claimers never get the same one. The returned schedules'
	// UpdatedAt is unchanged; the lease is returned as LeaseUntil of each.
	ClaimDueSchedules(ctx context.Context, limit int, lease time.Duration) ([]ClaimedSchedule, error)
	// AdvanceSchedule commits a.Executions (with their first workflow tasks), the tick
	// records and the schedule's new NextAt, BufferedAt and LastExecutionID (when not
	// empty), releasing the lease, in one transaction. ErrLeaseLost when the lease no
	// longer holds (nothing is written).
	AdvanceSchedule(ctx context.Context, a ScheduleAdvance) error
	// NextScheduleAt returns the earliest NextAt of the unpaused schedules.
	NextScheduleAt(ctx context.Context) (at time.Time, ok bool, err error)
}

// ClaimedSchedule is a schedule claimed by ClaimDueSchedules, with its lease.
type ClaimedSchedule struct {
	Schedule
	LeaseUntil time.Time
}

// EncodeSchedule returns a schedule's bundle and arguments as the JSON text stores
// keep (no arguments: an empty list).
func EncodeSchedule(s Schedule) (bundle, args string, err error) {
	b, err := json.Marshal(s.Bundle)
	if err != nil {
		return "", "", err
	}
	args = string(s.Args)
	if args == "" {
		args = "[]"
	}
	return string(b), args, nil
}
