package engine

import "github.com/stent-go/stent/interpreter"

// DefaultScriptMemory is the memory one step of a script may take by default.
const DefaultScriptMemory = interpreter.DefaultMemoryLimit

// WithScriptMemory bounds the memory one step of a script (the code between two
// checkpoints) may take, in bytes (default DefaultScriptMemory; 0 or less keeps it).
// Past it the step is stopped and the execution fails with "memory limit exceeded" at
// the script line it reached; the worker carries on. The measure is approximate: Go
// offers no per-goroutine allocation count, so a watchdog samples the process's heap
// growth while the step runs (steps running at once count towards each other).
func WithScriptMemory(bytes int64) Option {
	return func(o *engineConfig) {
		if bytes > 0 {
			o.scriptMemory = uint64(bytes)
		}
	}
}
