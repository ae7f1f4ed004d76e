package backend

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StatusScheduled is the status shown for a running execution that has not started yet:
// it was dispatched with a delay and its StartAt is still in the future. It is never
// stored: backends store such an execution as running and derive scheduled from StartAt
// (Execution.StatusAt, ListFilter.Status, CountExecutions), so the engine's checks of
// "running" are unaffected.
const StatusScheduled Status = "scheduled"

// Statuses lists every status an execution can show, in lifecycle order.
var Statuses = []Status{StatusScheduled, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled, StatusTimedOut}

// StatusAt is the status to show for the execution at time now: StatusScheduled for a
// running execution whose StartAt is after now, else its stored status.
func (e *Execution) StatusAt(now time.Time) Status {
	if e.Status == StatusRunning && e.StartAt.After(now) {
		return StatusScheduled
	}
	return e.Status
}

// ErrBadCursor: a ListFilter.After cursor that ListCursor did not produce.
var ErrBadCursor = errors.New("malformed list cursor")

// ListCursor is the cursor that continues a list after e (ListFilter.After). It is
// opaque to callers: it encodes e's creation time and ID, the list's order.
func ListCursor(e *Execution) string {
	raw := strconv.FormatInt(e.CreatedAt.UnixMilli(), 10) + ":" + e.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeListCursor returns the creation time (unix milliseconds) and ID a cursor holds.
func DecodeListCursor(cursor string) (createdMS int64, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, "", fmt.Errorf("%w %q", ErrBadCursor, cursor)
	}
	ms, id, ok := strings.Cut(string(raw), ":")
	if !ok {
		return 0, "", fmt.Errorf("%w %q", ErrBadCursor, cursor)
	}
	createdMS, err = strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%w %q", ErrBadCursor, cursor)
	}
	return createdMS, id, nil
}
