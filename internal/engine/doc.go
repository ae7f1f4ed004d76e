// Package engine is Stent's machinery behind the root package's API: dispatching
// executions (pinning their scripts), the worker loop (claiming tasks, leases and
// heartbeats, workflow tasks that replay or resume a script, activity attempts,
// deadlines, hand-off and fused steps), the live-execution cache, schedules,
// retention, cancel and terminate, fix-and-resume (retry, upgrade, replay) and
// routing. How schedules fire is decided in internal/schedule, the stores are opened
// by internal/store, and the spans and metrics are internal/telemetry's.
//
// It may import those, internal/errs, interpreter, builtins, activities and backend;
// only the root package, cmd and tests import it.
package engine
