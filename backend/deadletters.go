package backend

import "fmt"

// Dead letter states (DeadLetter.Status).
const (
	DeadLetterOpen      = "open"
	DeadLetterReplayed  = "replayed"
	DeadLetterDiscarded = "discarded"
)

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
