package postgres

import (
	"cmp"
	"slices"
	"time"

	"github.com/stent-go/stent/backend"
)

// handOffClaim is a ClaimRequest for a hand-off, with ClaimTasks' defaults applied.
type handOffClaim struct {
	worker string
	lease  time.Duration
	limit  int
	// left is what the steps of a commit still to be built may claim of limit: the
	// commit's own step, then the children it creates with their first steps, share it
	// (completeWorkflow resets it to limit for each attempt).
	left   int
	queues []string // nil: any
	kinds  []backend.TaskKind
	caps   map[string]int
	// route: claim only activity tasks of these activities (ClaimRequest.RouteActivities).
	route      bool
	activities []string
}

func newHandOffClaim(req backend.ClaimRequest) handOffClaim {
	c := handOffClaim{worker: req.WorkerID, lease: req.Lease, limit: req.Limit, kinds: req.Kinds,
		caps: req.MaxConcurrent, route: req.RouteActivities, activities: req.Activities}
	if c.lease <= 0 {
		c.lease = defaultLease
	}
	if c.limit <= 0 {
		c.limit = 1
	}
	c.left = c.limit
	if len(req.Queues) > 0 {
		c.queues = req.Queues
	}
	return c
}

func (c *handOffClaim) wants(kind backend.TaskKind) bool {
	return len(c.kinds) == 0 || slices.Contains(c.kinds, kind)
}

// handOffFlags chooses the new tasks a workflow hand-off claims: up to claim.left of
// the activity tasks due at now and on one of claim.queues, the first ones in sequence
// order. ok is false when that depends on the execution's queue (a task on it while
// claim names queues): sqlInsertTasksRanked then chooses.
func handOffFlags(tasks []backend.NewTask, runAts []int64, now int64, claim *handOffClaim) (flags []bool, ok bool) {
	flags = make([]bool, len(tasks))
	if claim == nil || !claim.wants(backend.TaskActivity) {
		return flags, true
	}
	var pick []int
	for i, nt := range tasks {
		if nt.Kind != backend.TaskActivity || runAts[i] > now {
			continue
		}
		if claim.route && !slices.Contains(claim.activities, backend.PayloadName(nt.Payload)) {
			continue
		}
		if claim.queues != nil {
			if nt.Queue == "" {
				return nil, false
			}
			if !slices.Contains(claim.queues, nt.Queue) {
				continue
			}
		}
		pick = append(pick, i)
	}
	slices.SortStableFunc(pick, func(a, b int) int { return cmp.Compare(tasks[a].Seq, tasks[b].Seq) })
	for _, i := range pick[:min(len(pick), claim.left)] {
		flags[i] = true
	}
	return flags, true
}

// countTrue counts the true flags.
func countTrue(flags []bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}
