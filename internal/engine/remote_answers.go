package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
)

// The answers of a poller holding a remote attempt, by its token: heartbeats, then
// complete or fail, each accepted once.

// deadline is when the attempt is lost without another heartbeat: now plus the
// heartbeat timeout, or the attempt's timeout when sooner.
func (rt *remoteTask) deadline(now time.Time) time.Time {
	d := now.Add(rt.hb)
	if at, ok := rt.ctx.Deadline(); ok && at.Before(d) {
		d = at
	}
	return d.UTC()
}

func (r *RemoteActivities) view(rt *remoteTask) *RemoteTask {
	v := rt.view
	return &v
}

// lookup returns the attempt of a token; with live, it must still wait for an answer.
func (r *RemoteActivities) lookup(token string) (*remoteTask, error) {
	rt, ok := r.tokens[token]
	if !ok {
		return nil, ErrRemoteTaskUnknown
	}
	return rt, nil
}

func (rt *remoteTask) endedErr() error {
	if rt.state == remoteAnswered {
		return fmt.Errorf("%w: it was completed or failed already", ErrRemoteTaskEnded)
	}
	return fmt.Errorf("%w: %s", ErrRemoteTaskEnded, rt.reason)
}

// Heartbeat tells that the poller holding token still works on it, optionally with
// progress details (JSON, given to the next attempt if this one fails).
func (r *RemoteActivities) Heartbeat(token string, details json.RawMessage) (RemoteHeartbeat, error) {
	r.mu.Lock()
	rt, err := r.lookup(token)
	if err != nil {
		r.mu.Unlock()
		return RemoteHeartbeat{}, err
	}
	switch {
	case rt.state == remoteEnded && rt.cancelled:
		r.mu.Unlock()
		return RemoteHeartbeat{Deadline: time.Now().UTC(), CancelRequested: true}, nil
	case rt.state != remoteLive:
		r.mu.Unlock()
		return RemoteHeartbeat{}, rt.endedErr()
	}
	r.seen(rt)
	r.mu.Unlock()
	var d any
	if len(details) > 0 && string(details) != "null" {
		d = details
	}
	activities.Heartbeat(rt.ctx, d)
	return RemoteHeartbeat{Deadline: rt.deadline(time.Now())}, nil
}

// Complete records the attempt's result (JSON; empty means null) once, and returns
// when its outcome is committed.
func (r *RemoteActivities) Complete(ctx context.Context, token string, result json.RawMessage) error {
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	return r.settle(ctx, token, remoteAnswer{result: result})
}

// Fail records that the attempt failed with message (of type typ, default
// "ActivityError"); it is retried per the activity's retry policy unless nonRetryable.
func (r *RemoteActivities) Fail(ctx context.Context, token, message, typ string, nonRetryable bool) error {
	if typ == "" {
		typ = activities.TypeActivityError
	}
	if message == "" {
		message = "the remote activity failed"
	}
	return r.settle(ctx, token, remoteAnswer{err: &activities.Error{Type: typ, Message: message, NonRetryable: nonRetryable}})
}

func (r *RemoteActivities) settle(ctx context.Context, token string, a remoteAnswer) error {
	r.mu.Lock()
	rt, err := r.lookup(token)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if rt.state != remoteLive {
		r.mu.Unlock()
		return rt.endedErr()
	}
	rt.state, rt.endedAt = remoteAnswered, time.Now()
	rt.answer <- a
	r.seen(rt)
	r.mu.Unlock()
	select {
	case <-rt.recorded:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the outcome of activity task %s to be recorded: %w", rt.view.ExecutionID, ctx.Err())
	}
	if errors.Is(rt.recErr, backend.ErrLeaseLost) || errors.Is(rt.recErr, backend.ErrStaleExecution) {
		return fmt.Errorf("%w: its lease was lost or its execution ended before the answer was recorded", ErrRemoteTaskEnded)
	}
	if rt.recErr != nil {
		return fmt.Errorf("recording the outcome of activity %q of %s: %w", rt.view.Activity, rt.view.ExecutionID, rt.recErr)
	}
	return nil
}

// newToken returns 128 random bits, hex-encoded.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
