package engine

import (
	"slices"
	"time"

	"github.com/stent-go/stent/backend"
)

// claimable lists the new tasks of a commit of res that a hand-off claim may claim,
// as the backend shares the claim out: res's own (unless it ends the execution), then
// those of the children it creates with their first steps, each followed by its own
// children's; for a child's end carrying its parent's step, the parent's step's.
func claimable(res *backend.WorkflowTaskResult) []backend.NewTask {
	if res.ParentStep != nil {
		return claimable(&res.ParentStep.Step)
	}
	if res.Finish != nil || res.ContinueAsNew != nil {
		return nil
	}
	tasks := res.Tasks
	for _, c := range res.Children {
		if c.FirstStep != nil {
			tasks = append(slices.Clip(tasks), claimable(c.FirstStep)...)
		}
	}
	return tasks
}

// dueActivities counts the activity tasks of tasks due at now.
func dueActivities(tasks []backend.NewTask, now time.Time) int {
	n := 0
	for _, t := range tasks {
		if t.Kind == backend.TaskActivity && !t.RunAt.After(now) {
			n++
		}
	}
	return n
}

// claimFor is the hand-off claim for the commit of res: one task for the caller to run
// next and, when the commit creates more due activities (a gather), one more for each
// free slot of this worker it could reserve, in which those run. The caller gives the
// slots to spread after the commit, or to releaseSlots when it failed.
func (w *worker) claimFor(res *backend.WorkflowTaskResult, queue string, now time.Time) (backend.ClaimRequest, []*slot) {
	c := w.claimOne()
	var extra []*slot
	for n := dueActivities(claimable(res), now); len(extra) < n-1; {
		sl, ok := w.reserveSlot(queue)
		if !ok {
			break
		}
		extra = append(extra, sl)
	}
	c.Limit += len(extra)
	return c, extra
}

// spread runs each task claimed beyond the first (claimed[0], which the caller runs
// next) in a slot claimFor reserved, and gives back the slots left over.
func spread(claimed []backend.Task, extra []*slot) {
	if len(claimed) > 1 {
		for i, t := range claimed[1:] {
			if i >= len(extra) {
				break // claimFor reserved a slot for each task the claim could take
			}
			extra[i].chain(t)
		}
		extra = extra[min(len(claimed)-1, len(extra)):]
	}
	releaseSlots(extra)
}

// releaseSlots gives back reserved slots unused.
func releaseSlots(extra []*slot) {
	for _, sl := range extra {
		sl.release()
	}
}
