// Package engine is Stent's machinery behind the root package's API: dispatching
// executions (pinning their scripts), the worker loop (claiming tasks, leases and
// heartbeats, workflow tasks that replay or resume a script, activity attempts,
// deadlines, hand-off and fused steps), the live-execution cache, schedules,
// retention, cancel and terminate, fix-and-resume (retry, upgrade, replay) and
// routing, and opening a store from a DSN.
//
// It may import internal/telemetry, internal/errs, interpreter, builtins, activities,
// backend and the backend implementations; only the root package, cmd and tests import
// it.
package engine
