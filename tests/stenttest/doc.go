// Package stenttest is Stent's test kit: an engine for Go tests, and the runner of the
// script-level golden tests that `stent test` and tests/golden use.
//
// # Engines for Go tests
//
// New gives a test an engine on a private in-memory SQLite database with a running
// worker, registered activities and virtual time, closed when the test ends:
//
//	env := stenttest.New(t, stenttest.Activity("fetch_user_data", fetchUser))
//	res := env.Run("workflows/notification/notification.star", []string{"u1"}, "Welcome!")
//	res.AssertValue(report{Users: []string{"u1"}, Delivered: 1})
//	res.AssertHistory(`
//		1 started [["u1"],"Welcome!"]
//		...
//	`)
//
// Virtual time stands still while work is runnable and jumps to the next timer, retry or
// scripted event (VirtualClock.At) when the worker is idle, so durable sleeps, retry
// delays and signal timeouts complete at once. The worker runs one task at a time, so
// the order of events in a history is the same on every run and histories can be
// compared as text (FormatHistory).
//
// # Golden tests
//
// A golden test is a txtar file: a workflow, its arguments, activities mocked in
// Starlark, scripted signals, and the expected outcome. RunGoldenFile runs it twice,
// uninterrupted (live-execution cache on) and replayed from history after every event
// (cache off, the engine's crash-recovery path), and reports as diffs what differs from
// the file and between the two runs. With Update(true) it rewrites the expectations in
// place instead.
//
//	Greeting: each name gets a child workflow.       <- free text: what the test is about
//	workflow: workflows/greeting.star                <- or a -- workflow.star -- section
//	entry: main                                      <- optional
//	max-duration: 1h                                 <- optional: the execution's deadline
//	timeout: 10s                                     <- optional: real time without progress before "stuck"
//	-- args.json --
//	[["Alice", "Bob"]]
//	-- mocks.star --
//	def fetch_user_data(user_id):
//	    assert_eq(type(user_id), "string")
//	    if attempt() < 3:
//	        fail("connection reset")          # this attempt fails; the policy retries
//	    advance("2s")                         # the call takes two (virtual) seconds
//	    return {"id": user_id}
//	-- signals --
//	at 1h send approved {"by": "ann"}
//	at 2d cancel
//	-- result --
//	["Hello, Alice!", "Hello, Bob!"]
//	-- log --
//	...
//	-- history --
//	1 started [["Alice","Bob"]]
//	2 child_scheduled #1 greet ["Alice"]
//	...
//	-- history/1 --
//	1 started ["Alice"]
//	2 completed "Hello, Alice!"
//
// Inputs:
//
//   - The comment before the first section: lines "workflow: PATH" (relative to the
//     module root, else to the file), "entry: FUNCTION", "max-duration: DURATION" (as
//     stent.MaxDuration) and "timeout: DURATION" (how long in real time the runner waits
//     for a new event before it reports the workflow as stuck, default 10s); other lines are prose.
//   - workflow.star, and any other *.star section: written side by side to a temporary
//     directory, so the workflow may load() them. Exactly one of workflow: and
//     workflow.star must be there.
//   - args.json: a JSON array, the entry function's arguments (default []).
//   - mocks.star: each top-level function (not starting with _) becomes an activity of
//     that name. Mocks see attempt() (1 for the first attempt), fail(message,
//     type="ActivityError", non_retryable=False), advance(duration) (let virtual time
//     pass), now() (the virtual time, RFC 3339), execution_id(), assert (starlarktest's
//     module), assert_eq(got, want), and the json, math and time modules. A failed
//     assertion, or an error a mock raises other than fail(), fails the test. Globals
//     are not frozen, so mocks may keep state; they run one at a time.
//   - signals: lines "at DURATION send NAME [JSON]" and "at DURATION cancel", acted on
//     the execution at that virtual time after its start; one that finds the execution
//     ended is dropped (the history shows it never arrived).
//
// Expectations, which Update rewrites (inputs and comment are kept as they are):
//
//   - result: the value the workflow returned, as indented JSON; or error: the failure's
//     type and message ("dispatch: ..." when the script does not even compile; "(status)"
//     first when the execution was cancelled or timed out rather than failed).
//   - log: the lines print() and log() wrote, "[N] " before those of the child at step #N.
//   - history: the execution's events in the form of FormatHistory; history/N for the
//     child started at step #N, history/N/M for its own children.
//
// Values of uuid() and random() are masked as <uuid1>, <random1>, ... wherever they
// appear, and paths are relative to the module root or the test (a workflow outside
// both is written by its path from the test file, ../flows/x.star), so expectations do
// not change from run to run or checkout to checkout. An activity no mock defines fails
// the execution with advice to add it to the mocks. README.md's "Golden tests" section
// describes the same format for users of `stent test`. now() reads the virtual clock, which starts at DefaultStart.
//
// The package drives only the public engine API (package stent); it must not reach into
// the interpreter or the backend's storage.
package stenttest
