package engine

import (
	"context"
	"fmt"
	"sync"
)

// startFailure remembers why a worker of this engine could not start, so that a
// WaitFor in the same process (stent exec: dispatch, serve, wait) ends with that error
// instead of waiting for a worker that will never run.
type startFailure struct {
	once sync.Once
	done chan struct{} // closed at the first failure
	err  error
}

func (f *startFailure) init() { f.done = make(chan struct{}) }

// fail records err (the first one wins).
func (f *startFailure) fail(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.done)
	})
}

// workerStartFailed is Serve's return when the worker cannot start: the error, also
// handed to WaitFor callers of this engine (unless the start was merely cancelled).
func (e *Engine) workerStartFailed(ctx context.Context, err error) error {
	err = fmt.Errorf("starting worker: %w", err)
	if ctx.Err() == nil {
		e.startFailed.fail(err)
	}
	return err
}
