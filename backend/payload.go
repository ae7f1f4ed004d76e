package backend

import "encoding/json"

// PayloadPriority is the priority an activity task payload was scheduled with (the
// "priority" of its options, as the engine writes them), else 0. A dead-letter replay
// uses it, so the replayed attempt keeps the priority of the one that failed.
func PayloadPriority(payload json.RawMessage) int {
	var p struct {
		Options struct {
			Priority int `json:"priority"`
		} `json:"options"`
	}
	_ = json.Unmarshal(payload, &p)
	return p.Options.Priority
}

// PayloadName reads the activity name from an activity task's payload ("" when absent).
func PayloadName(payload json.RawMessage) string {
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(payload, &p)
	return p.Name
}
