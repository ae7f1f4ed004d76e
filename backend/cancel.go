package backend

import (
	"context"
	"encoding/json"
	"time"
)

// CancelGracePayload is the payload of the deadline task a cancellation request
// creates: when it comes due with the execution still running, the execution is ended
// as cancelled (terminated). A deadline task without it is a max-duration deadline.
var CancelGracePayload = json.RawMessage(`{"cancel_grace":true}`)

// CancelRequester is an optional extension of Backend: cancellation delivered to the
// script (Temporal's model) rather than ending the execution at once (EndExecution).
type CancelRequester interface {
	// RequestCancel asks a running execution and each of its running descendants to
	// cancel, in one transaction: for each one that has no cancel_requested event yet,
	// one is appended, its activity and timer tasks are deleted (a running activity
	// loses its lease and sees its context cancelled), its workflow task is enqueued so
	// the script sees the request, and a deadline task with CancelGracePayload is created
	// at graceUntil. requested is false (nothing written) when the execution already
	// ended; ErrNotFound when it does not exist.
	RequestCancel(ctx context.Context, executionID string, graceUntil time.Time) (requested bool, err error)
}
