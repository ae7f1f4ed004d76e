package stent

import (
	"context"

	"github.com/stent-go/stent/backend"
)

// CreateSchedule creates schedule id running script (pinned now) at every
// tick of o.Cron. Problems with the options or the script are *InputError;
// an existing ID is an error too.
func (e *Engine) CreateSchedule(ctx context.Context, id, script string, o ScheduleOptions) (*Schedule, error) {
	return e.e.CreateSchedule(ctx, id, script, o)
}

// GetSchedule returns a schedule; the error wraps backend.ErrNotFound when
// there is none.
func (e *Engine) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	return e.e.GetSchedule(ctx, id)
}

// ListSchedules lists every schedule by ID.
func (e *Engine) ListSchedules(ctx context.Context) ([]Schedule, error) {
	return e.e.ListSchedules(ctx)
}

// UpdateSchedule changes a schedule's definition; a new cron expression or
// timezone takes effect from the next tick after now, a Script re-pins it.
func (e *Engine) UpdateSchedule(ctx context.Context, id string, u ScheduleUpdate) (*Schedule, error) {
	return e.e.UpdateSchedule(ctx, id, u)
}

// PauseSchedule stops a schedule's ticks until ResumeSchedule.
func (e *Engine) PauseSchedule(ctx context.Context, id string) error {
	return e.e.PauseSchedule(ctx, id)
}

// ResumeSchedule restarts a paused schedule from its next tick after now:
// the ticks of the paused time are not caught up.
func (e *Engine) ResumeSchedule(ctx context.Context, id string) error {
	return e.e.ResumeSchedule(ctx, id)
}

// DeleteSchedule deletes a schedule (the executions it started are kept).
func (e *Engine) DeleteSchedule(ctx context.Context, id string) error {
	return e.e.DeleteSchedule(ctx, id)
}

// TriggerSchedule starts an execution of the schedule now, outside its ticks
// (also when paused), with the ID "SCHEDULE@NOW"; it returns that ID.
func (e *Engine) TriggerSchedule(ctx context.Context, id string) (string, error) {
	return e.e.TriggerSchedule(ctx, id)
}

// ScheduleTicks returns the latest tick records of a schedule (dispatched,
// triggered, buffered, skipped), newest first.
func (e *Engine) ScheduleTicks(ctx context.Context, id string, limit int) ([]ScheduleTick, error) {
	return e.e.ScheduleTicks(ctx, id, limit)
}

// Prune deletes the ended executions that match o, batch by batch.
func (e *Engine) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	return e.e.Prune(ctx, o)
}

// Replay replays the recorded history of execution id against its pinned
// script, or against script (a path, with the files it loads) when not empty,
// and reports the first divergence. Nothing is written.
func (e *Engine) Replay(ctx context.Context, id, script string) (*ReplayReport, error) {
	return e.e.Replay(ctx, id, script)
}

// Upgrade re-pins execution id (running or failed) to script when its recorded
// history replays compatibly against it, appending an upgraded event with the
// old and new bundle hashes; an incompatible execution is left untouched and
// its report names the divergence. With dryRun nothing is written.
func (e *Engine) Upgrade(ctx context.Context, id, script string, dryRun bool) (*ReplayReport, error) {
	return e.e.Upgrade(ctx, id, script, dryRun)
}

// DeadLetters lists dead letters (status "open", "replayed", "discarded" or ""
// for all).
func (e *Engine) DeadLetters(ctx context.Context, status string, limit int) ([]backend.DeadLetter, error) {
	return e.e.DeadLetters(ctx, status, limit)
}

// ReplayDeadLetter runs a dead-lettered step again and resumes its execution,
// which had failed because of it. Fix the step's cause first.
func (e *Engine) ReplayDeadLetter(ctx context.Context, id int64) error {
	return e.e.ReplayDeadLetter(ctx, id)
}

// ClearCache forgets cached activity results of one activity, or of all when
// name is "".
func (e *Engine) ClearCache(ctx context.Context, name string) (int, error) {
	return e.e.ClearCache(ctx, name)
}

// Reset starts a new execution, "ID-r1" (or the next free "-rN"), that runs ended
// execution id again from step (a sequence number, as `stent history` shows it):
// the recorded results of the steps before it are reused, not run again (nor are
// children's), and step onward runs for real, on o.Script or the pinned script.
// The script must replay the steps before step as recorded; when it does not, the
// error is a *ResetMismatchError naming the first differing step, and nothing is
// created. The two executions are linked both ways (see ResetLinks).
func (e *Engine) Reset(ctx context.Context, id string, step int, o ResetOptions) (*ResetReport, error) {
	return e.e.Reset(ctx, id, step, o)
}

// ResetLinks reads how execution id is linked by resets: the execution it runs
// again (nil when a reset did not start it) and those it was reset into.
func (e *Engine) ResetLinks(ctx context.Context, id string) (*backend.ResetLink, []backend.ResetLink, error) {
	return e.e.ResetLinks(ctx, id)
}
