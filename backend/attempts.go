package backend

import (
	"encoding/json"
	"time"
)

// AttemptData is the Data of an activity_attempt_failed event: which attempt failed,
// on which worker, and when it ran.
type AttemptData struct {
	Attempt   int       `json:"attempt"`
	Worker    string    `json:"worker,omitempty"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
}

// AttemptFailedEvent is the activity_attempt_failed event of an attempt of the
// activity name at seq that failed with info and is retried.
func AttemptFailedEvent(seq int, name string, d AttemptData, info *ErrorInfo) *NewEvent {
	data, _ := json.Marshal(d) // plain fields: cannot fail
	return &NewEvent{Seq: seq, Kind: EventActivityAttemptFailed, Name: name, Data: data, Error: info}
}
