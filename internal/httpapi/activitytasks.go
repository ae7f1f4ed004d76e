package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stent-go/stent"
)

// Activity workers in any language: a poller asks for an attempt of the activities it
// runs (POST /activity-tasks/poll), heartbeats while it works on it and completes or
// fails it, naming it by the token the poll returned. The server's RemoteActivities
// (Options.Remote) is their worker; see stent.RemoteActivities for the semantics.

// defaultPollWait is a poll's wait when the request names none.
const defaultPollWait = 20 * time.Second

func (a *API) activityTaskRoutes(m *routeMux) {
	m.HandleFunc("POST /api/v1/activity-tasks/poll", a.pollActivityTask)
	m.HandleFunc("POST /api/v1/activity-tasks/{token}/heartbeat", a.heartbeatActivityTask)
	m.HandleFunc("POST /api/v1/activity-tasks/{token}/complete", a.completeActivityTask)
	m.HandleFunc("POST /api/v1/activity-tasks/{token}/fail", a.failActivityTask)
}

// pollRequest is the body of POST /api/v1/activity-tasks/poll.
type pollRequest struct {
	Activities []string `json:"activities"`
	Queue      string   `json:"queue"`
	Wait       string   `json:"wait"`
}

// activityTask is an attempt handed to a poller.
type activityTask struct {
	Token       string          `json:"token"`
	Activity    string          `json:"activity"`
	Args        json.RawMessage `json:"args"`
	Attempt     int             `json:"attempt"`
	Deadline    time.Time       `json:"deadline"`
	ExecutionID string          `json:"execution_id"`
	Seq         int             `json:"seq"`
	// IdempotencyKey is execution_id/seq: the same for every attempt of the call.
	IdempotencyKey   string          `json:"idempotency_key"`
	HeartbeatTimeout string          `json:"heartbeat_timeout"`
	LastHeartbeat    json.RawMessage `json:"last_heartbeat,omitempty"`
}

// heartbeatReply answers POST /api/v1/activity-tasks/{token}/heartbeat.
type heartbeatReply struct {
	Deadline        time.Time `json:"deadline"`
	CancelRequested bool      `json:"cancel_requested"`
}

// completeRequest and failRequest are the bodies of .../complete and .../fail.
type completeRequest struct {
	Result json.RawMessage `json:"result"`
}

type failRequest struct {
	Error        string `json:"error"`
	Type         string `json:"type"`
	NonRetryable bool   `json:"non_retryable"`
}

// remote returns the server's remote activities, answering 404 when it has none.
func (a *API) remote(w http.ResponseWriter) (*stent.RemoteActivities, bool) {
	if a.opts.Remote == nil {
		a.problem(w, http.StatusNotFound, "no-activity-tasks", "this server hands out no activity tasks",
			"the server was started without remote activities")
		return nil, false
	}
	return a.opts.Remote, true
}

func (a *API) pollActivityTask(w http.ResponseWriter, r *http.Request) {
	rem, ok := a.remote(w)
	if !ok {
		return
	}
	var req pollRequest
	if !a.decode(w, r, &req) {
		return
	}
	if len(req.Activities) == 0 {
		a.problem(w, http.StatusBadRequest, "invalid-request", "no activities", `name the activities this worker runs: {"activities": ["charge"]}`)
		return
	}
	for _, n := range req.Activities {
		if n == "" {
			a.problem(w, http.StatusBadRequest, "invalid-request", "empty activity name", "every name in activities must be non-empty")
			return
		}
	}
	wait := defaultPollWait
	if req.Wait != "" {
		d, err := duration("wait", req.Wait)
		if err != nil {
			a.problem(w, http.StatusBadRequest, "invalid-request", "bad wait", err.Error())
			return
		}
		wait = d
	}
	task, err := rem.Poll(r.Context(), stent.RemotePoll{Activities: req.Activities, Queue: req.Queue, Wait: min(wait, a.opts.MaxWait)})
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		a.fail(w, err)
		return
	}
	if task == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.json(w, http.StatusOK, activityTask{
		Token: task.Token, Activity: task.Activity, Args: task.Args, Attempt: task.Attempt, Deadline: task.Deadline,
		ExecutionID: task.ExecutionID, Seq: task.Seq, IdempotencyKey: fmt.Sprintf("%s/%d", task.ExecutionID, task.Seq),
		HeartbeatTimeout: task.HeartbeatTimeout.String(), LastHeartbeat: task.LastHeartbeat,
	})
}

func (a *API) heartbeatActivityTask(w http.ResponseWriter, r *http.Request) {
	rem, ok := a.remote(w)
	if !ok {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.problem(w, http.StatusRequestEntityTooLarge, "payload-too-large", "request body too large", fmt.Sprintf("the body is over %d bytes", tooBig.Limit))
			return
		}
		a.problem(w, http.StatusBadRequest, "invalid-request", "unreadable body", err.Error())
		return
	}
	details := json.RawMessage(bytes.TrimSpace(body))
	if len(details) > 0 && !json.Valid(details) {
		a.problem(w, http.StatusBadRequest, "invalid-json", "the heartbeat details are not JSON", "send progress details as a JSON value, or no body")
		return
	}
	reply, err := rem.Heartbeat(r.PathValue("token"), details)
	if err != nil {
		a.activityTaskError(w, err)
		return
	}
	a.json(w, http.StatusOK, heartbeatReply{Deadline: reply.Deadline, CancelRequested: reply.CancelRequested})
}

func (a *API) completeActivityTask(w http.ResponseWriter, r *http.Request) {
	rem, ok := a.remote(w)
	if !ok {
		return
	}
	var req completeRequest
	if !a.decode(w, r, &req) {
		return
	}
	if err := rem.Complete(r.Context(), r.PathValue("token"), req.Result); err != nil {
		a.activityTaskError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) failActivityTask(w http.ResponseWriter, r *http.Request) {
	rem, ok := a.remote(w)
	if !ok {
		return
	}
	var req failRequest
	if !a.decode(w, r, &req) {
		return
	}
	if err := rem.Fail(r.Context(), r.PathValue("token"), req.Error, req.Type, req.NonRetryable); err != nil {
		a.activityTaskError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// activityTaskError answers an unknown token 404 and an ended attempt 409.
func (a *API) activityTaskError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, stent.ErrRemoteTaskUnknown):
		a.problem(w, http.StatusNotFound, "no-such-activity-task", "no such activity task",
			"no attempt has this token: it was never handed out, or by another server process (tokens do not survive a restart)")
	case errors.Is(err, stent.ErrRemoteTaskEnded):
		a.problem(w, http.StatusConflict, "activity-task-ended", "the activity task ended", err.Error())
	default:
		a.fail(w, err)
	}
}
