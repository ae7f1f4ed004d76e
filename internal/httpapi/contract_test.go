package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/internal/telemetry"
)

// TestOpenAPIContract drives every endpoint of the document, errors included, through
// a real API on SQLite and validates each request and response against it.
func TestOpenAPIContract(t *testing.T) {
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	must(t, err)
	mp, metrics, err := telemetry.NewPrometheusMeterProvider()
	must(t, err)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	srv, eng := apiEngine(t, Options{Tokens: []string{"full"}, ReadOnlyTokens: []string{"reader"}, Metrics: metrics}, stent.WithMeterProvider(mp))
	must(t, eng.Register("boom", func(context.Context) (string, error) {
		return "", activities.NonRetryable(errors.New("boom"))
	}))
	c := &contract{t: t, srv: srv, router: router, token: "full", seen: map[string]bool{}}

	t.Run("executions", func(t *testing.T) { contractExecutions(c.with(t)) })
	t.Run("dead letters", func(t *testing.T) { contractDeadLetters(c.with(t)) })
	t.Run("schedules", func(t *testing.T) { contractSchedules(c.with(t)) })
	t.Run("server", func(t *testing.T) {
		c := c.with(t)
		c.do(req{method: "GET", path: "/api/v1/workers", code: 200, want: `"workers"`})
		c.do(req{method: "GET", path: "/api/v1/openapi.json", code: 200, want: `"openapi"`})
		c.do(req{method: "GET", path: "/metrics", code: 200, want: `stent_`})
		c.token = "reader"
		c.do(req{method: "GET", path: "/metrics", code: 200, want: `stent_`})
		c.do(req{method: "GET", path: "/api/v1/openapi.json", code: 200, want: `"paths"`})
		c.do(req{method: "POST", path: "/api/v1/schedules/s1/pause", code: 403, want: `read-only-token`})
		c.token = "wrong"
		c.do(req{method: "GET", path: "/metrics", code: 401, want: `unauthorized`})
		c.token = ""
		c.do(req{method: "GET", path: "/api/v1/openapi.json", code: 401, want: `unauthorized`})
	})
	activityTasks := slices.Contains(routePatterns(t), "POST /api/v1/activity-tasks/poll")
	if activityTasks {
		t.Run("activity tasks", func(t *testing.T) { contractActivityTasks(c.with(t)) })
	} else {
		t.Log("no activity-task routes on this build: their part of the document is not exercised")
	}
	if t.Failed() {
		return
	}
	for path, item := range doc.Paths.Map() {
		if strings.HasPrefix(path, "/api/v1/activity-tasks/") && !activityTasks {
			continue
		}
		for method := range item.Operations() {
			if !c.seen[method+" "+path] {
				t.Errorf("%s %s is in the document but no request of this test exercised it", method, path)
			}
		}
	}
}

// with is c reporting to t, sharing what was seen.
func (c *contract) with(t *testing.T) *contract {
	d := *c
	d.t = t
	return &d
}

func contractExecutions(c *contract) {
	for _, r := range []req{
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["Ann"], "id": "h1"}`, code: 201, want: `"id":"h1"`},
		{method: "GET", path: "/api/v1/executions/h1?wait=30s", code: 200, want: `"result":"hi Ann"`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["Ann"], "id": "h1"}`, code: 200, want: `"status":"completed"`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["Bob"], "id": "h1"}`, code: 409, want: `id-conflict`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["Bob"]}`, header: map[string]string{"Idempotency-Key": "k1"}, code: 201, want: `"id":"k1"`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": `, code: 400, want: `invalid-json`, badInput: true},
		{method: "POST", path: "/api/v1/executions?wait=30s", body: `{"script": "hello.star", "args": ["Cy"], "id": "h2"}`, code: 201, want: `"result":"hi Cy"`},
		{method: "POST", path: "/api/v1/executions?wait=30s", body: `{"script": "hello.star", "args": ["Di"], "id": "tg1", "tags": {"customer": "42"}}`, code: 201, want: `"result":"hi Di"`},
		{method: "GET", path: "/api/v1/executions/tg1", code: 200, want: `"tags":{"customer":"42"}`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["Di"], "tags": {"k": "` + strings.Repeat("v", 129) + `"}}`, code: 400, want: `over the limit of 128`},
		{method: "POST", path: "/api/v1/executions?wait=soon", body: `{"script": "hello.star", "args": ["Cy"]}`, code: 400, want: `positive duration`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "../secret.star"}`, code: 400, want: `invalid-script`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "missing.star"}`, code: 400, want: `no such file`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "hello.star", "args": ["` + strings.Repeat("x", 5000) + `"]}`, code: 413, want: `payload-too-large`},
		{method: "GET", path: "/api/v1/executions?limit=1", code: 200, want: `"next_cursor"`},
		{method: "GET", path: "/api/v1/executions?where=tag:customer=42", code: 200, want: `"id":"tg1"`},
		{method: "GET", path: "/api/v1/executions?where=colour=red", code: 400, want: `unknown key`},
		{method: "GET", path: "/api/v1/executions?where=status=failed&status=failed", code: 400, want: `two filters`},
		{method: "GET", path: "/api/v1/executions?limit=0", code: 400, want: `bad limit`, badInput: true},
		{method: "GET", path: "/api/v1/executions/nope", code: 404, want: `no-such-execution`},
		{method: "GET", path: "/api/v1/executions/h1?wait=soon", code: 400, want: `bad wait`},
		{method: "GET", path: "/api/v1/executions/h1/history", code: 200, want: `"kind":"completed"`},
		{method: "GET", path: "/api/v1/executions/nope/history", code: 404, want: `no-such-execution`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "wait.star", "id": "w1"}`, code: 201, want: `"status":"running"`},
		{method: "GET", path: "/api/v1/executions/w1?wait=1s", code: 200, want: `"waiting_for"`},
		{method: "POST", path: "/api/v1/executions/w1/signals/go", body: `{"ok": true}`, code: 202},
		{method: "GET", path: "/api/v1/executions/w1?wait=30s", code: 200, want: `"result":{"ok":true}`},
		{method: "GET", path: "/api/v1/executions/w1/logs", code: 200, want: `"message":"waiting"`},
		{method: "GET", path: "/api/v1/executions/nope/logs", code: 404, want: `no-such-execution`},
		{method: "POST", path: "/api/v1/executions/w1/signals/go", body: `1`, code: 409, want: `execution-ended`},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 2}`, code: 201, want: `"reset_from":{"id":"w1","step":2`},
		{method: "GET", path: "/api/v1/executions/w1-r1?wait=30s", code: 200, want: `"result":{"ok":true}`},
		{method: "GET", path: "/api/v1/executions/w1", code: 200, want: `"reset_into":[{"id":"w1-r1","step":2`},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 1, "script": "wait.star"}`, code: 201, want: `"id":"w1-r2"`},
		{method: "POST", path: "/api/v1/executions/w1-r2/terminate", code: 202},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 2, "script": "fails.star"}`, code: 409, want: `reset-mismatch`},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 9}`, code: 400, want: `has 1 steps`},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 0}`, code: 400, want: `bad to_step`, badInput: true},
		{method: "POST", path: "/api/v1/executions/w1/reset", body: `{"to_step": 1, "script": "../secret.star"}`, code: 400, want: `invalid-script`},
		{method: "POST", path: "/api/v1/executions/nope/reset", body: `{"to_step": 1}`, code: 404, want: `no-such-execution`},
		{method: "POST", path: "/api/v1/executions/w1/signals/go", body: `{`, code: 400, want: `invalid-json`, badInput: true},
		{method: "POST", path: "/api/v1/executions/nope/signals/go", body: `1`, code: 404, want: `no-such-execution`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "wait.star", "id": "w2"}`, code: 201},
		{method: "POST", path: "/api/v1/executions/w2/cancel", code: 202},
		{method: "GET", path: "/api/v1/executions/w2?wait=30s", code: 200, want: `"status":"cancelled"`},
		{method: "POST", path: "/api/v1/executions/w2/cancel", code: 409, want: `execution-ended`},
		{method: "POST", path: "/api/v1/executions/nope/cancel", code: 404, want: `no-such-execution`},
		{method: "POST", path: "/api/v1/executions", body: `{"script": "wait.star", "id": "w3"}`, code: 201},
		{method: "POST", path: "/api/v1/executions/w3/reset", body: `{"to_step": 1}`, code: 409, want: `not-ended`},
		{method: "POST", path: "/api/v1/executions/w3/terminate", code: 202},
		{method: "POST", path: "/api/v1/executions/w3/terminate", code: 409, want: `execution-ended`},
		{method: "POST", path: "/api/v1/executions/h1/retry", code: 409, want: `not-failed`},
		{method: "POST", path: "/api/v1/executions/nope/retry", code: 404, want: `no-such-execution`},
	} {
		c.do(r)
	}
}

// failed starts fails.star as id and waits until it failed, dead-lettering its step.
func failed(c *contract, id string) {
	c.do(req{method: "POST", path: "/api/v1/executions", body: `{"script": "fails.star", "id": "` + id + `"}`, code: 201})
	c.do(req{method: "GET", path: "/api/v1/executions/" + id + "?wait=30s", code: 200, want: `"status":"failed"`})
}

// deadLetterOf finds the open dead letter of execution exec.
func deadLetterOf(c *contract, exec string) string {
	var list struct {
		DeadLetters []struct {
			ID          int64  `json:"id"`
			ExecutionID string `json:"execution_id"`
		} `json:"dead_letters"`
	}
	must(c.t, json.Unmarshal(c.do(req{method: "GET", path: "/api/v1/dead-letters", code: 200, want: `"dead_letters"`}), &list))
	for _, d := range list.DeadLetters {
		if d.ExecutionID == exec {
			return fmt.Sprint(d.ID)
		}
	}
	c.t.Fatalf("no open dead letter of %s in %+v", exec, list)
	return ""
}

func contractDeadLetters(c *contract) {
	failed(c, "f1")
	d1 := deadLetterOf(c, "f1")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/dead-letters/" + d1, code: 200, want: `"activity":"boom"`},
		{method: "GET", path: "/api/v1/dead-letters/999999", code: 404, want: `no-such-dead-letter`},
		{method: "GET", path: "/api/v1/dead-letters/abc", code: 404, want: `no-such-dead-letter`},
		{method: "GET", path: "/api/v1/dead-letters?status=bogus", code: 400, want: `bad status`, badInput: true},
		{method: "GET", path: "/api/v1/dead-letters?status=all&limit=5", code: 200, want: `"execution_id":"f1"`},
		{method: "POST", path: "/api/v1/dead-letters/" + d1 + "/discard", code: 200, want: `"status":"discarded"`},
		{method: "POST", path: "/api/v1/dead-letters/" + d1 + "/discard", code: 409, want: `dead-letter-resolved`},
		{method: "POST", path: "/api/v1/dead-letters/" + d1 + "/replay", code: 409, want: `dead-letter-resolved`},
		{method: "POST", path: "/api/v1/dead-letters/999999/replay", code: 404, want: `no-such-dead-letter`},
		{method: "POST", path: "/api/v1/dead-letters/999999/discard", code: 404, want: `no-such-dead-letter`},
		{method: "GET", path: "/api/v1/dead-letters?status=discarded", code: 200, want: `"execution_id":"f1"`},
		{method: "POST", path: "/api/v1/executions/f1/retry", code: 202},
	} {
		c.do(r)
	}
	failed(c, "f2")
	c.do(req{method: "POST", path: "/api/v1/dead-letters/" + deadLetterOf(c, "f2") + "/replay", code: 202})
}

func contractSchedules(c *contract) {
	for _, r := range []req{
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s1", "script": "hello.star", "cron": "@every 1h", "args": ["Sam"]}`, code: 201, want: `"id":"s1"`},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s1", "script": "hello.star", "cron": "@daily"}`, code: 409, want: `schedule-exists`},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s2", "script": "hello.star"}`, code: 400, want: `no cron`, badInput: true},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s2", "script": "../secret.star", "cron": "@daily"}`, code: 400, want: `invalid-script`},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s2", "script": "hello.star", "cron": "every day"}`, code: 400, want: `invalid-request`},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s2", "script": "hello.star", "cron": "@daily", "jitter": "soon"}`, code: 400, want: `bad duration`},
		{method: "POST", path: "/api/v1/schedules", body: `[`, code: 400, want: `invalid-json`, badInput: true},
		{method: "GET", path: "/api/v1/schedules", code: 200, want: `"id":"s1"`},
		{method: "GET", path: "/api/v1/schedules/s1", code: 200, want: `"cron":"@every 1h"`},
		{method: "GET", path: "/api/v1/schedules/nope", code: 404, want: `no-such-schedule`},
		{method: "PATCH", path: "/api/v1/schedules/s1", body: `{"cron": "@every 2h", "jitter": "1s"}`, code: 200, want: `"jitter_ms":1000`},
		{method: "POST", path: "/api/v1/schedules", body: `{"id": "s2", "script": "hello.star", "cron": "0 0 30 2 *"}`, code: 400, want: `never fires`},
		{method: "PATCH", path: "/api/v1/schedules/s1", body: `{"cron": "0 0 30 2 *"}`, code: 400, want: `never fires`},
		{method: "PATCH", path: "/api/v1/schedules/s1", body: `{"entry": "other"}`, code: 400, want: `needs the script too`},
		{method: "PATCH", path: "/api/v1/schedules/s1", body: `{"paused": true}`, code: 400, want: `field not changeable`},
		{method: "PATCH", path: "/api/v1/schedules/nope", body: `{"cron": "@daily"}`, code: 404, want: `no-such-schedule`},
		{method: "POST", path: "/api/v1/schedules/s1/pause", code: 200, want: `"paused":true`},
		{method: "POST", path: "/api/v1/schedules/s1/resume", code: 200, want: `"paused":false`},
		{method: "POST", path: "/api/v1/schedules/nope/pause", code: 404, want: `no-such-schedule`},
		{method: "POST", path: "/api/v1/schedules/nope/resume", code: 404, want: `no-such-schedule`},
		{method: "POST", path: "/api/v1/schedules/nope/trigger", code: 404, want: `no-such-schedule`},
	} {
		c.do(r)
	}
	exec := id(c.t, c.do(req{method: "POST", path: "/api/v1/schedules/s1/trigger", code: 201, want: `"id":"s1@`}))
	c.do(req{method: "GET", path: "/api/v1/executions/" + exec + "?wait=30s", code: 200, want: `"result":"hi Sam"`})
	c.do(req{method: "GET", path: "/api/v1/schedules/s1", code: 200, want: `"outcome":"triggered"`})
	c.do(req{method: "DELETE", path: "/api/v1/schedules/s1", code: 204})
	c.do(req{method: "DELETE", path: "/api/v1/schedules/s1", code: 404, want: `no-such-schedule`})
}

// contractActivityTasks takes an attempt of remote.star's activity over HTTP and
// reports it; the endpoints' errors answer a token that names no task.
func contractActivityTasks(c *contract) {
	// A first poll finds nothing and makes the activity known, so that a script may
	// schedule it.
	c.do(req{method: "POST", path: "/api/v1/activity-tasks/poll", body: `{"activities": ["remote"], "wait": "1ms"}`, code: 204})
	c.do(req{method: "POST", path: "/api/v1/executions", body: `{"script": "remote.star", "id": "r1"}`, code: 201})
	c.do(req{method: "POST", path: "/api/v1/activity-tasks/poll", body: `{`, code: 400, want: `invalid-json`, badInput: true})
	var task struct {
		Token string `json:"token"`
	}
	must(c.t, json.Unmarshal(c.do(req{method: "POST", path: "/api/v1/activity-tasks/poll", body: `{"activities": ["remote"], "wait": "30s"}`, code: 200, want: `"token"`}), &task))
	c.do(req{method: "POST", path: "/api/v1/activity-tasks/" + task.Token + "/heartbeat", body: `{"progress": 1}`, code: 200, want: `"cancel_requested"`})
	c.do(req{method: "POST", path: "/api/v1/activity-tasks/" + task.Token + "/complete", body: `{"result": 2}`, code: 0})
	c.do(req{method: "GET", path: "/api/v1/executions/r1?wait=30s", code: 200, want: `"result":2`})
	for _, op := range []string{"heartbeat", "complete", "fail"} {
		body := `{"result": 1}`
		if op == "fail" {
			body = `{"error": "no", "non_retryable": true}`
		}
		c.do(req{method: "POST", path: "/api/v1/activity-tasks/no-such-token/" + op, body: body, code: 404})
	}
}
