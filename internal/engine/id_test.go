package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Every backend applies the same ID rules, before the ID reaches it: a bad ID is an
// *InputError (the CLI exits 2) for dispatch, lookups and control alike.
func TestIDRules(t *testing.T) {
	long := strings.Repeat("é", 128) // 256 bytes, 128 characters
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			f := newFixtureOn(t, tb, 0, registerBasics)
			ctx := context.Background()
			src := f.script(t, "def main():\n    return 1\n")
			for _, tc := range []struct{ id, want string }{
				{"bad\xffid", `execution ID "bad\xffid" is not valid UTF-8: use printable text`},
				{"nul\x00id", `execution ID "nul\x00id" contains whitespace or a control character`},
				{long, "execution ID is 256 bytes long; use at most 255"},
			} {
				checks := map[string]error{}
				_, checks["Dispatch"] = f.eng.Dispatch(ctx, src, nil, ID(tc.id))
				_, checks["Get"] = f.eng.Get(ctx, tc.id)
				_, checks["History"] = f.eng.History(ctx, tc.id)
				_, checks["WaitFor"] = f.eng.WaitFor(ctx, tc.id)
				checks["Cancel"] = f.eng.Cancel(ctx, tc.id)
				checks["Signal"] = f.eng.SignalJSON(ctx, tc.id, "go", nil)
				for call, err := range checks {
					var ie *InputError
					if !errors.As(err, &ie) || err.Error() != tc.want {
						t.Errorf("%s(%q) = %v; want the input error %q", call, tc.id, err, tc.want)
					}
				}
			}
			// The longest allowed ID works.
			ok := strings.Repeat("é", 127) + "x"
			res, err := f.eng.Run(ctx, src, nil, ID(ok))
			if err != nil {
				t.Fatalf("Run with a %d-byte ID: %v", len(ok), err)
			}
			mustValue(t, res, "1")
		})
	}
}
