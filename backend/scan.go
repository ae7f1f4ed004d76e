package backend

import (
	"encoding/json"
	"fmt"
	"time"
)

// This file turns stored rows into backend values the same way in every store: each
// store writes its own SQL, selects the columns named here in this order, and hands
// the row to the scan function.

// Scanner is one row of a query's result: database/sql's *Row and *Rows and pgx's Row
// and Rows all have it.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a query's result set as the shared loops read it: database/sql's *Rows and
// pgx's Rows both have it. The caller closes it; both drivers close a result set once
// Next has returned false.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// CollectRows reads every row of rows with scan, in order, and returns them with the
// first error of scan or of rows.
func CollectRows[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DeadLetterColumns is the column list of dead_letters that ScanDeadLetter reads.
const DeadLetterColumns = `id, execution_id, seq, activity, payload, error, status, created_at`

// ScanDeadLetter reads a dead letter selected as DeadLetterColumns (times in unix
// milliseconds, payload and error as JSON text).
func ScanDeadLetter(s Scanner) (*DeadLetter, error) {
	var (
		d             DeadLetter
		payload, errb *string
		created       int64
	)
	if err := s.Scan(&d.ID, &d.ExecutionID, &d.Seq, &d.Activity, &payload, &errb, &d.Status, &created); err != nil {
		return nil, err
	}
	d.Payload = rawJSON(payload)
	var err error
	if d.Error, err = DecodeErrorInfo(errb); err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", d.ID, err)
	}
	d.CreatedAt = time.UnixMilli(created)
	return &d, nil
}

// DecodeErrorInfo decodes an error stored as JSON text; nil or empty is no error.
func DecodeErrorInfo(s *string) (*ErrorInfo, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	var e ErrorInfo
	if err := json.Unmarshal([]byte(*s), &e); err != nil {
		return nil, fmt.Errorf("decoding stored error info: %w", err)
	}
	return &e, nil
}

// ScheduleColumns is the column list of schedules that ScanSchedule reads.
const ScheduleColumns = `id, spec, timezone, overlap, catchup_ms, jitter_ms, bundle, entry, args, queue, paused,
	paused_reason, next_at, buffered_at, last_execution_id, created_at, updated_at`

// ScanSchedule reads a schedule selected as ScheduleColumns (times and durations in
// unix milliseconds, bundle and args as JSON text).
func ScanSchedule(s Scanner) (*Schedule, error) {
	var (
		sc                         Schedule
		catchup, jitter            int64
		bundle, args               string
		nextAt, createdAt, updated int64
		buffered                   *int64
	)
	if err := s.Scan(&sc.ID, &sc.Spec, &sc.Timezone, &sc.Overlap, &catchup, &jitter, &bundle, &sc.Entry, &args,
		&sc.Queue, &sc.Paused, &sc.PausedReason, &nextAt, &buffered, &sc.LastExecutionID, &createdAt, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(bundle), &sc.Bundle); err != nil {
		return nil, fmt.Errorf("decoding the bundle of schedule %s: %w", sc.ID, err)
	}
	sc.Catchup, sc.Jitter = time.Duration(catchup)*time.Millisecond, time.Duration(jitter)*time.Millisecond
	sc.Args = json.RawMessage(args)
	sc.NextAt, sc.CreatedAt, sc.UpdatedAt = time.UnixMilli(nextAt), time.UnixMilli(createdAt), time.UnixMilli(updated)
	sc.BufferedAt = timePtr(buffered)
	return &sc, nil
}

// ScanDeadLetters reads every dead letter of rows (see ScanDeadLetter).
func ScanDeadLetters(rows Rows) ([]DeadLetter, error) {
	return CollectRows(rows, deref(ScanDeadLetter))
}

// ScanSchedules reads every schedule of rows (see ScanSchedule).
func ScanSchedules(rows Rows) ([]Schedule, error) {
	return CollectRows(rows, deref(ScanSchedule))
}

// deref turns a scan that returns a pointer into one CollectRows takes.
func deref[T any](scan func(Scanner) (*T, error)) func(Scanner) (T, error) {
	return func(s Scanner) (T, error) {
		p, err := scan(s)
		if err != nil {
			var zero T
			return zero, err
		}
		return *p, nil
	}
}

// ScanClaimedSchedules reads every schedule of rows, each leased until leaseUntil.
func ScanClaimedSchedules(rows Rows, leaseUntil time.Time) ([]ClaimedSchedule, error) {
	scs, err := ScanSchedules(rows)
	if err != nil {
		return nil, err
	}
	var out []ClaimedSchedule
	for _, sc := range scs {
		out = append(out, ClaimedSchedule{Schedule: sc, LeaseUntil: leaseUntil})
	}
	return out, nil
}

// ScanScheduleTicks reads every tick of rows selected as (tick_at, outcome,
// execution_id, at), times in unix milliseconds.
func ScanScheduleTicks(rows Rows) ([]ScheduleTick, error) {
	return CollectRows(rows, func(s Scanner) (ScheduleTick, error) {
		var (
			tk         ScheduleTick
			tickAt, at int64
		)
		err := s.Scan(&tickAt, &tk.Outcome, &tk.ExecutionID, &at)
		tk.TickAt, tk.At = time.UnixMilli(tickAt), time.UnixMilli(at)
		return tk, err
	})
}

// ExecutionColumns is the column list of executions that ScanExecution reads.
const ExecutionColumns = `id, parent_id, parent_seq, bundle, entry, args, queue, status, result, error,
	version, run, created_at, updated_at, start_at, deadline, completed_at,
	CASE WHEN crash_version = version THEN crashes ELSE 0 END`

// ScanExecution reads an execution selected as ExecutionColumns (times in unix
// milliseconds, bundle, args, result and error as JSON text).
func ScanExecution(s Scanner) (*Execution, error) {
	var (
		e                             Execution
		bundle, args, result, errInfo *string
		status                        string
		created, updated, sAt         int64
		deadline, completedAt         *int64
	)
	if err := s.Scan(&e.ID, &e.ParentID, &e.ParentSeq, &bundle, &e.Entry, &args, &e.Queue, &status,
		&result, &errInfo, &e.Version, &e.Run, &created, &updated, &sAt, &deadline, &completedAt, &e.Crashes); err != nil {
		return nil, err
	}
	if bundle != nil && *bundle != "" {
		if err := json.Unmarshal([]byte(*bundle), &e.Bundle); err != nil {
			return nil, fmt.Errorf("decoding bundle of %s: %w", e.ID, err)
		}
	}
	e.Args, e.Result = rawJSON(args), rawJSON(result)
	e.Status = Status(status)
	var err error
	if e.Error, err = DecodeErrorInfo(errInfo); err != nil {
		return nil, fmt.Errorf("execution %s: %w", e.ID, err)
	}
	e.CreatedAt, e.UpdatedAt, e.StartAt = time.UnixMilli(created), time.UnixMilli(updated), time.UnixMilli(sAt)
	e.Deadline, e.CompletedAt = timePtr(deadline), timePtr(completedAt)
	return &e, nil
}

// ScanExecutions reads every execution of rows (see ScanExecution).
func ScanExecutions(rows Rows) ([]Execution, error) {
	return CollectRows(rows, deref(ScanExecution))
}

// ScanEvents reads every event of rows selected as (id, seq, kind, name, data, error,
// at, cache_hit).
func ScanEvents(rows Rows) ([]Event, error) {
	return CollectRows(rows, func(s Scanner) (Event, error) {
		var (
			ev         Event
			kind       string
			data, errb *string
			at         int64
		)
		if err := s.Scan(&ev.ID, &ev.Seq, &kind, &ev.Name, &data, &errb, &at, &ev.CacheHit); err != nil {
			return ev, err
		}
		ev.Kind, ev.Data, ev.At = EventKind(kind), rawJSON(data), time.UnixMilli(at)
		var err error
		if ev.Error, err = DecodeErrorInfo(errb); err != nil {
			return ev, fmt.Errorf("event %d: %w", ev.ID, err)
		}
		return ev, nil
	})
}

// ScanLogLines reads every log line of rows selected as (execution_id, run, at,
// message).
func ScanLogLines(rows Rows) ([]LogLine, error) {
	return CollectRows(rows, func(s Scanner) (LogLine, error) {
		var (
			l  LogLine
			at int64
		)
		err := s.Scan(&l.ExecutionID, &l.Run, &at, &l.Message)
		l.At = time.UnixMilli(at)
		return l, err
	})
}

// ScanSignals reads every signal of rows selected as (id, name, payload, at).
func ScanSignals(rows Rows) ([]Signal, error) {
	return CollectRows(rows, func(s Scanner) (Signal, error) {
		var (
			sig     Signal
			payload *string
			at      int64
		)
		err := s.Scan(&sig.ID, &sig.Name, &payload, &at)
		sig.Payload, sig.At = rawJSON(payload), time.UnixMilli(at)
		return sig, err
	})
}

// rawJSON is JSON text as read from a nullable column: nil for NULL.
func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

// timePtr is a time read from a nullable unix-milliseconds column: nil for NULL.
func timePtr(ms *int64) *time.Time {
	if ms == nil {
		return nil
	}
	t := time.UnixMilli(*ms)
	return &t
}

// ScanPendingTasks reads every pending task of rows selected as (id, kind, seq, queue,
// activity, run_at, attempt).
func ScanPendingTasks(rows Rows) ([]PendingTask, error) {
	return CollectRows(rows, func(s Scanner) (PendingTask, error) {
		var (
			p     PendingTask
			kind  string
			runAt int64
		)
		err := s.Scan(&p.ID, &kind, &p.Seq, &p.Queue, &p.Activity, &runAt, &p.Attempt)
		p.Kind, p.RunAt = TaskKind(kind), time.UnixMilli(runAt)
		return p, err
	})
}

// ScanTaskCounts reads every count of rows selected as (kind, queue, count).
func ScanTaskCounts(rows Rows) ([]TaskCount, error) {
	return CollectRows(rows, func(s Scanner) (TaskCount, error) {
		var kind string
		c := TaskCount{}
		if err := s.Scan(&kind, &c.Queue, &c.Count); err != nil {
			return c, err
		}
		c.Kind = TaskKind(kind)
		return c, nil
	})
}
