package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
)

// claimedLimit bounds how many claimed tasks the workers page reads (across workers).
const claimedLimit = 1000

// tasksPerWorker bounds the in-flight tasks listed under one worker.
const tasksPerWorker = 20

type workerTask struct {
	ExecutionID string
	Kind        string
	Seq         int
	Activity    string
	Attempt     int
}

type workerRow struct {
	ID          string
	Host        string
	PID         int
	Queues      string // "all" for every queue
	Activities  []string
	Concurrency int
	InFlight    int // as of its last heartbeat
	Tasks       []workerTask
	MoreTasks   int // held tasks not listed
	Started     time.Time
	Heartbeat   time.Time
	Ago         string
	Stopped     bool
	ReclaimAt   time.Time // stopped: when its leases are (or were) reclaimed
	DropAt      time.Time // stopped: when its row is deleted and it leaves the page
}

type workersData struct {
	Rows      []workerRow
	Live      int
	Stopped   int
	Grace     string
	Retention string
	// TasksKnown is false when the store cannot list the tasks workers hold: only
	// the counts of their heartbeats are shown.
	TasksKnown bool
}

// grace is the dead-worker grace the page judges workers by.
func (s *Server) grace() time.Duration {
	if s.opts.DeadWorkerGrace > 0 {
		return s.opts.DeadWorkerGrace
	}
	return s.eng.DeadWorkerGrace()
}

func (s *Server) workersPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.loadWorkers(r.Context(), time.Now())
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "workers", page{Title: "Workers", Nav: "workers", Live: "workers=1", Data: d})
}

// loadWorkers lists every worker the store still keeps a row of: live ones, and those
// silent for longer than the grace (stopped) until the store's retention drops them.
func (s *Server) loadWorkers(ctx context.Context, now time.Time) (*workersData, error) {
	grace := s.grace()
	d := &workersData{Grace: fmtDuration(grace), Retention: fmtDuration(backend.WorkerRetention)}
	rt, ok := s.b.(backend.Routing)
	if !ok {
		return d, nil
	}
	ws, err := rt.ListWorkers(ctx, now.Add(-backend.WorkerRetention))
	if err != nil {
		return nil, fmt.Errorf("listing workers: %w", err)
	}
	held := map[string][]backend.Task{}
	if ct, ok := s.b.(backend.ClaimedTasks); ok {
		d.TasksKnown = true
		tasks, err := ct.ClaimedTasks(ctx, claimedLimit)
		if err != nil {
			return nil, fmt.Errorf("listing the tasks workers hold: %w", err)
		}
		for _, t := range tasks {
			held[t.LeaseOwner] = append(held[t.LeaseOwner], t)
		}
	}
	for _, x := range ws {
		row := workerRow{ID: x.ID, Host: x.Host, PID: x.PID, Queues: "all", Activities: x.Activities,
			Concurrency: x.Concurrency, InFlight: x.InFlight, Started: x.StartedAt, Heartbeat: x.HeartbeatAt,
			Ago: fmtDuration(now.Sub(x.HeartbeatAt).Truncate(100 * time.Millisecond))}
		if len(x.Queues) > 0 {
			row.Queues = strings.Join(x.Queues, ", ")
		}
		if now.Sub(x.HeartbeatAt) > grace {
			row.Stopped = true
			row.ReclaimAt = x.HeartbeatAt.Add(grace)
			row.DropAt = x.HeartbeatAt.Add(backend.WorkerRetention)
			d.Stopped++
		} else {
			d.Live++
		}
		for i, t := range held[x.ID] {
			if i == tasksPerWorker {
				row.MoreTasks = len(held[x.ID]) - i
				break
			}
			wt := workerTask{ExecutionID: t.ExecutionID, Kind: string(t.Kind), Seq: t.Seq, Attempt: t.Attempt}
			if t.Kind == backend.TaskActivity {
				var p backend.ActivityPayload
				if json.Unmarshal(t.Payload, &p) == nil {
					wt.Activity = p.Name
				}
			}
			row.Tasks = append(row.Tasks, wt)
		}
		d.Rows = append(d.Rows, row)
	}
	return d, nil
}

// workersState is what changes on the workers page: who is there, alive or not, and
// what each one holds (not the heartbeats, which move every few seconds).
func (s *Server) workersState(ctx context.Context) (any, error) {
	d, err := s.loadWorkers(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	var st []any
	for _, row := range d.Rows {
		st = append(st, row.ID, row.Stopped, row.InFlight, row.Tasks)
	}
	return st, nil
}
