"""A small client of Stent's HTTP API (`stent serve`), standard library only.

Client starts, inspects, signals and cancels executions. ActivityWorker runs
activities for Stent in this process: it polls /api/v1/activity-tasks for the
activities it has, runs each attempt, heartbeats from a thread while the attempt
runs, and completes or fails it. Retries, timeouts and heartbeat timeouts are
decided by the server, as for Go activities.

    client = Client("http://127.0.0.1:8233")
    worker = ActivityWorker(client, {"charge": charge})
    worker.run()  # until SIGTERM or SIGINT

An activity is a function fn(ctx, *args) returning a JSON-encodable result. Raise
ActivityFailed(message, non_retryable=True) for a failure that must not be retried;
any other exception fails the attempt, retried per the call's retry policy.
"""

import json
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Client", "ActivityWorker", "ActivityContext", "ActivityFailed", "StentError"]


class StentError(Exception):
    """An error answer of the API: status is the HTTP status, problem the RFC 9457
    problem document (a dict) when there is one."""

    def __init__(self, status, problem, text=""):
        self.status = status
        self.problem = problem or {}
        detail = self.problem.get("detail") or self.problem.get("title") or text
        super().__init__("HTTP %d: %s" % (status, detail))


class Client:
    """Calls the API of a `stent serve` at base_url, with a bearer token if given."""

    def __init__(self, base_url="http://127.0.0.1:8233", token=None, timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method, path, body=None, timeout=None, raw=None):
        """Sends a request and returns (status, decoded JSON body or None). An error
        status raises StentError. raw, when given, is sent as the body as is."""
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                text = resp.read()
                return resp.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                problem = json.loads(text)
            except ValueError:
                problem = None
            raise StentError(e.code, problem, text) from None

    def start(self, script, args=None, id=None, **options):
        """Starts an execution of script (relative to the server's --scripts) with
        args (a list); options are the API's: entry, queue, priority, delay,
        max_duration. With id the call is idempotent. Returns the execution."""
        body = {"script": script, "args": args or []}
        if id is not None:
            body["id"] = id
        body.update(options)
        return self.request("POST", "/api/v1/executions", body)[1]

    def get(self, id):
        """Returns the execution's status document."""
        return self.request("GET", "/api/v1/executions/" + urllib.parse.quote(id, safe=""))[1]

    def wait(self, id, timeout=300.0):
        """Waits for the execution to end (long polls) and returns its status."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(1, min(30, int(left)))
            st = self.request("GET", "/api/v1/executions/%s?wait=%ds" % (urllib.parse.quote(id, safe=""), wait),
                              timeout=wait + 30)[1]
            if st["status"] not in ("running", "scheduled") or time.monotonic() >= deadline:
                return st

    def signal(self, id, name, payload=None):
        """Sends the signal name with a JSON payload to a running execution."""
        path = "/api/v1/executions/%s/signals/%s" % (urllib.parse.quote(id, safe=""), urllib.parse.quote(name, safe=""))
        self.request("POST", path, payload)

    def cancel(self, id):
        """Asks a running execution to cancel."""
        self.request("POST", "/api/v1/executions/%s/cancel" % urllib.parse.quote(id, safe=""))


class ActivityFailed(Exception):
    """Fails the attempt with message; non_retryable stops the retries."""

    def __init__(self, message, non_retryable=False, type=None):
        super().__init__(message)
        self.message = message
        self.non_retryable = non_retryable
        self.type = type


class ActivityContext:
    """What an attempt knows about itself. heartbeat(details) reports progress (the
    worker also heartbeats on its own while the function runs); cancelled is set once
    the server asks the attempt to stop (its execution ended, or it was lost)."""

    def __init__(self, worker, task):
        self._worker = worker
        self.token = task["token"]
        self.activity = task["activity"]
        self.execution_id = task["execution_id"]
        self.seq = task["seq"]
        self.attempt = task["attempt"]
        self.idempotency_key = task.get("idempotency_key") or "%s/%s" % (self.execution_id, self.seq)
        self.last_heartbeat = task.get("last_heartbeat")
        self.heartbeat_timeout = parse_duration(task.get("heartbeat_timeout") or "30s")
        self.cancelled = threading.Event()
        self._details = None
        self._lock = threading.Lock()

    def heartbeat(self, details=None):
        """Sends a heartbeat now, with progress details (JSON-encodable) given to the
        next attempt if this one fails."""
        with self._lock:
            if details is not None:
                self._details = details
        self._worker._heartbeat(self)


_DURATION = re.compile(r"([0-9.]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(s):
    """Seconds in a Go duration such as "30s", "1m30s" or "500ms"."""
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(s)) or 30.0


class _Stop(Exception):
    pass


class ActivityWorker:
    """Runs activities (a dict name -> fn(ctx, *args)) for the server of client until
    stop() or SIGTERM/SIGINT; an attempt already running is finished first."""

    def __init__(self, client, activities, queue=None, wait="20s", log=None):
        self.client = client
        self.activities = dict(activities)
        self.queue = queue
        self.wait = wait
        self.log = log or (lambda msg: print("stent worker: " + msg, file=sys.stderr, flush=True))
        self._stopping = threading.Event()
        self._polling = False

    def stop(self):
        self._stopping.set()

    def run(self):
        """Polls and runs attempts until stopped. Installs SIGTERM and SIGINT handlers
        when called from the main thread."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                task = self._poll()
                backoff = 0.1
            except _Stop:
                break
            except (OSError, StentError) as e:
                self.log("poll failed: %s; retrying in %.1fs" % (e, backoff))
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if task is not None:
                self._run_task(task)
        self.log("stopped")

    def _on_signal(self, signum, frame):
        self._stopping.set()
        if self._polling:
            raise _Stop()  # abandon the idle poll; a running attempt is finished first

    def _poll(self):
        body = {"activities": sorted(self.activities), "wait": self.wait}
        if self.queue:
            body["queue"] = self.queue
        wait = parse_duration(self.wait)
        self._polling = True
        try:
            if self._stopping.is_set():
                raise _Stop()
            status, task = self.client.request("POST", "/api/v1/activity-tasks/poll", body, timeout=wait + 30)
        finally:
            self._polling = False
        return task if status == 200 else None

    def _run_task(self, task):
        ctx = ActivityContext(self, task)
        fn = self.activities.get(ctx.activity)
        stop_beats = threading.Event()
        beats = threading.Thread(target=self._beat_loop, args=(ctx, stop_beats), daemon=True)
        beats.start()
        try:
            if fn is None:
                raise ActivityFailed("this worker has no activity %r" % ctx.activity, non_retryable=True)
            result = fn(ctx, *(task.get("args") or []))
            answer = ("complete", {"result": result})
        except ActivityFailed as e:
            answer = ("fail", {"error": e.message, "non_retryable": e.non_retryable, "type": e.type or "ActivityError"})
        except Exception as e:  # any other failure is retried per the policy
            self.log("activity %s failed: %s" % (ctx.activity, traceback.format_exc().strip()))
            answer = ("fail", {"error": "%s: %s" % (type(e).__name__, e), "type": type(e).__name__})
        finally:
            stop_beats.set()
            beats.join()
        try:
            self.client.request("POST", "/api/v1/activity-tasks/%s/%s" % (ctx.token, answer[0]), answer[1])
        except StentError as e:
            # 404/409: the attempt was lost (heartbeat timeout, restart) or cancelled;
            # the server retries or dropped it, nothing to do here.
            self.log("%s of %s (attempt %d) refused: %s" % (answer[0], ctx.idempotency_key, ctx.attempt, e))
        except OSError as e:
            self.log("%s of %s (attempt %d) not delivered: %s" % (answer[0], ctx.idempotency_key, ctx.attempt, e))

    def _beat_loop(self, ctx, stop):
        every = max(0.2, min(ctx.heartbeat_timeout / 3, 10.0))
        while not stop.wait(every):
            self._heartbeat(ctx)

    def _heartbeat(self, ctx):
        with ctx._lock:
            details = ctx._details
        raw = json.dumps(details).encode() if details is not None else None
        try:
            _, reply = self.client.request("POST", "/api/v1/activity-tasks/%s/heartbeat" % ctx.token, raw=raw)
            if reply and reply.get("cancel_requested"):
                ctx.cancelled.set()
        except StentError as e:
            if e.status in (404, 409):
                ctx.cancelled.set()
        except OSError as e:
            self.log("heartbeat of %s failed: %s" % (ctx.idempotency_key, e))
