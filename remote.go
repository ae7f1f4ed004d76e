package stent

import "github.com/stent-go/stent/internal/engine"

// RemoteActivities hands activity attempts to processes that poll for them, in any
// language (the HTTP API's /api/v1/activity-tasks): the process running it is their
// worker. A poll claims one attempt of the polled activity names and hands it over
// under a random token; the poller heartbeats, then completes or fails it. Leases,
// retries (the call's retry options), attempt_failed events, dead letters and the
// result cache are those of Go activities; a poller silent for the heartbeat timeout
// loses its attempt, which counts as failed and is retried per the policy. Tokens live
// in this process: when it stops, the attempts its pollers hold are handed back.
type RemoteActivities = engine.RemoteActivities

// RemoteOptions configures RemoteActivities.
type RemoteOptions = engine.RemoteOptions

// RemotePoll is a poll for one remote activity attempt.
type RemotePoll = engine.RemotePoll

// RemoteTask is an attempt handed to a poller.
type RemoteTask = engine.RemoteTask

// RemoteHeartbeat answers a poller's heartbeat.
type RemoteHeartbeat = engine.RemoteHeartbeat

var (
	// ErrRemoteTaskUnknown: no attempt has the token (never, or forgotten since).
	ErrRemoteTaskUnknown = engine.ErrRemoteTaskUnknown
	// ErrRemoteTaskEnded: the attempt was completed or failed already, or was lost.
	ErrRemoteTaskEnded = engine.ErrRemoteTaskEnded
)

// NewRemoteActivities returns the engine's worker for remote activities; call its Run
// to serve polls.
func (e *Engine) NewRemoteActivities(opts RemoteOptions) *RemoteActivities {
	return e.e.NewRemoteActivities(opts)
}
