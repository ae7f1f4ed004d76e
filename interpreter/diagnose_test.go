package interpreter

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

func compileOne(t *testing.T, src string) (*Program, error) {
	t.Helper()
	h := Hash([]byte(src))
	return Compile(backend.Bundle{Main: "flow.star", Files: map[string]string{"flow.star": h}}, map[string][]byte{h: []byte(src)})
}

func TestUndefinedNamesGetASuggestion(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"def main():\n    return durabel('x')\n", "undefined: durabel (did you mean durable?)"},
		{"def main(order):\n    return ordr\n", "undefined: ordr (did you mean order?)"},
		{"def main():\n    return zzzzzz\n", "undefined: zzzzzz"},
	} {
		_, err := compileOne(t, tc.src)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("compiling %q: %v; want it to end with %q", tc.src, err, tc.want)
		}
	}
}

func TestCheckArity(t *testing.T) {
	p, err := compileOne(t, "def one(a):\n    pass\n\ndef opt(a, b=1):\n    pass\n\ndef var(a, *rest):\n    pass\n\ndef kw(a, *, k):\n    pass\n")
	if err != nil {
		t.Fatal(err)
	}
	fn := func(name string) *starlark.Function {
		f, err := p.Entry(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		fn      string
		n       int
		wantErr string
	}{
		{"one", 1, ""},
		{"one", 2, "flow.star:1:1: function one takes 1 argument (a), but 2 arguments given"},
		{"one", 0, "but 0 arguments given"},
		{"opt", 1, ""},
		{"opt", 2, ""},
		{"opt", 3, "takes 1 to 2 arguments (a, b)"},
		{"var", 5, ""},
		{"var", 0, "takes at least 1 argument (a)"},
		{"kw", 1, "keyword-only parameter k without a default"},
	} {
		err := CheckArity(fn(tc.fn), tc.n)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckArity(%s, %d) = %v; want %q", tc.fn, tc.n, err, tc.wantErr)
		}
	}
}

func TestReturnPositions(t *testing.T) {
	src := "def main(x):\n    def inner():\n        return 1\n    if x:\n        return 2\n    return 3\n\ndef single():\n    return {1: 2}\n"
	p, err := compileOne(t, src)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"main":   "flow.star:1:1 (returned at line 5, 6)",
		"single": "flow.star:9:5",
	} {
		fn, _ := p.Entry(name)
		if got := p.returnPos(fn); got != want {
			t.Errorf("returnPos(%s) = %q, want %q", name, got, want)
		}
	}
}
