package main

import "github.com/stent-go/stent/internal/wire"

// The --json output contract is package wire's, shared with the HTTP API.
type (
	ExecutionJSON  = wire.Execution
	EventJSON      = wire.Event
	LogLineJSON    = wire.LogLine
	DeadLetterJSON = wire.DeadLetter
	CacheClearJSON = wire.CacheClear
	StatusJSON     = wire.Status
	WorkerJSON     = wire.Worker
	ScheduleJSON   = wire.Schedule
)

var (
	newExecutionJSON  = wire.NewExecution
	newListJSON       = wire.NewList
	newEventJSON      = wire.NewEvent
	newDeadLetterJSON = wire.NewDeadLetter
	newWorkerJSON     = wire.NewWorker
	newScheduleJSON   = wire.NewSchedule
)
