package activities

import (
	"context"
	"encoding/json"
	"strconv"
)

// Info is what an activity attempt knows about itself. The worker puts it in the
// context passed to Invoke; an activity reads it with InfoFromContext.
type Info struct {
	ExecutionID string // the execution that scheduled the activity
	Seq         int    // the command's sequence number within that execution
	Attempt     int    // 1 for the first attempt
	Name        string // the activity name
	// LastHeartbeat holds the details the previous attempt last passed to Heartbeat
	// (JSON), so a retried attempt can resume its progress. Empty on a first attempt.
	LastHeartbeat json.RawMessage
}

// IdempotencyKey identifies the activity call across attempts and workers:
// ExecutionID + "/" + Seq. Use it to make side effects idempotent (for example as
// the Idempotency-Key header of a payment API).
func (i Info) IdempotencyKey() string {
	return i.ExecutionID + "/" + strconv.Itoa(i.Seq)
}

type infoKey struct{}

type heartbeatKey struct{}

// WithInfo returns a context carrying i.
func WithInfo(ctx context.Context, i Info) context.Context {
	return context.WithValue(ctx, infoKey{}, i)
}

// InfoFromContext returns the Info installed by WithInfo, if any.
func InfoFromContext(ctx context.Context) (Info, bool) {
	i, ok := ctx.Value(infoKey{}).(Info)
	return i, ok
}

// WithHeartbeatFunc returns a context whose Heartbeat calls fn. The worker uses it to
// renew the attempt's lease and record progress details.
func WithHeartbeatFunc(ctx context.Context, fn func(details any)) context.Context {
	return context.WithValue(ctx, heartbeatKey{}, fn)
}

// Heartbeat tells the worker that the activity is alive, optionally with progress
// details. A long activity with Options.HeartbeatTimeout must call it more often than
// that timeout. It does nothing when the context has no heartbeat function.
func Heartbeat(ctx context.Context, details any) {
	if fn, ok := ctx.Value(heartbeatKey{}).(func(details any)); ok && fn != nil {
		fn(details)
	}
}
