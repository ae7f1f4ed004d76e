// Package stent is a durable workflow engine whose orchestrators are Starlark scripts.
//
// A host program opens an Engine on a database (an SQLite file, the embedded default, or
// PostgreSQL), registers activities (Go functions), serves a worker and dispatches
// executions of .star scripts:
//
//	eng, err := stent.Open(ctx, "stent.db")
//	eng.Register("fetch_user_data", fetchUser)
//	go eng.Serve(ctx, stent.WorkerOptions{Concurrency: 16})
//	res, err := eng.Run(ctx, "workflows/greeting.star", []any{names})
//
// Every durable() call and every sleep() in a script is a checkpoint recorded in the
// execution's history. A worker that crashes loses nothing: the next one replays the
// script against the history (without running finished steps again) and continues.
// Workflow code runs effectively once; activities run at least once, and an activity
// whose completion was committed never runs again.
//
// This package is the API a host program uses, and only that: Engine and its methods,
// the options, Result and the error types. The machinery behind it lives in internal/
// (the engine's worker loop, schedules, retention and fix-and-resume in internal/engine,
// traces and metrics in internal/telemetry), on top of package interpreter (script
// replay), builtins (the Starlark surface), activities (the registry) and backend
// (storage). ARCHITECTURE.md walks through the layers.
package stent
