package backend

import (
	"context"
	"encoding/json"
)

// CustomStatusName is the name of the side_effect event set_status() records: the
// latest one is the execution's custom status.
const CustomStatusName = "set_status"

// Events of fix-and-resume. Neither carries a script step: replay ignores upgraded, and
// retried clears the recorded failure of its Seq (when not 0) so the step runs again.
const (
	// EventUpgraded: the execution was re-pinned to another bundle. Data:
	// {"old": hash, "new": hash} (bundle hashes).
	EventUpgraded EventKind = "upgraded"
	// EventRetried: a failed execution was resumed. Seq is the failed step that runs
	// again (0: the script goes on from its error, usually after an upgrade). Data:
	// {"error": the failure it resumes from}.
	EventRetried EventKind = "retried"
)

// Repairer is an optional extension of Backend for custom statuses and fix-and-resume
// (stent upgrade, stent retry). Both backends implement it.
type Repairer interface {
	// CustomStatus returns the Data of the execution's latest set_status side effect,
	// or nil when it has none.
	CustomStatus(ctx context.Context, executionID string) (json.RawMessage, error)
	// UpgradeExecution re-pins a running or failed execution whose Version is still
	// expectedVersion: in one transaction the sources are stored (content-addressed),
	// the bundle replaced, an upgraded event with data appended and the version bumped,
	// so live runs of the old bundle are stale. ErrStaleExecution when the version moved
	// or the execution is in another state; ErrNotFound when it does not exist.
	UpgradeExecution(ctx context.Context, executionID string, expectedVersion int64, bundle Bundle, sources map[string][]byte, data json.RawMessage) error
	// RetryExecution resumes a failed execution: in one transaction it is set running
	// (result, error and completed_at cleared), a retried event (seq, data) appended and
	// the version bumped; then task (an activity attempt, seq's step) is created when
	// given, else the workflow task, runnable now; the open dead letters of seq's step
	// (when seq is not 0) are marked retried. History is kept: nothing is deleted.
	// An error wrapping ErrNotRunning when the execution is not failed.
	RetryExecution(ctx context.Context, executionID string, seq int, data json.RawMessage, task *NewTask) error
}

// Events of `stent reset`, which link an execution and the new execution that runs it
// again from one of its steps. Neither carries a script step: replay ignores both.
const (
	// EventResetInto, in the reset execution's history: it was reset into another.
	// Data: ResetLink (ID: the new execution).
	EventResetInto EventKind = "reset_into"
	// EventResetFrom, in the new execution's history right after its started event: it
	// runs execution Data.ID again from step Data.Step. Data: ResetLink.
	EventResetFrom EventKind = "reset_from"
)

// ResetLink is the Data of reset_into and reset_from events: the other execution, the
// step (sequence number) the new one ran from, and the script it ran on.
type ResetLink struct {
	ID     string `json:"id"`
	Step   int    `json:"step"`
	Script string `json:"script,omitempty"`
}

// Resetter is an optional extension of Backend for `stent reset`. Both backends
// implement it.
type Resetter interface {
	// ResetExecution creates execution e as CreateExecution does (its started event and
	// first workflow task), stores prefix after its started event (events copied from
	// execution from, in order: a reset_from event, then the recorded steps the new
	// execution reuses), and appends a reset_into event with intoData to from's history,
	// in one transaction. An existing e.ID writes nothing and returns false; a missing
	// from returns an error wrapping ErrNotFound and writes nothing.
	ResetExecution(ctx context.Context, e NewExecution, prefix []NewEvent, from string, intoData json.RawMessage) (bool, error)
}
