package backend

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors. Backends translate driver errors into these in one place.
var (
	// ErrNotFound: the execution, script or task does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: the task is no longer held by the caller (its lease expired and it was
	// reclaimed, it was released, or it was already completed). The caller must drop its
	// work for that task; nothing was written.
	ErrLeaseLost = errors.New("task lease lost")
	// ErrNotRunning: the execution already ended (signal, cancel).
	ErrNotRunning = errors.New("execution is not running")
	// ErrStaleExecution: the execution's version moved on (another worker advanced it) or
	// it is no longer running. Nothing was written.
	ErrStaleExecution = errors.New("execution changed since it was read")
	// ErrStaleParent: the parent's step carried by a child's end (ParentStep) was taken
	// from a parent that changed since (its version moved on, it ended, or it has an
	// event its script did not see). Nothing was written, the child's end included.
	ErrStaleParent = errors.New("parent changed since its step was taken")
	// ErrUnavailable: the database could not be reached or dropped the connection
	// (refused, reset, terminated by the server, shutting down). The operation may or
	// may not have been applied; running it again later, after a backoff, is how a
	// caller gets past an outage (see Retryable).
	ErrUnavailable = errors.New("database unavailable")
)

// Retryable reports whether err is worth retrying after a backoff: the database was
// unreachable (ErrUnavailable). Every other error (a constraint, a bad statement, a
// lost lease) stays the same when the operation is run again.
func Retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// Status is the lifecycle state of an execution.
type Status string

const (
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusTimedOut  Status = "timed_out"
)

// Terminal reports whether no more work happens for an execution in this state.
func (s Status) Terminal() bool { return s != StatusRunning && s != StatusScheduled && s != "" }

// EventKind names an entry of an execution's history.
type EventKind string

const (
	EventStarted           EventKind = "started"
	EventActivityScheduled EventKind = "activity_scheduled"
	EventActivityCompleted EventKind = "activity_completed"
	EventActivityFailed    EventKind = "activity_failed"
	EventChildScheduled    EventKind = "child_scheduled"
	EventChildCompleted    EventKind = "child_completed" // Error set when the child failed
	EventTimerScheduled    EventKind = "timer_scheduled"
	EventTimerFired        EventKind = "timer_fired"
	EventSignalWait        EventKind = "signal_wait" // wait_signal() at Seq; Data: name, timeout
	EventSignalReceived    EventKind = "signal_received"
	// EventSignalTimedOut: the wait_signal at Seq timed out (Name: the signal). Older
	// histories record it as timer_fired; replay accepts both.
	EventSignalTimedOut  EventKind = "signal_timed_out"
	EventSideEffect      EventKind = "side_effect"
	EventCancelRequested EventKind = "cancel_requested"
	EventCompleted       EventKind = "completed"
	EventFailed          EventKind = "failed"
	// EventActivityAttemptFailed records an attempt of the activity at Seq that failed
	// and is retried (see AttemptData; Error: why it failed). It is informational:
	// replay skips it, the step's outcome is its activity_completed or activity_failed.
	EventActivityAttemptFailed EventKind = "activity_attempt_failed"
	// EventDeadLetterReplayed records `stent dlq replay` of the step at Seq: the step's
	// earlier activity_failed and the execution's failed event stay in the history, and
	// the step's outcome is what comes after this event. Data: {"dead_letter_id": N}.
	EventDeadLetterReplayed EventKind = "dead_letter_replayed"
)

// TaskKind names what a worker does with a claimed task.
type TaskKind string

const (
	// TaskWorkflow advances an execution's script. At most one exists per execution.
	TaskWorkflow TaskKind = "workflow"
	// TaskActivity runs one attempt of an activity (Go function or command).
	TaskActivity TaskKind = "activity"
	// TaskTimer fires a durable timer when its RunAt is due.
	TaskTimer TaskKind = "timer"
	// TaskDeadline ends an execution as timed_out when its max duration passes.
	TaskDeadline TaskKind = "deadline"
)

// DefaultQueue is the queue used when none is named.
const DefaultQueue = "default"

// ErrorInfo is a failure as stored: what failed and why, kept as data so it survives
// serialization and can be shown by the CLI.
type ErrorInfo struct {
	Message string `json:"message"`
	// Type classifies the failure: "activity", "child", "script", "nondeterminism",
	// "timeout", "cancelled", ... Free-form, for display and matching.
	Type string `json:"type,omitempty"`
	// Activity is the failing activity's name, when there is one.
	Activity string `json:"activity,omitempty"`
	// Attempts is how many attempts were made, for activity failures.
	Attempts int `json:"attempts,omitempty"`
	// Stack is the Starlark call stack of the failing script, outermost first.
	Stack string `json:"stack,omitempty"`
	// Seq is the step whose failure failed the script, when there is one.
	Seq int `json:"seq,omitempty"`
}

func (e *ErrorInfo) Error() string {
	if e == nil {
		return "<nil>"
	}
	return e.Message
}

// Bundle pins the source of an execution: the main script and every file it load()s,
// each by content hash. Paths use '/': the main script's as given at dispatch
// (cleaned), each loaded file's as resolved from the file that loads it.
type Bundle struct {
	Main  string            `json:"main"`
	Files map[string]string `json:"files"` // path -> sha256 hex of content
	// Trace is the W3C traceparent of the execution's span when tracing was on at
	// dispatch, and TraceParent the span ID of that span's parent (the dispatch span, or
	// the parent execution's span). Not part of the source: it rides along with the
	// bundle so every worker finds it without another read or column.
	Trace       string `json:"trace,omitempty"`
	TraceParent string `json:"trace_parent,omitempty"`
}

// Execution is one run of an entry function of a pinned script.
type Execution struct {
	ID        string
	ParentID  string // empty for a root execution
	ParentSeq int    // the parent's sequence number that awaits this child
	Bundle    Bundle
	Entry     string          // function name; "path:fn" for a function of a loaded file
	Args      json.RawMessage // JSON array of positional arguments
	Queue     string
	Status    Status
	Result    json.RawMessage // set when completed
	Error     *ErrorInfo      // set when failed / cancelled / timed out
	// Version counts committed workflow tasks. A worker holding a live (parked) script
	// checks it to know whether another worker advanced the execution meanwhile.
	Version int64
	// Run counts continue_as_new restarts: 1 for the first run.
	Run         int
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartAt     time.Time  // when its first workflow task becomes runnable
	Deadline    *time.Time // max-duration deadline, if any
	CompletedAt *time.Time
	// Crashes counts how many times the workflow task of the current step (this
	// Version) was reclaimed from a worker that died or lost its lease while running it.
	Crashes int
}

// Event is one entry of an execution's history.
type Event struct {
	// ID orders events within an execution; it grows with every append (not dense).
	ID   int64
	Seq  int // the command sequence number it belongs to; 0 for started/completed/failed
	Kind EventKind
	// Name: activity name, child entry, "sleep", side-effect kind ("now", "uuid", "random"),
	// or signal name.
	Name string
	// Data: for *_scheduled, a JSON object written by the interpreter (args, hash, call
	// position, options); for *_completed and side_effect, the JSON result value; for
	// timer_fired, null.
	Data  json.RawMessage
	Error *ErrorInfo // for *_failed and failed child_completed
	// CacheHit marks an activity_completed whose result came from the result cache.
	CacheHit bool
	At       time.Time
}

// Signal is a message sent to an execution that its script has not consumed yet.
type Signal struct {
	ID      int64
	Name    string
	Payload json.RawMessage
	At      time.Time
}

// NewEvent is an event to append; the backend assigns ID and At.
type NewEvent struct {
	Seq   int
	Kind  EventKind
	Name  string
	Data  json.RawMessage
	Error *ErrorInfo
}

// Task is work claimed by a worker.
type Task struct {
	ID          int64
	Kind        TaskKind
	ExecutionID string
	Seq         int // activity / timer: the command's sequence number; workflow: 0
	Queue       string
	RunAt       time.Time
	Attempt     int // activity: 1 for the first attempt
	// Payload is the activity invocation (see ActivityPayload) for activity tasks.
	Payload json.RawMessage
	// Fence is bumped on every claim; completing a task requires the fence it was
	// claimed with, so a worker that lost its lease cannot overwrite a newer result.
	Fence          int64
	LeaseOwner     string
	LeaseExpiresAt time.Time
}

// Ref identifies a claimed task together with its fence.
func (t Task) Ref() TaskRef { return TaskRef{ID: t.ID, Fence: t.Fence} }

// TaskRef is a claimed task's identity plus the fence token it was claimed with.
type TaskRef struct {
	ID    int64
	Fence int64
}

// ActivityPayload is what an activity task carries. Backends store it opaquely.
type ActivityPayload struct {
	Name    string          `json:"name"`
	Args    json.RawMessage `json:"args"` // JSON array
	Options json.RawMessage `json:"options,omitempty"`
	// Heartbeat is the last heartbeat details of the previous attempt.
	Heartbeat json.RawMessage `json:"heartbeat,omitempty"`
	// Trace is the W3C traceparent of the execution's span (see Bundle.Trace), so an
	// attempt's span joins the execution's trace without reading the execution.
	Trace string `json:"trace,omitempty"`
}

// NewTask is a task to create together with a state change.
type NewTask struct {
	Kind     TaskKind
	Seq      int
	Queue    string // empty: the execution's queue
	Priority int    // higher first among due tasks; 0 by default
	RunAt    time.Time
	Attempt  int
	Payload  json.RawMessage
}

// NewExecution describes an execution to create (a dispatch or a child).
type NewExecution struct {
	ID        string
	ParentID  string
	ParentSeq int
	Bundle    Bundle
	// Sources holds the content of the bundle's files by hash. Files already stored
	// under the same hash are left as they are (content-addressed).
	Sources  map[string][]byte
	Entry    string
	Args     json.RawMessage
	Queue    string
	Priority int       // of the execution's workflow tasks; higher first
	StartAt  time.Time // first workflow task's RunAt
	Deadline *time.Time
	// Tags are stored with the execution (checked by the caller with CheckTags).
	Tags map[string]string
	// FirstStep, for a child created by a workflow task result, is the child's first
	// step, taken already by the parent's worker: the child is created with it instead
	// of a first workflow task (its ExecutionID and ExpectedVersion are ignored; its own
	// Children may have first steps in turn; none of its tasks is claimed, and it must
	// not end the child). Only backends that implement ChildFirstSteps honour it; the
	// engine sets it for no other.
	FirstStep *WorkflowTaskResult
}

// ChildFirstSteps is an optional extension of Backend: it creates children with their
// NewExecution.FirstStep in the transaction of the parent's step, so that a tree of
// executions descends in one commit.
type ChildFirstSteps interface {
	CreatesChildrenWithFirstSteps()
}

// Finish ends an execution.
type Finish struct {
	Status Status // completed, failed, cancelled or timed_out
	Result json.RawMessage
	Error  *ErrorInfo
}

// WorkflowTaskResult is everything one workflow task produced, committed atomically by
// CompleteWorkflowTask.
type WorkflowTaskResult struct {
	Task        TaskRef
	ExecutionID string
	// ExpectedVersion must equal the execution's Version, else ErrStaleExecution.
	ExpectedVersion int64
	// Events to append (scheduled commands and side effects), in sequence order.
	Events []NewEvent
	// Tasks to create for this execution (activity attempts, timers).
	Tasks []NewTask
	// Children to create, each with its first workflow task.
	Children []NewExecution
	// Logs are lines the script printed during this task (already de-duplicated),
	// stored with the execution's current Run.
	Logs []string
	// Finish, when set, ends the execution: its remaining tasks are deleted and, for a
	// child, a child_completed event is appended to the parent and the parent's workflow
	// task is enqueued.
	Finish *Finish
	// NoParent tells that the execution is a root (its ParentID is empty), so that a
	// Finish need not look for a parent to tell. It is a hint a backend may use; false
	// always works.
	NoParent bool
	// DeadLetter, with a failed Finish, records the activity whose failure failed the
	// execution (ExecutionID, Seq, Activity, Payload, Error are used).
	DeadLetter *DeadLetter
	// ConsumedSignals are signal IDs the script received; they are no longer pending.
	ConsumedSignals []int64
	// CancelTimers deletes this execution's pending timer tasks at these seqs.
	CancelTimers []int
	// ContinueAsNew, when non-nil (instead of Finish), restarts the execution under the
	// same ID: its events and pending tasks (but a deadline task) are deleted, Args is
	// set to ContinueAsNew, Run is incremented, a started event is appended and a new
	// workflow task is created, runnable now.
	ContinueAsNew json.RawMessage
	// CheckSeen (honoured by FusedStep.CompleteActivityAndStep) makes the commit fail
	// with ErrStaleExecution, writing nothing, when the execution has an event that a
	// script does not write itself (an outcome, a cancellation request...) with an ID
	// above SeenThrough, other than the completed activity's own: the step was taken
	// without it. A worker that feeds one outcome to a script waiting for several uses
	// it, so that an outcome another worker recorded meanwhile is never skipped.
	CheckSeen   bool
	SeenThrough int64
	// ParentStep, with a Finish of a child, is the step the parent's script took with
	// the child's outcome, committed in the same transaction (see ParentSteps). Only a
	// backend that implements ParentSteps is given one.
	ParentStep *ParentStep
}

// ActivityResult is the outcome of an activity task's final attempt.
type ActivityResult struct {
	Task        TaskRef
	ExecutionID string
	Seq         int
	Name        string
	Result      json.RawMessage // on success
	Error       *ErrorInfo      // on failure: appends activity_failed instead of activity_completed
	// CacheHit records that Result came from the result cache (the activity did not run).
	CacheHit bool
	// Cache, when set with a successful Result, stores Result in the result cache in the
	// same transaction.
	Cache *CacheEntry
}

// CacheEntry is a stored activity result, shared across executions.
type CacheEntry struct {
	Key       string // activity name + version + canonical JSON of the arguments, hashed
	Activity  string
	Result    json.RawMessage
	ExpiresAt *time.Time // nil: never
}

// DeadLetter records an activity that exhausted its retries and failed its execution.
type DeadLetter struct {
	ID          int64
	ExecutionID string
	Seq         int
	Activity    string
	Payload     json.RawMessage // the activity task payload (name, args, options)
	Error       *ErrorInfo
	Status      string // "open", "replayed" or "discarded"
	CreatedAt   time.Time
}

// ClaimRequest asks for up to Limit runnable tasks.
type ClaimRequest struct {
	WorkerID string
	Kinds    []TaskKind // empty: all kinds
	Queues   []string   // empty: all queues
	Limit    int
	Lease    time.Duration
	// MaxConcurrent caps, per activity name, how many activity tasks of that name may
	// be claimed at once across all workers; a claim never takes one past its cap.
	MaxConcurrent map[string]int
	// RouteActivities, when set, claims only activity tasks whose activity is one of
	// Activities (the worker's registered names; none when empty): activity routing.
	RouteActivities bool
	Activities      []string
}

// LogLine is one line printed by a script.
type LogLine struct {
	ExecutionID string
	Run         int // the execution's Run when it was printed
	At          time.Time
	Message     string
}

// ListFilter narrows ListExecutions and CountExecutions. Zero values mean "any".
// Executions are listed newest first: created_at descending, then ID descending.
type ListFilter struct {
	// Status: StatusScheduled matches running executions whose StartAt is still in the
	// future, StatusRunning the other running ones (see Execution.StatusAt).
	Status   Status
	ParentID string
	RootOnly bool
	// Script is the main script's path as dispatched (Bundle.Main).
	Script string
	// IDPrefix matches executions whose ID starts with it (case-sensitive).
	IDPrefix string
	// Since and Until bound CreatedAt: Since <= created_at < Until.
	Since, Until time.Time
	Queue        string
	// Tags matches executions that have every one of these tags.
	Tags map[string]string
	// After is the cursor of the last execution of the previous page (ListCursor);
	// the list continues with the executions after it in list order.
	After string
	Limit int // 0: 100
	// CountAtMost bounds CountExecutions: it stops counting a status once it has
	// found this many executions of it, so a count equal to CountAtMost means "at least
	// that many" (CountCapped). 0 counts exactly, which reads every matching execution.
	CountAtMost int
}

// DefaultCountAtMost is the bound `stent list`, the HTTP API and the web view count up
// to per status (ListFilter.CountAtMost): their first page then costs the same with a
// million executions in the store as with a hundred.
const DefaultCountAtMost = 10000

// CountCapped reports whether n, a count from CountExecutions with f, stopped at
// f.CountAtMost: there are at least n matching executions, maybe more.
func (f ListFilter) CountCapped(n int) bool { return f.CountAtMost > 0 && n >= f.CountAtMost }

// CountTotal adds up counts from CountExecutions with f; capped says the total is a
// lower bound, a count in it having stopped at f.CountAtMost.
func (f ListFilter) CountTotal(counts map[Status]int) (total int, capped bool) {
	for _, n := range counts {
		total += n
		capped = capped || f.CountCapped(n)
	}
	return total, capped
}

// Backend is the durable store behind an engine. All methods are safe for concurrent use
// by many goroutines and (where the store allows it) many processes.
//
// Time: backends read the current time from the Clock they were opened with, so tests can
// drive leases and timers with a fake clock.
type Backend interface {
	// Migrate creates or upgrades the schema. Safe to call concurrently from several
	// processes; idempotent.
	Migrate(ctx context.Context) error
	// Close releases connections.
	Close() error

	// CreateExecution stores the execution, its script sources and a started event,
	// and enqueues its first workflow task at StartAt (and, when Deadline is set, a
	// deadline task at Deadline), in one transaction. If an
	// execution with the same ID exists, nothing is written and created is false.
	CreateExecution(ctx context.Context, e NewExecution) (created bool, err error)
	// GetExecution returns ErrNotFound when there is no such execution.
	GetExecution(ctx context.Context, id string) (*Execution, error)
	// ListExecutions lists executions, newest first (see ListFilter). A malformed
	// After cursor is an error wrapping ErrBadCursor.
	ListExecutions(ctx context.Context, f ListFilter) ([]Execution, error)
	// CountExecutions counts the executions matching f per status (scheduled apart from
	// running, as ListFilter.Status does), ignoring f.Status, f.After and f.Limit;
	// with f.CountAtMost it counts each status up to that bound (ListFilter.CountCapped).
	// Statuses with no execution are absent from the map.
	CountExecutions(ctx context.Context, f ListFilter) (map[Status]int, error)
	// History returns the events of an execution with ID > afterEventID, in order.
	History(ctx context.Context, executionID string, afterEventID int64) ([]Event, error)
	// Logs returns the lines an execution printed, in order.
	Logs(ctx context.Context, executionID string) ([]LogLine, error)
	// ExecutionTasks returns the tasks of an execution (pending and claimed), by Seq then
	// ID, for display: what a running execution waits for. A claimed task has LeaseOwner
	// set; a pending one has none.
	ExecutionTasks(ctx context.Context, executionID string) ([]Task, error)
	// GetScript returns a stored script file by content hash, or ErrNotFound.
	GetScript(ctx context.Context, hash string) ([]byte, error)

	// Heartbeat records that a worker is alive. Tasks leased by a worker whose last
	// heartbeat is older than the grace passed to ReclaimTasks become claimable again.
	Heartbeat(ctx context.Context, workerID string) error
	// ReclaimTasks makes claimable again every claimed task whose lease expired or whose
	// owner has not sent a heartbeat within grace. It returns how many it released.
	ReclaimTasks(ctx context.Context, grace time.Duration) (int, error)
	// ClaimTasks leases up to Limit pending tasks whose RunAt is due, highest Priority
	// first, then earliest, to the worker, bumping each task's fence. Activity tasks whose
	// name has a MaxConcurrent cap are only claimed while fewer than the cap are claimed
	// (by anyone); concurrent claimers must not exceed it together.
	ClaimTasks(ctx context.Context, req ClaimRequest) ([]Task, error)
	// ExtendLeases pushes the lease of tasks still held by the worker to now+lease.
	// It returns the refs it could not extend (lost).
	ExtendLeases(ctx context.Context, workerID string, refs []TaskRef, lease time.Duration) (lost []TaskRef, err error)
	// ReleaseTask gives a claimed task back unchanged (graceful shutdown), runnable at
	// runAt. ErrLeaseLost if the caller no longer holds it.
	ReleaseTask(ctx context.Context, ref TaskRef, runAt time.Time) error

	// CompleteWorkflowTask commits a workflow task's output atomically: appends events,
	// creates tasks and children, writes logs, optionally finishes the execution, bumps
	// the execution's Version and returns it. The workflow task itself is removed, unless
	// new results arrived for the execution while it was claimed, in which case it is made
	// runnable again at once. ErrLeaseLost / ErrStaleExecution write nothing.
	CompleteWorkflowTask(ctx context.Context, r WorkflowTaskResult) (newVersion int64, err error)
	// CompleteActivityTask records an activity's final outcome: appends
	// activity_completed or activity_failed, deletes the task and enqueues the
	// execution's workflow task, atomically. If the execution is no longer running the
	// task is deleted and nothing else happens.
	CompleteActivityTask(ctx context.Context, r ActivityResult) error
	// RetryActivityTask schedules the next attempt of a claimed activity task at runAt
	// with the given attempt number and payload, releasing the lease. A non-nil failed
	// (the activity_attempt_failed event of the attempt that failed) is appended to the
	// task's execution, while it runs, in the same transaction.
	RetryActivityTask(ctx context.Context, ref TaskRef, runAt time.Time, attempt int, payload json.RawMessage, failed *NewEvent) error
	// FireTimer appends timer_fired (signal_timed_out when the timer is the timeout of a
	// signal_wait) for the timer task, deletes it and enqueues the
	// execution's workflow task, atomically.
	FireTimer(ctx context.Context, ref TaskRef) error
	// DeleteTask removes a claimed task without recording anything (e.g. a workflow task
	// for an execution that already ended).
	DeleteTask(ctx context.Context, ref TaskRef) error
	// NextTaskAt returns the earliest RunAt of the pending tasks on the queues (all
	// queues when empty); ok is false when there are none. Virtual time uses it.
	NextTaskAt(ctx context.Context, queues []string) (at time.Time, ok bool, err error)

	// SignalExecution stores a signal for a running execution and enqueues its workflow
	// task, atomically. ErrNotFound / ErrNotRunning otherwise.
	SignalExecution(ctx context.Context, executionID, name string, payload json.RawMessage) error
	// PendingSignals returns the execution's signals not consumed yet, oldest first.
	PendingSignals(ctx context.Context, executionID string) ([]Signal, error)
	// EndExecution ends a running execution with status (cancelled or timed_out) and
	// info, and, in the same transaction, every running descendant (children, their
	// children, ...) with the same status: for each, a cancel_requested event (for
	// cancelled) and a failed event (Error=info) are appended, all its tasks (claimed
	// or not) are deleted and completed_at is set. If the execution named has a running
	// parent, a child_completed event with the error is appended to the parent and its
	// workflow task enqueued. ended is false (and nothing is written) when the execution
	// already ended; ErrNotFound when it does not exist.
	EndExecution(ctx context.Context, executionID string, status Status, info *ErrorInfo) (ended bool, err error)

	// CachedResult returns a stored, unexpired activity result.
	CachedResult(ctx context.Context, key string) (json.RawMessage, bool, error)
	// ClearCache deletes the cached results of one activity, or all when activity is "".
	ClearCache(ctx context.Context, activity string) (int, error)

	// ListDeadLetters lists dead letters, newest first; status "" means any.
	ListDeadLetters(ctx context.Context, status string, limit int) ([]DeadLetter, error)
	// GetDeadLetter returns ErrNotFound when there is no such dead letter.
	GetDeadLetter(ctx context.Context, id int64) (*DeadLetter, error)
	// ReplayDeadLetter re-runs the failed step: in one transaction the execution (which
	// must be failed, else ErrNotRunning-like error) is set running again, a
	// dead_letter_replayed event for the step is appended (history is append-only: the
	// failure events stay), a new
	// activity task (attempt 1, the dead letter's payload) is created, the version is
	// bumped and the dead letter is marked replayed. Live runs of the execution are
	// stale afterwards.
	ReplayDeadLetter(ctx context.Context, id int64) error
	// DiscardDeadLetter marks an open dead letter discarded.
	DiscardDeadLetter(ctx context.Context, id int64) error
}

// HandOff is an optional extension of Backend: state changes that also claim, in the
// same transaction, the task they make runnable, for the worker that made the change.
// The worker then goes on with the execution at once, without another claim round trip
// (in-process hand-off). The returned tasks are claimed exactly as ClaimTasks would
// claim them (status, lease owner, lease expiry, fence bumped).
type HandOff interface {
	// CompleteActivityTaskAndClaim is CompleteActivityTask; in addition, when the
	// execution's workflow task is then pending and due, and its queue is one of
	// claim.Queues (any queue when empty), it is claimed for claim.WorkerID with
	// claim.Lease and returned. It returns nil when there is nothing to claim (for
	// example the workflow task is held by another worker: it then gets the rerun flag
	// as usual).
	CompleteActivityTaskAndClaim(ctx context.Context, r ActivityResult, claim ClaimRequest) (*Task, error)
	// CompleteWorkflowTaskAndClaim is CompleteWorkflowTask; in addition, up to
	// claim.Limit of the activity tasks it created that are due now (and on one of
	// claim.Queues, when given) are claimed for claim.WorkerID and returned, in
	// sequence order.
	CompleteWorkflowTaskAndClaim(ctx context.Context, r WorkflowTaskResult, claim ClaimRequest) (newVersion int64, claimed []Task, err error)
}

// ParentHandOff is an optional extension of HandOff. A commit with a claim that ends a
// child (CompleteWorkflowTaskAndClaim, FusedStep.CompleteActivityAndStep) also claims
// the parent's workflow task that it enqueues, on the terms of
// CompleteActivityTaskAndClaim, and returns it among the claimed tasks: the worker
// that finished the child runs the parent's next step at once.
type ParentHandOff interface {
	ClaimsParentWorkflowTasks()
}
