package backend

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// PruneBatch selects one batch of ended executions to delete.
type PruneBatch struct {
	// EndedBefore: only root executions that ended (completed_at) before it.
	EndedBefore time.Time
	// Status, when set, keeps only roots of that terminal status.
	Status Status
	// Limit is how many candidate roots the batch looks at (default 200).
	Limit int
	// After is the cursor returned by the previous batch (zero: from the oldest).
	After PruneCursor
	// DryRun selects and counts without deleting anything.
	DryRun bool
	// Exclusive (retention by workers): the batch runs only if no other process runs
	// an exclusive batch at the same time (an advisory lock on PostgreSQL); Skipped
	// tells when it did not.
	Exclusive bool
}

// PruneCursor is the position of the last candidate root a batch looked at, in
// (completed_at, id) order.
type PruneCursor struct {
	CompletedAt time.Time
	ID          string
}

// PruneResult counts what a batch deleted (or, in a dry run, would delete).
type PruneResult struct {
	// Candidates is how many roots the batch looked at: fewer than Limit means it
	// reached the end.
	Candidates int
	// Next is the cursor for the following batch.
	Next PruneCursor
	// Skipped: an exclusive batch found another process pruning; nothing was done.
	Skipped bool
	// Roots and Executions (roots and their descendants) deleted.
	Roots, Executions int64
	// Rows deleted from the other tables.
	Events, Logs, Signals, DeadLetters, Tasks, Tags int64
	// ScriptHashes are the script hashes of the deleted executions' bundles (candidates
	// for PruneScripts).
	ScriptHashes []string
}

// Retention is an optional extension of Backend, implemented by both stores: the
// deletion of old ended executions.
type Retention interface {
	// PruneExecutions deletes, in one short transaction, the trees of up to b.Limit
	// ended root executions (completed before b.EndedBefore, of b.Status when set),
	// oldest first after b.After: each root with every descendant, their events, logs,
	// signals, tasks and dead letters. A tree is left whole when any execution in it is
	// running or has an open dead letter; running executions and their ancestors are
	// never touched.
	PruneExecutions(ctx context.Context, b PruneBatch) (PruneResult, error)
	// PruneScripts deletes the scripts among hashes that no execution and no schedule
	// references any more, and returns how many it deleted.
	PruneScripts(ctx context.Context, hashes []string) (int64, error)
}

// PruneMember is an execution of a tree a prune batch looks at, as a backend reads it.
type PruneMember struct {
	Root, ID, Status, Bundle string // Bundle: the bundle JSON
	OpenDeadLetter           bool
}

// SelectPruned decides a prune batch: a tree any of whose members is running or has an
// open dead letter is kept whole; the others go. It returns the IDs to delete and
// counts roots and executions into res, with the script hashes their bundles pin.
func SelectPruned(members []PruneMember, res *PruneResult) []string {
	kept := map[string]bool{}
	for _, m := range members {
		if m.Status == string(StatusRunning) || m.OpenDeadLetter {
			kept[m.Root] = true
		}
	}
	var ids []string
	hashes := map[string]bool{}
	for _, m := range members {
		if kept[m.Root] {
			continue
		}
		ids = append(ids, m.ID)
		if m.ID == m.Root {
			res.Roots++
		}
		var bundle Bundle
		if json.Unmarshal([]byte(m.Bundle), &bundle) == nil {
			for _, h := range bundle.Files {
				hashes[h] = true
			}
		}
	}
	res.Executions = int64(len(ids))
	for h := range hashes {
		res.ScriptHashes = append(res.ScriptHashes, h)
	}
	slices.Sort(res.ScriptHashes)
	return ids
}

// PruneQuery runs one of a store's prune reads and returns its rows with the function
// that closes them.
type PruneQuery func(sql string, args ...any) (rows Rows, close func(), err error)

// SelectPruneBatch is the decision of one prune batch, the same on every store: it
// reads the batch's candidate roots (the store's candidates query with candArgs, rows
// for ScanPruneCandidates), then the trees under them (the tree query, given the roots
// as treeArg makes them, rows for ScanPruneTree), and returns the IDs SelectPruned
// keeps, recording the counts and the cursor in res.
func SelectPruneBatch(q PruneQuery, candidates string, candArgs []any, tree string, treeArg func(roots []string) any, res *PruneResult) ([]string, error) {
	rows, done, err := q(candidates, candArgs...)
	if err != nil {
		return nil, err
	}
	roots, err := ScanPruneCandidates(rows, res)
	done()
	if err != nil {
		return nil, err
	}
	res.Candidates = len(roots)
	if len(roots) == 0 {
		return nil, nil
	}
	rows, done, err = q(tree, treeArg(roots))
	if err != nil {
		return nil, err
	}
	members, err := ScanPruneTree(rows)
	done()
	if err != nil {
		return nil, err
	}
	return SelectPruned(members, res), nil
}

// ScanPruneCandidates reads the candidates of a prune batch, rows of (id, completed
// at in unix milliseconds) in cursor order, and moves res.Next past the last one.
func ScanPruneCandidates(rows Rows, res *PruneResult) ([]string, error) {
	return CollectRows(rows, func(s Scanner) (string, error) {
		var (
			id        string
			completed int64
		)
		if err := s.Scan(&id, &completed); err != nil {
			return "", err
		}
		res.Next = PruneCursor{CompletedAt: time.UnixMilli(completed), ID: id}
		return id, nil
	})
}

// ScanPruneTree reads the members of the candidates' trees, rows of (root, id,
// status, bundle, open dead letter), for SelectPruned.
func ScanPruneTree(rows Rows) ([]PruneMember, error) {
	return CollectRows(rows, func(s Scanner) (PruneMember, error) {
		var m PruneMember
		err := s.Scan(&m.Root, &m.ID, &m.Status, &m.Bundle, &m.OpenDeadLetter)
		return m, err
	})
}

// PruneTable is a table a prune deletes the pruned executions' rows from, before the
// executions themselves, and the PruneResult count of those rows.
type PruneTable struct {
	Name  string
	Count *int64
}

// PruneTables lists the tables a prune deletes from, with their counts in res.
func PruneTables(res *PruneResult) []PruneTable {
	return []PruneTable{{"events", &res.Events}, {"logs", &res.Logs}, {"signals", &res.Signals},
		{"dead_letters", &res.DeadLetters}, {"tasks", &res.Tasks}, {"execution_tags", &res.Tags}}
}
