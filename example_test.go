package stent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stent-go/stent"
)

// A host program opens an engine, registers an activity, starts a worker and runs a
// script to its end.
func Example() {
	dir, err := os.MkdirTemp("", "stent-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "hello.star")
	src := "def main(name):\n    return durable('shout', 'hello, ' + name)\n"
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		panic(err)
	}

	ctx := context.Background()
	eng, stop, err := stent.Bootstrap(ctx, filepath.Join(dir, "stent.db"))
	if err != nil {
		panic(err)
	}
	defer stop()
	if err := eng.Register("shout", func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	}); err != nil {
		panic(err)
	}
	res, err := eng.Run(ctx, script, []any{"world"}, stent.ID("hello-world"))
	if err != nil {
		panic(err)
	}
	var out string
	if err := res.Decode(&out); err != nil {
		panic(err)
	}
	fmt.Println(res.Status, out)
	// Output: completed HELLO, WORLD
}
