package engine

import (
	"encoding/json"
	"sync"

	"github.com/stent-go/stent/backend"
)

// maxFinalResults bounds the results held for waiters that went away before taking
// theirs.
const maxFinalResults = 1024

// finalResults hands the result of an execution that finished in this process straight
// to a WaitFor waiting for it here, so the waiter does not read the execution back.
// A result is kept only while someone waits for it, and taken once.
type finalResults struct {
	mu sync.Mutex
	m  map[string]*Result
}

// deliverResult keeps the result of id, just committed by this process, if a WaitFor
// waits for it here.
func (e *Engine) deliverResult(id string, f *backend.Finish) {
	if f == nil || !e.finished.waited(id) {
		return
	}
	r := &Result{ID: id, Status: f.Status, Value: f.Result, Failure: f.Error}
	if f.Status == backend.StatusCompleted {
		if len(r.Value) == 0 {
			r.Value = json.RawMessage("null")
		}
		r.Failure = nil
	} else {
		r.Value = nil
		if r.Failure == nil {
			r.Failure = &backend.ErrorInfo{Message: "execution " + string(f.Status), Type: string(f.Status)}
		}
	}
	h := &e.finals
	h.mu.Lock()
	if h.m == nil || len(h.m) >= maxFinalResults {
		h.m = map[string]*Result{}
	}
	h.m[id] = r
	h.mu.Unlock()
}

// takeResult returns (and forgets) the result delivered for id, if any.
func (e *Engine) takeResult(id string) *Result {
	h := &e.finals
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[id]
	delete(h.m, id)
	return r
}

// waited reports whether someone waits for id to finish.
func (h *finishHub) waited(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters[id]) > 0
}
