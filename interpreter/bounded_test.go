package interpreter

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stent-go/stent/backend"
)

func TestBoundError(t *testing.T) {
	small := &backend.ErrorInfo{Message: "boom", Stack: "Traceback"}
	if got := BoundError(small); got != small {
		t.Errorf("a small error was changed: %+v", got)
	}
	big := &backend.ErrorInfo{Message: "start " + strings.Repeat("é", 2<<20) + " end", Stack: strings.Repeat("frame\n", 100000), Type: "script"}
	got := BoundError(big)
	if n := len(got.Message) + len(got.Stack); n > MaxErrorBytes {
		t.Errorf("bounded error is %d bytes, want at most %d", n, MaxErrorBytes)
	}
	if !strings.HasPrefix(got.Message, "start ") || !strings.HasSuffix(got.Message, " end") || !strings.Contains(got.Message, "bytes omitted") {
		t.Errorf("message lost its ends or the note: %q…%q", got.Message[:20], got.Message[len(got.Message)-20:])
	}
	if !utf8.ValidString(got.Message) || got.Type != "script" {
		t.Errorf("message is not valid UTF-8 or type changed (%q)", got.Type)
	}
	if len(big.Message) < 2<<20 {
		t.Error("BoundError modified its argument")
	}
}
