package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// The single-row creation statement (one execution) writes exactly what the array
// form writes for the same execution: the execution row, its started event, its
// tasks, its tags and its script; and, like it, nothing for an ID that exists.
func TestCreateExecutionFormsAgree(t *testing.T) {
	b := openTestBackend(t, nil)
	ctx := context.Background()
	now := toMS(time.Now())
	deadline := time.UnixMilli(now + 60_000)
	parent := backend.NewExecution{ID: "parent", Bundle: backend.Bundle{Main: "p.star", Files: map[string]string{"p.star": "hp"}},
		Sources: map[string][]byte{"hp": []byte("def main(): pass")}, Entry: "main", Queue: "q7"}
	if _, err := b.CreateExecution(ctx, parent); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		e    backend.NewExecution
	}{
		{"root", backend.NewExecution{Bundle: backend.Bundle{Main: "r.star", Files: map[string]string{"r.star": "hr"}},
			Sources: map[string][]byte{"hr": []byte("x = 1")}, Entry: "main", Args: json.RawMessage(`[1,"a"]`),
			Priority: 3, Deadline: &deadline, Tags: map[string]string{"team": "a", "env": "prod"}}},
		{"child", backend.NewExecution{ParentID: "parent", ParentSeq: 4, Bundle: parent.Bundle, Entry: "child"}},
		{"child on a queue", backend.NewExecution{ParentID: "parent", ParentSeq: 5, Bundle: parent.Bundle, Entry: "child", Queue: "other"}},
		{"first step", backend.NewExecution{Bundle: parent.Bundle, Entry: "main", FirstStep: &backend.WorkflowTaskResult{}}},
		{"later", backend.NewExecution{Bundle: parent.Bundle, Entry: "main", StartAt: time.UnixMilli(now + 5_000)}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			single, array := tc.e, tc.e
			single.ID, array.ID = fmt.Sprintf("single-%d", i), fmt.Sprintf("array-%d", i)
			ns, na := createWith(t, b, single, now, false), createWith(t, b, array, now, true)
			if ns != na {
				t.Errorf("the single-row form created %d tasks, the array form %d", ns, na)
			}
			got, want := stored(t, b, single.ID), stored(t, b, array.ID)
			if !strings.Contains(got[0], `"entry"`) {
				t.Fatalf("the single-row form stored no execution: %v", got)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("single-row form stored\n%v\narray form stored\n%v", got, want)
			}
			if n := createWith(t, b, single, now, false); n != 0 {
				t.Errorf("creating %s again returned %d tasks, want none", single.ID, n)
			}
			if again := stored(t, b, single.ID); !reflect.DeepEqual(again, got) {
				t.Errorf("creating %s again changed it:\n%v\nwas\n%v", single.ID, again, got)
			}
		})
	}
}

// createWith creates e with the single-row statement, or the array one, and returns
// how many tasks it created.
func createWith(t *testing.T, b *Backend, e backend.NewExecution, now int64, arrayForm bool) int {
	t.Helper()
	var n newExecutions
	defaultQueue := backend.DefaultQueue
	if e.ParentID != "" {
		defaultQueue = "" // as a step's children are added: the parent's queue
	}
	if err := n.add(e, defaultQueue, now); err != nil {
		t.Fatal(err)
	}
	sql, args := n.statement(now)
	if arrayForm {
		sql, args = sqlCreateExecutions, n.params(now)
	}
	if (sql == sqlCreateExecution) == arrayForm {
		t.Fatalf("statement chose the wrong form")
	}
	var created int
	err := b.single(context.Background(), "creating "+e.ID, func(s *txState) error {
		rows, err := s.q.Query(context.Background(), sql, args...)
		if err != nil {
			return err
		}
		created, err = scanCreated(rows, s, now)
		return err
	})
	if err != nil {
		t.Fatalf("creating %s: %v", e.ID, err)
	}
	return created
}

// stored is everything stored for the execution id, with the ID itself and the
// generated keys left out, one line per row.
func stored(t *testing.T, b *Backend, id string) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT row_to_json(x)::jsonb - 'id' - 'row_id' FROM executions x WHERE id = $1`,
		`SELECT row_to_json(x)::jsonb - 'id' - 'execution_id' FROM events x WHERE execution_id = $1 ORDER BY id`,
		`SELECT row_to_json(x)::jsonb - 'id' - 'execution_id' FROM tasks x WHERE execution_id = $1 ORDER BY kind`,
		`SELECT row_to_json(x)::jsonb - 'execution_id' FROM execution_tags x WHERE execution_id = $1 ORDER BY key`,
		`SELECT s.hash FROM scripts s, executions x WHERE x.id = $1 AND s.hash = (x.bundle::jsonb -> 'files' ->> (x.bundle::jsonb ->> 'main'))`,
	} {
		rows, err := b.pool.Query(context.Background(), q, id)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, q[:strings.Index(q, " FROM")]+": "+strings.Join(lines, " | "))
	}
	return out
}
