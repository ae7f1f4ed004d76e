package backendtest

import (
	"testing"

	"github.com/stent-go/stent/backend"
)

var scriptTests = []test{
	{"StoredByHash", testScriptsStored},
	{"ContentAddressed", testScriptsContentAddressed},
	{"NotFound", testScriptNotFound},
}

func testScriptsStored(t *testing.T, e *env) {
	lib := []byte("def greet(n):\n    return 'hi ' + n\n")
	e.create("x", func(n *backend.NewExecution) {
		n.Bundle.Files["lib/greet.star"] = "2222"
		n.Sources["2222"] = lib
	})
	for hash, want := range map[string]string{mainHash: mainSource, "2222": string(lib)} {
		got, err := e.b.GetScript(e.ctx, hash)
		if err != nil {
			t.Fatalf("GetScript(%s): %v", hash, err)
		}
		if string(got) != want {
			t.Fatalf("GetScript(%s) = %q, want %q", hash, got, want)
		}
	}
	if b := e.get("x").Bundle; b.Files["lib/greet.star"] != "2222" || b.Main != "main.star" {
		t.Fatalf("Bundle = %+v, want main.star and lib/greet.star pinned", b)
	}
}

func testScriptsContentAddressed(t *testing.T, e *env) {
	e.create("first")
	e.create("second", func(n *backend.NewExecution) {
		n.Sources = map[string][]byte{mainHash: []byte("something else under the same hash")}
	})
	got, err := e.b.GetScript(e.ctx, mainHash)
	if err != nil {
		t.Fatalf("GetScript: %v", err)
	}
	if string(got) != mainSource {
		t.Fatalf("GetScript after storing the same hash twice = %q, want the first content %q", got, mainSource)
	}
}

func testScriptNotFound(t *testing.T, e *env) {
	src, err := e.b.GetScript(e.ctx, "deadbeef")
	wantErrIs(t, "GetScript of an unknown hash", err, backend.ErrNotFound)
	if src != nil {
		t.Fatalf("GetScript of an unknown hash returned %q, want nil", src)
	}
}
