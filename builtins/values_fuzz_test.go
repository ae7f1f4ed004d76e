package builtins_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/builtins"
)

// FuzzValueRoundTrip: any JSON a step may receive converts to Starlark and back, and
// the second conversion gives exactly the first one's JSON (what replay relies on).
func FuzzValueRoundTrip(f *testing.F) {
	for _, s := range []string{`null`, `true`, `0`, `-1.5e300`, `9007199254740993`, `"é\u0000\ud800"`, `[1,"a",[{}]]`,
		`{"b":1,"a":[null,false]}`, `{"":{"x":{"y":[]}}}`, `1e400`, `123456789012345678901234567890`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		v, err := builtins.FromJSON(data)
		if err != nil {
			return // rejected with an error, not a panic
		}
		first, err := builtins.ToJSON(v, "value")
		if err != nil {
			t.Fatalf("ToJSON(FromJSON(%s)): %v", data, err)
		}
		v2, err := builtins.FromJSON(first)
		if err != nil {
			t.Fatalf("FromJSON(%s) (our own output): %v", first, err)
		}
		second, err := builtins.ToJSON(v2, "value")
		if err != nil {
			t.Fatalf("second ToJSON of %s: %v", first, err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip is not stable: %s -> %s -> %s", data, first, second)
		}
	})
}
