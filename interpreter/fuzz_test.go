package interpreter

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzScript: arbitrary source goes through pinning, compiling and one step without a
// panic or a hang (the step and memory limits stop runaway code); errors are fine.
func FuzzScript(f *testing.F) {
	for _, s := range []string{
		"def main():\n    return 1\n",
		"def main():\n    return durable(\"a\", 1)\n",
		"def main():\n    x = [i for i in range(10)]\n    sleep(\"1s\")\n    return x\n",
		"def main():\n    while True:\n        pass\n",
		"def f(n):\n    return f(n+1)\ndef main():\n    return f(0)\n",
		"def main(:\n",
		"load(\"../x.star\", \"y\")\ndef main():\n    return y\n",
		"def main():\n    return {\"a\": set([1])}\n",
		"def main():\n    return wait_signal(\"go\", timeout=\"1h\")\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		file := filepath.Join(dir, "wf.star")
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		b, sources, err := CollectBundle(file)
		if err != nil {
			return
		}
		p, err := Compile(b, sources)
		if err != nil {
			return
		}
		run, err := p.NewRun("main", []byte("[]"), Config{StepLimit: 100_000, MemoryLimit: 64 << 20})
		if err != nil {
			return
		}
		defer run.Close()
		step := run.Advance(nil)
		if step.Done && step.Err == nil && step.Result == nil && step.ContinueAsNew == nil {
			t.Fatalf("a finished step has neither a result nor an error")
		}
	})
}
