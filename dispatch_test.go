package stent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// An ID is an idempotency key: the same request gets the execution back, another
// script, entry or arguments under it is an *InputError wrapping ErrIDConflict.
func TestDispatchIDIsAnIdempotencyKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.star", "def main(x):\n    return x\n\ndef other(x):\n    return x\n")
	b := write("b.star", "def main(x):\n    return x\n")
	ctx := context.Background()
	eng, err := stent.Open(ctx, filepath.Join(dir, "stent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	id, err := eng.Dispatch(ctx, a, []any{map[string]any{"n": 1, "m": 2}}, stent.ID("k"))
	if err != nil || id != "k" {
		t.Fatalf("Dispatch = %q, %v", id, err)
	}
	if _, err := eng.DispatchJSON(ctx, a, []byte(`[{"m": 2, "n": 1}]`), stent.ID("k")); err != nil {
		t.Fatalf("the same request again: %v", err)
	}
	for _, tc := range []struct {
		name, script string
		args         []any
		opts         []stent.DispatchOption
		differs      string
	}{
		{"other arguments", a, []any{map[string]any{"n": 2}}, nil, "arguments"},
		{"other script", b, []any{map[string]any{"n": 1, "m": 2}}, nil, "script"},
		{"other entry", a, []any{map[string]any{"n": 1, "m": 2}}, []stent.DispatchOption{stent.Entry("other")}, "entry function"},
	} {
		_, err := eng.Dispatch(ctx, tc.script, tc.args, append(tc.opts, stent.ID("k"))...)
		var ie *stent.InputError
		var ce *stent.IDConflictError
		if !errors.Is(err, stent.ErrIDConflict) || !errors.As(err, &ie) || !errors.As(err, &ce) || ce.Differs != tc.differs {
			t.Fatalf("%s: err = %v; want an InputError with an IDConflictError on %s", tc.name, err, tc.differs)
		}
	}
	list, err := eng.List(ctx, backend.ListFilter{Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("executions after conflicts: %d, %v; want 1", len(list), err)
	}
}
