package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// ErrIDConflict is what Dispatch returns (as an *IDConflictError inside an *InputError)
// when the ID it is given names an execution of another script, entry function or
// other arguments: an execution ID is an idempotency key, and the same key with a
// different request is the caller's mistake, not a request for the existing result.
var ErrIDConflict = errors.New("execution ID already in use")

// IDConflictError says which execution holds the ID and how the request differs.
type IDConflictError struct {
	ID string
	// Script and Entry are the existing execution's.
	Script, Entry string
	// Differs is what differs: "script", "entry function" or "arguments".
	Differs string
}

func (e *IDConflictError) Error() string {
	what := "with other arguments"
	switch e.Differs {
	case "script":
		what = "(another script)"
	case "entry function":
		what = fmt.Sprintf("with entry function %s", e.Entry)
	}
	return fmt.Sprintf("execution %s already exists for %s %s: pass the same script and arguments to get it back, or use another ID", e.ID, e.Script, what)
}

// Is makes errors.Is(err, ErrIDConflict) hold.
func (e *IDConflictError) Is(target error) bool { return target == ErrIDConflict }

// sameRequest checks that dispatching script's entry with args under an ID that ex
// already holds asks for ex: the same script path, entry function and arguments (the
// arguments of its first run: continue_as_new replaces them, so a continued execution
// is matched on script and entry alone).
func sameRequest(ex *backend.Execution, script, entry string, args json.RawMessage) error {
	conflict := &IDConflictError{ID: ex.ID, Script: ex.Bundle.Main, Entry: ex.Entry}
	switch {
	case ex.Bundle.Main != filepath.ToSlash(filepath.Clean(script)):
		conflict.Differs = "script"
	case ex.Entry != entry:
		conflict.Differs = "entry function"
	case ex.Run <= 1 && !sameJSON(ex.Args, args):
		conflict.Differs = "arguments"
	default:
		return nil
	}
	return &InputError{Err: conflict}
}

// sameJSON compares two JSON documents by value (key order and spacing aside; numbers
// exactly).
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) {
		return true
	}
	va, errA := decodeExact(a)
	vb, errB := decodeExact(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeExact(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("[]")
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// notePinnedVersion warns, once per execution and process, when the script file of an
// execution that is being resumed by ID changed since it was pinned: the pinned
// version runs, and `stent upgrade` is how to move the execution to the new one.
func (e *Engine) notePinnedVersion(ex *backend.Execution, modulePath string) {
	if ex.Status != backend.StatusRunning && ex.Status != backend.StatusFailed {
		return
	}
	bundle, _, err := interpreter.CollectBundleIn(ex.Bundle.Main, modulePath)
	if err != nil || bundleKey(bundle) == bundleKey(ex.Bundle) {
		return
	}
	if _, seen := e.pinNotes.LoadOrStore(ex.ID, true); seen {
		return
	}
	e.logger.Warn(fmt.Sprintf("%s changed since execution %s was pinned to it: the pinned version runs; to move the execution to the new version run `stent upgrade %s --script %s`",
		ex.Bundle.Main, ex.ID, ex.ID, ex.Bundle.Main))
}

// sameAsExisting checks a dispatch that lost the race to create execution id against
// the one that won.
func (e *Engine) sameAsExisting(ctx context.Context, id, script, entry string, args json.RawMessage) error {
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return fmt.Errorf("looking up execution %s: %w", id, err)
	}
	return sameRequest(ex, script, entry, args)
}
