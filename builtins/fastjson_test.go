package builtins

import (
	"testing"

	"go.starlark.net/starlark"
)

// FuzzFromJSONFast: whatever the fast decoder accepts, it decodes to the value
// encoding/json's path gives (same type, same JSON back, same dict key order).
func FuzzFromJSONFast(f *testing.F) {
	for _, s := range []string{`null`, `true`, `false`, `0`, `-0`, `-1.5e300`, `1E+2`, `9007199254740993`,
		`123456789012345678901234567890`, `1e400`, `"é"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `[1,"a",[{}]]`,
		`{"b":1,"a":[null,false]}`, `{"a":1,"a":2}`, ` [ 1 , 2 ] `, `[1,]`, `{"a" 1}`, `01`, `1.`, `.5`, `-`,
		`[`, `{"a":`, `nul`, `"x" y`, "\f1", `{"":{"x":{"y":[]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := fastJSON{b: data}
		v, ok := fast.value(0)
		if !ok {
			return
		}
		if fast.space(); fast.i != len(data) {
			return
		}
		want, err := fromJSONDecoder(data)
		if err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json rejects it: %v", data, err)
		}
		if v.Type() != want.Type() {
			t.Fatalf("%q: fast decoder gives a %s, encoding/json a %s", data, v.Type(), want.Type())
		}
		got, err := ToJSON(v, "value")
		if err != nil {
			t.Fatalf("ToJSON of the fast decoder's %q: %v", data, err)
		}
		exp, err := ToJSON(want, "value")
		if err != nil {
			t.Fatalf("ToJSON of encoding/json's %q: %v", data, err)
		}
		if string(got) != string(exp) {
			t.Fatalf("%q: fast decoder gives %s, encoding/json %s", data, got, exp)
		}
		if eq, err := starlark.Equal(v, want); err != nil || !eq {
			t.Fatalf("%q: values differ (%v): %s vs %s", data, err, v, want)
		}
	})
}

func BenchmarkFromJSON(b *testing.B) {
	data := []byte(`{"id":12345,"name":"0123456789012345678901234567890123456789","ok":true,"tags":["a","b"],"score":1.5}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
