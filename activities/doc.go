// Package activities owns the registry of activities a Stent worker can run: Go
// functions registered by a host program, command activities (NAME=COMMAND) named on
// the command line and HTTP endpoints (NAME=https://…). It converts JSON arguments into Go parameters and Go results back
// into JSON, defines retry policies and the typed, possibly non-retryable, errors an
// activity returns, and carries the facts an attempt sees in its context (execution id,
// sequence number, attempt, idempotency key, heartbeat callback).
//
// It knows nothing about storage or Starlark: the worker looks an activity up by name,
// calls [Activity.Invoke] once per attempt with a JSON array of arguments and records
// the JSON result or the error; [RetryPolicy] tells it whether and when to try again.
//
// # Go activities
//
// A Go activity is a function whose first parameter is a context.Context and whose
// last result is an error:
//
//	func(ctx context.Context, a A, b B, ...) (T, error)
//	func(ctx context.Context, a A, rest ...R) error
//
// Each argument is decoded with encoding/json into its parameter type, so strings,
// numbers, booleans, slices, maps, structs and pointers all work; the result is encoded
// with encoding/json (without HTML escaping). A function returning only an error
// yields JSON null.
//
// # Command activities
//
// A command activity runs an executable once per attempt. It receives the JSON array of
// arguments on stdin and these environment variables in addition to the worker's:
//
//	STENT_EXECUTION_ID     the execution that scheduled it
//	STENT_SEQ              the command's sequence number in that execution
//	STENT_ATTEMPT          1 for the first attempt
//	STENT_ACTIVITY         the activity name
//	STENT_IDEMPOTENCY_KEY  STENT_EXECUTION_ID + "/" + STENT_SEQ, the same on every attempt
//
// It writes its JSON result on stdout (empty output means null). A non-zero exit is a
// failure whose message is the command's stderr; exit code 65 (EX_DATAERR in
// sysexits.h) marks the failure non-retryable, so no retry policy tries again.
//
// On Linux, a program that calls [SupervisorMain] first in main (the stent CLI does)
// runs each command under a supervisor, its own executable started again, that kills
// the command's whole process tree, setsid and double-forked descendants included,
// when the command ends, is cancelled or its worker dies. The command's parent is then
// the supervisor, whose parent is the worker.
//
// # HTTP activities
//
// An HTTP activity ([HTTPActivity]) POSTs, once per attempt, the JSON array of
// arguments (the bytes a command activity reads on stdin, [] without arguments) to its
// URL with these headers, besides those given with [HTTPHeader]:
//
//	Content-Type: application/json
//	Idempotency-Key: EXECUTION_ID/SEQ   the same on every attempt
//	Stent-Attempt: N                    1 for the first attempt
//	traceparent                         the attempt's span (W3C), when tracing is on
//
// A 2xx response's body is the JSON result (an empty body means null; a body that is
// not JSON is a non-retryable failure). 408, 429 and 5xx responses, network errors and
// timeouts are retryable failures, and a Retry-After header (seconds or an HTTP date)
// makes the next attempt wait at least that long ([Error].RetryAfter). Other statuses
// (4xx, and redirects, which are not followed) are non-retryable failures whose message
// is the start of the response body. Header values never appear in errors.
//
// # Errors
//
// An activity signals a typed failure with [*Error] (its Type is what a workflow sees
// as error.type) and stops retries with [NonRetryable] or Error.NonRetryable. Bad
// arguments (wrong count or types) are non-retryable; a panic is recovered and
// reported as a retryable error; a per-attempt timeout is an [*Error] of type
// "timeout".
package activities
