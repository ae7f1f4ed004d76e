package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent"
)

// checkoutScript charges through a remote activity, retried up to three times; a
// heartbeat timeout of 1s for the orders named "slow-*".
const checkoutScript = `
def main(order, amount):
    hb = "1s" if order.startswith("slow-") else "30s"
    payment = durable("charge", order, amount, heartbeat_timeout = hb,
                      retry = retry_policy(max_attempts = 3, initial_delay = "50ms"))
    return {"order": order, "charged": payment["charged"]}
`

// remoteServer serves the API of an engine with a worker and remote activities.
func remoteServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	scripts := filepath.Join(dir, "scripts")
	must(t, os.MkdirAll(scripts, 0o755))
	must(t, os.WriteFile(filepath.Join(scripts, "checkout.star"), []byte(checkoutScript), 0o644))
	quiet := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	eng, stop, err := stent.Bootstrap(context.Background(), filepath.Join(dir, "stent.db"), stent.WithLogger(quiet))
	must(t, err)
	t.Cleanup(stop)
	remote := eng.NewRemoteActivities(stent.RemoteOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- remote.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("remote activities: %v", err)
		}
	})
	api, err := Handler(eng, Options{ScriptsDir: scripts, Logger: quiet, Remote: remote})
	must(t, err)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	// A first poll advertises "charge", so that a script may schedule it.
	if code, body := post(t, srv, "/api/v1/activity-tasks/poll", `{"activities": ["charge"], "wait": "1ms"}`); code != http.StatusNoContent {
		t.Fatalf("first poll: %d %s; want 204", code, body)
	}
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, body string) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("POST %s: %d with Content-Type %q, want application/problem+json", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b
}

// poll waits for an attempt of charge.
func poll(t *testing.T, srv *httptest.Server) activityTask {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		code, body := post(t, srv, "/api/v1/activity-tasks/poll", `{"activities": ["charge"], "wait": "30s"}`)
		switch code {
		case http.StatusNoContent:
			continue
		case http.StatusOK:
			var task activityTask
			must(t, json.Unmarshal(body, &task))
			return task
		default:
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	t.Fatal("no activity task within 5 minutes")
	return activityTask{}
}

// startCheckout dispatches checkout.star for order and returns the execution's ID.
func startCheckout(t *testing.T, srv *httptest.Server, order string) string {
	t.Helper()
	code, body := post(t, srv, "/api/v1/executions", fmt.Sprintf(`{"script": "checkout.star", "args": [%q, 100], "id": %q}`, order, order))
	if code != http.StatusCreated {
		t.Fatalf("dispatch: %d %s", code, body)
	}
	return order
}

// finished waits for the execution to end and returns its status document.
func finished(t *testing.T, srv *httptest.Server, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := srv.Client().Get(srv.URL + "/api/v1/executions/" + id + "?wait=30s")
		must(t, err)
		var st map[string]any
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		must(t, err)
		if st["status"] != "running" {
			return st
		}
	}
	t.Fatalf("execution %s still running after 2 minutes", id)
	return nil
}

// historyKinds returns the kinds of the execution's events, space-separated.
func historyKinds(t *testing.T, srv *httptest.Server, id string) string {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/api/v1/executions/" + id + "/history")
	must(t, err)
	defer resp.Body.Close()
	var h struct {
		Events []struct {
			Kind  string `json:"kind"`
			Error *struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"events"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&h))
	var kinds []string
	for _, ev := range h.Events {
		k := ev.Kind
		if ev.Error != nil && ev.Error.Type != "" {
			k += "(" + ev.Error.Type + ")"
		}
		kinds = append(kinds, k)
	}
	return strings.Join(kinds, " ")
}

func TestActivityTaskPollComplete(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "order-1")
	task := poll(t, srv)
	if task.Activity != "charge" || task.ExecutionID != id || task.Attempt != 1 || task.Seq == 0 || task.Token == "" ||
		!bytes.Equal(task.Args, []byte(`["order-1",100]`)) || task.IdempotencyKey != fmt.Sprintf("%s/%d", id, task.Seq) {
		t.Fatalf("task %+v", task)
	}
	if time.Until(task.Deadline) <= 0 {
		t.Fatalf("deadline %s already passed", task.Deadline)
	}
	code, body := post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/heartbeat", `{"done": 0.5}`)
	if code != http.StatusOK || !strings.Contains(string(body), `"cancel_requested":false`) {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	if code, body := post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/complete", `{"result": {"charged": 100}}`); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, body)
	}
	st := finished(t, srv, id)
	if st["status"] != "completed" || fmt.Sprint(st["result"]) != "map[charged:100 order:order-1]" {
		t.Fatalf("execution: %v", st)
	}
	// The token is spent: a second answer or heartbeat is refused, never recorded.
	for _, c := range []struct{ path, body string }{
		{"/complete", `{"result": {"charged": 999}}`},
		{"/fail", `{"error": "late"}`},
		{"/heartbeat", ``},
	} {
		if code, body := post(t, srv, "/api/v1/activity-tasks/"+task.Token+c.path, c.body); code != http.StatusConflict ||
			!strings.Contains(string(body), "activity-task-ended") {
			t.Fatalf("%s after complete: %d %s; want 409", c.path, code, body)
		}
	}
	if code, _ := post(t, srv, "/api/v1/activity-tasks/0123456789abcdef/complete", `{"result": 1}`); code != http.StatusNotFound {
		t.Fatalf("unknown token: %d; want 404", code)
	}
	if h := historyKinds(t, srv, id); strings.Count(h, "activity_completed") != 1 {
		t.Fatalf("history %s: want one activity_completed", h)
	}
}

func TestActivityTaskConcurrentCompletes(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "order-race")
	task := poll(t, srv)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/complete", fmt.Sprintf(`{"result": {"charged": %d}}`, i))
		}()
	}
	wg.Wait()
	won := -1
	for i, c := range codes {
		switch {
		case c == http.StatusNoContent && won < 0:
			won = i
		case c != http.StatusConflict:
			t.Fatalf("completes answered %v: want one 204, the others 409", codes)
		}
	}
	st := finished(t, srv, id)
	if won < 0 || fmt.Sprint(st["result"]) != fmt.Sprintf("map[charged:%d order:order-race]", won) {
		t.Fatalf("completes %v; execution %v", codes, st)
	}
}

func TestActivityTaskFailRetried(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "order-2")
	first := poll(t, srv)
	if code, body := post(t, srv, "/api/v1/activity-tasks/"+first.Token+"/fail", `{"error": "card network down"}`); code != http.StatusNoContent {
		t.Fatalf("fail: %d %s", code, body)
	}
	second := poll(t, srv)
	if second.Attempt != 2 || second.Seq != first.Seq || second.ExecutionID != id || second.Token == first.Token {
		t.Fatalf("second attempt %+v after %+v", second, first)
	}
	if code, body := post(t, srv, "/api/v1/activity-tasks/"+second.Token+"/complete", `{"result": {"charged": 100}}`); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, body)
	}
	if st := finished(t, srv, id); st["status"] != "completed" {
		t.Fatalf("execution: %v", st)
	}
	if h := historyKinds(t, srv, id); !strings.Contains(h, "activity_attempt_failed(ActivityError)") || strings.Count(h, "activity_completed") != 1 {
		t.Fatalf("history %s: want the failed attempt and one completion", h)
	}
}

func TestActivityTaskFailNonRetryable(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "order-3")
	task := poll(t, srv)
	if code, body := post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/fail",
		`{"error": "card declined", "type": "CardDeclined", "non_retryable": true}`); code != http.StatusNoContent {
		t.Fatalf("fail: %d %s", code, body)
	}
	st := finished(t, srv, id)
	if st["status"] != "failed" || !strings.Contains(fmt.Sprint(st["error"]), "card declined") {
		t.Fatalf("execution: %v", st)
	}
	if h := historyKinds(t, srv, id); strings.Contains(h, "activity_attempt_failed") || !strings.Contains(h, "activity_failed(CardDeclined)") {
		t.Fatalf("history %s: want one failed attempt, not retried", h)
	}
}

func TestActivityTaskExpiredToken(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "slow-4")
	lost := poll(t, srv)
	// The poller goes silent: after the 1s heartbeat timeout the attempt counts as
	// failed and the next one is handed out.
	second := poll(t, srv)
	if second.Attempt != 2 || second.Seq != lost.Seq {
		t.Fatalf("second attempt %+v after %+v", second, lost)
	}
	for _, path := range []string{"/complete", "/heartbeat"} {
		if code, body := post(t, srv, "/api/v1/activity-tasks/"+lost.Token+path, `{"result": {"charged": 1}}`); code != http.StatusConflict ||
			!strings.Contains(string(body), "no heartbeat") {
			t.Fatalf("%s of the lost attempt: %d %s; want 409", path, code, body)
		}
	}
	if code, body := post(t, srv, "/api/v1/activity-tasks/"+second.Token+"/complete", `{"result": {"charged": 100}}`); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, body)
	}
	if st := finished(t, srv, id); st["status"] != "completed" {
		t.Fatalf("execution: %v", st)
	}
	if h := historyKinds(t, srv, id); !strings.Contains(h, "activity_attempt_failed(heartbeat_timeout)") {
		t.Fatalf("history %s: want the lost attempt as failed by heartbeat_timeout", h)
	}
}

func TestActivityTaskCancelledExecution(t *testing.T) {
	srv := remoteServer(t)
	id := startCheckout(t, srv, "order-5")
	task := poll(t, srv)
	if code, body := post(t, srv, "/api/v1/executions/"+id+"/terminate", ``); code != http.StatusAccepted {
		t.Fatalf("terminate: %d %s", code, body)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/heartbeat", ``)
		if code == http.StatusOK && strings.Contains(string(body), `"cancel_requested":true`) {
			break
		}
		if code != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("heartbeat after terminate: %d %s; want cancel_requested", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := post(t, srv, "/api/v1/activity-tasks/"+task.Token+"/complete", `{"result": 1}`); code != http.StatusConflict {
		t.Fatalf("complete after terminate: %d; want 409", code)
	}
}

func TestActivityTaskBadPolls(t *testing.T) {
	srv := remoteServer(t)
	for _, body := range []string{`{}`, `{"activities": []}`, `{"activities": [""]}`, `{"activities": ["charge"], "wait": "soon"}`, `[`} {
		if code, b := post(t, srv, "/api/v1/activity-tasks/poll", body); code != http.StatusBadRequest {
			t.Fatalf("poll %s: %d %s; want 400", body, code, b)
		}
	}
}
