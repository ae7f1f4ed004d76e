package backend

import "fmt"

// Dead letter states (DeadLetter.Status). An open dead letter is resolved by
// `stent dlq replay` (replayed), `stent dlq discard` (discarded) or a retry of its
// execution that runs its step again (retried).
const (
	DeadLetterOpen      = "open"
	DeadLetterReplayed  = "replayed"
	DeadLetterDiscarded = "discarded"
	DeadLetterRetried   = "retried"
)

// DeadLetterStatuses lists every dead letter state, in the order a dead letter may
// reach them.
var DeadLetterStatuses = []string{DeadLetterOpen, DeadLetterReplayed, DeadLetterDiscarded, DeadLetterRetried}

// OpenDeadLetter is the check replaying and discarding share: given the read of dead
// letter id (notFound when there was no row), it returns the dead letter if it is
// open, else an error (wrapping ErrNotFound when there is none).
func OpenDeadLetter(id int64, d *DeadLetter, err error, notFound bool) (*DeadLetter, error) {
	switch {
	case notFound:
		return nil, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	case err != nil:
		return nil, err
	case d.Status != DeadLetterOpen:
		return nil, fmt.Errorf("dead letter %d is %s, not %s", id, d.Status, DeadLetterOpen)
	}
	return d, nil
}
