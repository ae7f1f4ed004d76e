package interpreter

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// Limits on what a failure stores and prints: a runaway recursion must not put a
// 100,000-frame traceback into the execution row and onto the terminal.
const (
	// TracebackEdgeFrames is how many frames a traceback keeps at each end.
	TracebackEdgeFrames = 20
	// MaxErrorBytes bounds a stored error's message and stack together.
	MaxErrorBytes = 64 << 10
)

// boundedStack formats a call stack like CallStack.String, keeping the first and last
// TracebackEdgeFrames frames and saying how many were left out between them.
func boundedStack(stack starlark.CallStack) string {
	if len(stack) <= 2*TracebackEdgeFrames {
		return stack.String()
	}
	omitted := len(stack) - 2*TracebackEdgeFrames
	kept := append(append(starlark.CallStack{}, stack[:TracebackEdgeFrames]...), stack[len(stack)-TracebackEdgeFrames:]...)
	lines := strings.SplitAfter(kept.String(), "\n")
	// lines[0] is the "Traceback" header; the omission goes after the first frames.
	at := 1 + TracebackEdgeFrames
	out := append(append(append([]string{}, lines[:at]...), fmt.Sprintf("  … %d frames omitted\n", omitted)), lines[at:]...)
	return strings.Join(out, "")
}

// BoundError caps a stored error at MaxErrorBytes: the stack gets at most a quarter of
// it, the message the rest; what is cut is said.
func BoundError(info *backend.ErrorInfo) *backend.ErrorInfo {
	if info == nil || len(info.Message)+len(info.Stack) <= MaxErrorBytes {
		return info
	}
	out := *info
	out.Stack = truncateMiddle(out.Stack, MaxErrorBytes/4)
	out.Message = truncateMiddle(out.Message, MaxErrorBytes-len(out.Stack))
	return &out
}

// truncateMiddle keeps the beginning and the end of s within max bytes (on rune
// boundaries) and says how many bytes were left out.
func truncateMiddle(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const room = 64 // for the note
	keep := max - room
	if keep < 0 {
		keep = 0
	}
	head, tail := keep*3/4, keep/4
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[:head] + fmt.Sprintf("\n… %d bytes omitted …\n", start-head) + s[start:]
}
