package engine

import (
	"fmt"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// poisonPillType is the error type of an execution failed as a poison pill.
const poisonPillType = "poison_pill"

// DefaultCrashLimit is how many times a step may kill the worker running it before
// its execution is failed (see WithCrashLimit).
const DefaultCrashLimit = 3

// WithCrashLimit sets how many times one step of a script may take its worker down
// (the worker died or lost its lease while running it) before the execution fails
// instead of killing the next worker; default DefaultCrashLimit. For activities the
// deaths count as attempts against the retry policy, and an activity is not run again
// after more deaths than this limit and its policy's attempts allow.
func WithCrashLimit(n int) Option { return func(o *engineConfig) { o.crashLimit = n } }

func (e *Engine) crashLimit() int { return positiveOr(e.cfg.crashLimit, DefaultCrashLimit) }

// poisonPill is the failure of an execution whose current step killed its workers
// crashLimit times, with a dead letter that records it; nil while under the limit.
func (e *Engine) poisonPill(ex *backend.Execution) *interpreter.Step {
	if ex.Crashes < e.crashLimit() {
		return nil
	}
	info := &backend.ErrorInfo{
		Type: poisonPillType,
		Message: fmt.Sprintf("the workflow step after checkpoint %d killed the worker running it %d times (a crash, out of memory, or a lost lease); "+
			"the execution is failed so that it does not kill another worker: fix the script or the cause, then dispatch it again", ex.Version, ex.Crashes),
	}
	e.logger.Error("poison pill: failing an execution whose step keeps killing workers", "execution_id", ex.ID, "crashes", ex.Crashes)
	return &interpreter.Step{Done: true, Err: info}
}

// activityCrashed is the failure of an activity attempt that must not run again: its
// workers died during more attempts than its policy and the crash limit allow.
func (e *Engine) activityCrashed(name string, attempt, maxAttempts int) error {
	limit := max(maxAttempts, e.crashLimit())
	if attempt <= limit {
		return nil
	}
	return fmt.Errorf("activity %q: the workers running it died (attempt limit %d, crashes included); it is not run again", name, limit)
}
