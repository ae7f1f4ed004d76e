package postgres

import (
	"encoding/json"

	"github.com/stent-go/stent/backend"
)

// finishInfo is how an execution ends: its status, the result and error to store and
// the last event to append.
type finishInfo struct {
	status       backend.Status
	result, errv *string
	event        backend.NewEvent
}

func newFinishInfo(f backend.Finish) (finishInfo, error) {
	fi := finishInfo{status: f.Status}
	if f.Status == backend.StatusCompleted {
		result := f.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		fi.result = jsonArg(result)
		fi.event = backend.NewEvent{Kind: backend.EventCompleted, Data: result}
		return fi, nil
	}
	info := f.Error
	if info == nil {
		info = &backend.ErrorInfo{Message: "execution " + string(f.Status), Type: string(f.Status)}
	}
	var err error
	if fi.errv, err = errArg(info); err != nil {
		return fi, err
	}
	fi.event = backend.NewEvent{Kind: backend.EventFailed, Error: info}
	return fi, nil
}

// activityOf returns the activity name of an activity task's payload (its "name"),
// nil when there is none.
func activityOf(payload json.RawMessage) *string {
	var p struct {
		Name string `json:"name"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil || p.Name == "" {
		return nil
	}
	return &p.Name
}
