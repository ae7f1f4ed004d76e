package engine

import (
	"encoding/json"
	"fmt"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/interpreter"
)

// DefaultMaxPayload bounds one value crossing a checkpoint (execution arguments, a
// step's arguments or result, a signal's payload, an execution's result).
const DefaultMaxPayload = 16 << 20

// WithMaxPayload sets the largest value, in bytes of JSON, that may cross a checkpoint:
// the arguments of a dispatch or of a step, an activity's result, a signal's payload and
// an execution's result (default DefaultMaxPayload; 0 or less keeps the default). A
// larger one fails the call or the step with its size and the limit.
func WithMaxPayload(n int) Option { return func(o *engineConfig) { o.maxPayload = n } }

func (e *Engine) maxPayload() int { return positiveOr(e.cfg.maxPayload, DefaultMaxPayload) }

// checkPayload says when what (e.g. "arguments") is over the payload limit.
func (e *Engine) checkPayload(what string, v json.RawMessage) error {
	if n, limit := len(v), e.maxPayload(); n > limit {
		return fmt.Errorf("%s %s %s bytes, over the payload limit of %s bytes (raise it with --max-payload or stent.WithMaxPayload, or pass a reference to the data instead)", what, isOrAre(what), groupDigits(n), groupDigits(limit))
	}
	return nil
}

// checkStepPayloads turns a step that would store an oversized value into the failure
// of the script, at the call that made it.
func (e *Engine) checkStepPayloads(step *interpreter.Step) *interpreter.Step {
	for _, s := range step.Scheduled {
		if s.Command == nil || (s.Command.Kind != builtins.KindActivity && s.Command.Kind != builtins.KindChild) {
			continue
		}
		if err := e.checkPayload("arguments", s.Command.Args); err != nil {
			var d interpreter.ScheduledData
			_ = json.Unmarshal(s.Data, &d)
			msg := fmt.Sprintf("%s: durable(%q): %v", d.Pos, s.Name, err)
			return &interpreter.Step{Done: true, Logs: step.Logs, Err: &backend.ErrorInfo{Type: "payload_too_large", Message: msg}}
		}
	}
	if step.Done && step.Err == nil {
		if err := e.checkPayload("the result", step.Result); err != nil {
			return &interpreter.Step{Done: true, Logs: step.Logs, Err: &backend.ErrorInfo{Type: "payload_too_large", Message: err.Error()}}
		}
		if err := e.checkPayload("the arguments of continue_as_new", step.ContinueAsNew); err != nil {
			return &interpreter.Step{Done: true, Logs: step.Logs, Err: &backend.ErrorInfo{Type: "payload_too_large", Message: err.Error()}}
		}
	}
	return step
}

func isOrAre(what string) string {
	if what == "arguments" || len(what) > 10 && what[len(what)-9:] == "arguments" {
		return "are"
	}
	return "is"
}

// groupDigits writes n with thousands separators: 16,777,216.
func groupDigits(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
