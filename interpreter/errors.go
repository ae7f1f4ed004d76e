package interpreter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// NonDeterminismError reports a replay that issued another step than history recorded.
type NonDeterminismError struct {
	Seq      int
	Recorded string // the recorded call, with its position
	Current  string // the call the script makes now
	Pos      string // where the script makes it
}

func (e *NonDeterminismError) Error() string {
	return fmt.Sprintf("non-determinism at %s: step %d was recorded as %s, but the script now calls %s; "+
		"a workflow must issue the same steps on replay: read time, randomness and outside state only through recorded builtins (now, uuid, random, durable)",
		e.Pos, e.Seq, e.Recorded, e.Current)
}

func describeCommand(c builtins.Command, hash string) string {
	switch c.Kind {
	case builtins.KindTimer:
		var o builtins.TimerOptions
		_ = json.Unmarshal(c.Options, &o)
		return fmt.Sprintf("sleep(%s)", time.Duration(o.DurationMS)*time.Millisecond)
	case builtins.KindChild:
		return fmt.Sprintf("durable(%s, args #%s)", c.Name, hash)
	case builtins.KindSignal:
		return fmt.Sprintf("wait_signal(%q)", c.Name)
	}
	return fmt.Sprintf("durable(%q, args #%s)", c.Name, hash)
}

func describeEvent(ev backend.Event) string {
	var d ScheduledData
	_ = json.Unmarshal(ev.Data, &d)
	switch ev.Kind {
	case backend.EventSideEffect:
		return ev.Name + "()"
	case backend.EventTimerScheduled:
		var o builtins.TimerOptions
		_ = json.Unmarshal(d.Options, &o)
		return fmt.Sprintf("sleep(%s) at %s", time.Duration(o.DurationMS)*time.Millisecond, d.Pos)
	case backend.EventChildScheduled:
		return fmt.Sprintf("durable(%s, args #%s) at %s", ev.Name, d.Hash, d.Pos)
	case backend.EventSignalWait:
		return fmt.Sprintf("wait_signal(%q) at %s", ev.Name, d.Pos)
	case backend.EventActivityScheduled:
		return fmt.Sprintf("durable(%q, args #%s) at %s", ev.Name, d.Hash, d.Pos)
	}
	return string(ev.Kind)
}

// errorInfo turns a script's failure into the stored error.
func errorInfo(err error) *backend.ErrorInfo {
	info := &backend.ErrorInfo{Type: "script", Message: err.Error()}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		info.Stack = boundedStack(ee.CallStack)
		pos := innermostPos(ee.CallStack)
		msg := ee.Msg
		if pos != "" && !strings.HasPrefix(msg, pos) {
			msg = pos + ": " + msg
		}
		info.Message = msg
	}
	var nd *NonDeterminismError
	if errors.As(err, &nd) {
		info.Type = "nondeterminism"
		info.Message = nd.Error()
	}
	if se, ok := builtins.IsStepError(err); ok {
		info.Type = se.Info.Type
		if info.Type == "" {
			info.Type = "ActivityError"
		}
		info.Activity = se.Info.Activity
		if se.Kind == builtins.KindActivity {
			info.Activity = se.Target
		}
		info.Attempts = se.Info.Attempts
		info.Seq = se.Seq
	}
	return BoundError(info)
}

func innermostPos(stack starlark.CallStack) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if fn := stack[i].Pos.Filename(); fn != "" && fn != "<builtin>" {
			return stack[i].Pos.String()
		}
	}
	return ""
}

// scriptError formats an error from compiling or initialising a file.
func scriptError(err error) error {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		if pos := innermostPos(ee.CallStack); pos != "" && !strings.HasPrefix(ee.Msg, pos) {
			return fmt.Errorf("%s: %s", pos, ee.Msg)
		}
	}
	return err
}
