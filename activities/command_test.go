package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("command activity tests use /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "act.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatalf("writing script: %v", err)
	}
	return path
}

func commandActivity(t *testing.T, spec string, opts ...Option) *Activity {
	t.Helper()
	r := NewRegistry()
	if err := r.RegisterCommand(spec, opts...); err != nil {
		t.Fatalf("RegisterCommand(%q): unexpected error: %v", spec, err)
	}
	name, _, _ := strings.Cut(spec, "=")
	a, ok := r.Lookup(strings.TrimSpace(name))
	if !ok {
		t.Fatalf("Lookup(%q) after RegisterCommand: not found", name)
	}
	return a
}

func TestRegisterCommandValidation(t *testing.T) {
	tests := []struct {
		spec, want string
	}{
		{"greet", `activity spec "greet": want NAME=COMMAND (missing '=')`},
		{"=./greet.sh", `activity spec "=./greet.sh": empty activity name`},
		{"greet=", `activity spec "greet=": empty command after '='`},
		{"greet=   ", `empty command after '='`},
		{"greet=''", `empty command after '='`},
		{"9lives=./x", `activity name "9lives" is not valid`},
		{"send mail=./x", `activity name "send mail" is not valid`},
		{"a/b=./x", `activity name "a/b" is not valid`},
		{"greet=./x 'unterminated", "unterminated single quote"},
		{`greet=./x "unterminated`, "unterminated double quote"},
		{"greet=./x", ""},
		{"_private.v2-beta=./x", ""},
		{" spaced = ./x ", ""},
	}
	for _, tc := range tests {
		err := NewRegistry().RegisterCommand(tc.spec)
		if tc.want == "" {
			if err != nil {
				t.Fatalf("RegisterCommand(%q): got %v, want nil", tc.spec, err)
			}
			continue
		}
		wantErrContains(t, err, tc.want)
	}
	r := NewRegistry()
	if err := r.RegisterCommand(" spaced = ./x  --flag "); err != nil {
		t.Fatalf("RegisterCommand: %v", err)
	}
	a, ok := r.Lookup("spaced")
	if !ok || a.Kind() != "command" || strings.Join(a.Command(), "|") != "./x|--flag" {
		t.Fatalf("spaced spec: got ok=%v kind=%q argv=%q", ok, a.Kind(), a.Command())
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"./a.sh", []string{"./a.sh"}},
		{"  /bin/tool   -x  1 ", []string{"/bin/tool", "-x", "1"}},
		{`"/opt/my tools/run" --name 'Ann Lee'`, []string{"/opt/my tools/run", "--name", "Ann Lee"}},
		{`x 'it''s' "say \"hi\"" a\ b`, []string{"x", "its", `say "hi"`, "a b"}},
		{`x '$HOME' "$HOME" "a\nb" 'c\d'`, []string{"x", "$HOME", "$HOME", `a\nb`, `c\d`}},
		{`x "" ''`, []string{"x", "", ""}},
		{`x pre"mid"'post'`, []string{"x", "premidpost"}},
	}
	for _, tc := range tests {
		got, err := SplitCommand(tc.in)
		if err != nil {
			t.Fatalf("SplitCommand(%q): unexpected error %v", tc.in, err)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Fatalf("SplitCommand(%q):\n  got:  %q\n  want: %q", tc.in, got, tc.want)
		}
	}
}

func TestCommandSuccess(t *testing.T) {
	path := script(t, `cat >/dev/null; echo "\"$STENT_EXECUTION_ID-$STENT_SEQ-$STENT_ATTEMPT\""`)
	a := commandActivity(t, "who="+path)
	ctx := WithInfo(context.Background(), Info{ExecutionID: "exec1", Seq: 4, Attempt: 2, Name: "who"})
	out, err := a.Invoke(ctx, json.RawMessage(`["x"]`))
	if err != nil {
		t.Fatalf("Invoke: unexpected error: %v", err)
	}
	if want := `"exec1-4-2"`; string(out) != want {
		t.Fatalf("result: got %s, want %s", out, want)
	}
}

func TestCommandStdinAndEnv(t *testing.T) {
	path := script(t, `read args
printf '{"args": %s, "activity": "%s", "key": "%s"}\n' "$args" "$STENT_ACTIVITY" "$STENT_IDEMPOTENCY_KEY"`)
	a := commandActivity(t, "echo_args="+path)
	ctx := WithInfo(context.Background(), Info{ExecutionID: "e9", Seq: 12, Attempt: 1})
	out, err := a.Invoke(ctx, json.RawMessage(`["u1", {"n": 2}]`))
	if err != nil {
		t.Fatalf("Invoke: unexpected error: %v", err)
	}
	want := `{"args":["u1",{"n":2}],"activity":"echo_args","key":"e9/12"}`
	if string(out) != want {
		t.Fatalf("result:\n  got:  %s\n  want: %s", out, want)
	}
	// No arguments: stdin is [].
	out, err = a.Invoke(context.Background(), nil)
	if err != nil {
		t.Fatalf("Invoke without args: %v", err)
	}
	if want := `{"args":[],"activity":"echo_args","key":""}`; string(out) != want {
		t.Fatalf("result without args:\n  got:  %s\n  want: %s", out, want)
	}
	// A non-array is refused before running anything.
	_, err = a.Invoke(context.Background(), json.RawMessage(`{"a":1}`))
	wantErrContains(t, err, `activity "echo_args": arguments must be a JSON array, got a JSON object`)
}

func TestCommandQuotedArgsInSpec(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses /bin/sh")
	}
	dir := filepath.Join(t.TempDir(), "dir with space")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "args.sh")
	body := "#!/bin/sh\ncat >/dev/null\nprintf '[\"%s\",\"%s\",\"%s\"]' \"$1\" \"$2\" \"$3\"\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := `quoted="` + path + `" 'two words' "it's \$x" plain`
	a := commandActivity(t, spec)
	if got := a.Command(); len(got) != 4 || got[0] != path {
		t.Fatalf("argv: got %q, want [%s, two words, it's $x, plain]", got, path)
	}
	out, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err != nil {
		t.Fatalf("Invoke: unexpected error: %v", err)
	}
	if want := `["two words","it's $x","plain"]`; string(out) != want {
		t.Fatalf("result: got %s, want %s", out, want)
	}
}

func TestCommandEmptyStdoutIsNull(t *testing.T) {
	a := commandActivity(t, "quiet="+script(t, "cat >/dev/null\necho '   '"))
	out, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err != nil || string(out) != "null" {
		t.Fatalf("empty stdout: got (%s, %v), want (null, nil)", out, err)
	}
}

func TestCommandPrettyJSONIsCompacted(t *testing.T) {
	a := commandActivity(t, "pretty="+script(t, "cat >/dev/null\nprintf '{\\n  \"a\": [1, 2],\\n  \"b\": \"<x>\"\\n}\\n'"))
	out, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if want := `{"a":[1,2],"b":"<x>"}`; string(out) != want {
		t.Fatalf("result: got %s, want %s", out, want)
	}
}

func TestCommandNonZeroExit(t *testing.T) {
	a := commandActivity(t, "fail="+script(t, "cat >/dev/null\necho 'some progress' \necho 'payment gateway unavailable' >&2\nexit 3"))
	_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if err == nil {
		t.Fatalf("Invoke: got nil error, want a failure")
	}
	if want := "payment gateway unavailable (exit status 3)"; err.Error() != want {
		t.Fatalf("error message:\n  got:  %s\n  want: %s", err, want)
	}
	if IsNonRetryable(err) || ErrorType(err) != TypeCommand {
		t.Fatalf("exit 3: got nonRetryable=%v type=%q, want false %q", IsNonRetryable(err), ErrorType(err), TypeCommand)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit 3: the *exec.ExitError should be reachable with code 3, got %v", ee)
	}
	if !(RetryPolicy{MaxAttempts: 2}).ShouldRetry(1, err) {
		t.Fatalf("exit 3 with retries left: ShouldRetry got false, want true")
	}

	silent := commandActivity(t, "silent="+script(t, "cat >/dev/null\nexit 7"))
	_, err = silent.Invoke(context.Background(), json.RawMessage(`[]`))
	if err == nil || err.Error() != "exit status 7" {
		t.Fatalf("exit 7 without stderr: got %v, want \"exit status 7\"", err)
	}
}

func TestCommandExit65NonRetryable(t *testing.T) {
	a := commandActivity(t, "bad_input="+script(t, "cat >/dev/null\necho 'invalid user id' >&2\nexit 65"))
	_, err := a.Invoke(context.Background(), json.RawMessage(`["???"]`))
	wantErrContains(t, err, "invalid user id", "exit status 65")
	if !IsNonRetryable(err) {
		t.Fatalf("exit 65: IsNonRetryable got false, want true")
	}
	if (RetryPolicy{MaxAttempts: 5}).ShouldRetry(1, err) {
		t.Fatalf("exit 65: ShouldRetry got true, want false")
	}
}

func TestCommandNonJSONStdout(t *testing.T) {
	a := commandActivity(t, "chatty="+script(t, "cat >/dev/null\necho 'hello world, not json'"))
	_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, `command activity "chatty": stdout was not JSON`, `"hello world, not json"`)
	if ErrorType(err) != TypeOutput {
		t.Fatalf("ErrorType: got %q, want %q", ErrorType(err), TypeOutput)
	}
	long := commandActivity(t, "long="+script(t, "cat >/dev/null\ni=0; while [ $i -lt 100 ]; do printf 'abcdefghij'; i=$((i+1)); done"))
	_, err = long.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, "stdout was not JSON", "(1000 bytes in all)")
	if strings.Contains(err.Error(), strings.Repeat("abcdefghij", 21)) {
		t.Fatalf("non-JSON stdout should be quoted up to ~200 bytes, got %d-byte message", len(err.Error()))
	}
}

func TestCommandNotFound(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.sh")
	a := commandActivity(t, "ghost="+missing)
	_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, `command activity "ghost": command "`+missing+`" not found: check the path`)
	if !IsNonRetryable(err) || ErrorType(err) != TypeCommandNotFound {
		t.Fatalf("missing command: got nonRetryable=%v type=%q, want true %q", IsNonRetryable(err), ErrorType(err), TypeCommandNotFound)
	}

	bare := commandActivity(t, "bare=stent-no-such-command-xyz")
	_, err = bare.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, `command "stent-no-such-command-xyz" not found in PATH: check the path`)
	if !IsNonRetryable(err) {
		t.Fatalf("command not in PATH: IsNonRetryable got false, want true")
	}

	notExec := filepath.Join(dir, "plain.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pe := commandActivity(t, "noexec="+notExec)
	_, err = pe.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, "is not executable: check its permissions")
	if !IsNonRetryable(err) {
		t.Fatalf("non-executable command: IsNonRetryable got false, want true")
	}
}

func TestCommandTimeoutKillsProcessGroup(t *testing.T) {
	// The script starts a child that keeps stdout open; the timeout must still return
	// (well before the child's 30s are up) and kill both. A loaded machine may not
	// have started the child by the time the timeout fires: then the run proves
	// nothing about the child, and the next one gets a longer timeout.
	var pid []byte
	for timeout := 300 * time.Millisecond; ; timeout *= 2 {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		a := commandActivity(t, "sleepy="+script(t, "cat >/dev/null\nsleep 30 &\necho $! >"+pidFile+"\nsleep 30\necho 1"), WithTimeout(timeout))
		start := time.Now()
		_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
		wantErrContains(t, err, fmt.Sprintf(`activity "sleepy" timed out after %s`, timeout))
		if ErrorType(err) != TypeTimeout || IsNonRetryable(err) {
			t.Fatalf("timeout: got type %q nonRetryable=%v, want %q false", ErrorType(err), IsNonRetryable(err), TypeTimeout)
		}
		if d := time.Since(start); d > timeout+20*time.Second {
			t.Fatalf("timed-out command returned after %s: it waited for the child that holds stdout open", d)
		}
		if runtime.GOOS != "linux" {
			return
		}
		if pid, err = os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(pid)) > 0 {
			break
		}
		if timeout > 20*time.Second {
			t.Fatalf("the script never wrote its background child's pid, even with a %s timeout: %v", timeout, err)
		}
	}
	proc := "/proc/" + strings.TrimSpace(string(pid))
	deadline := time.Now().Add(time.Minute)
	for {
		stat, err := os.ReadFile(proc + "/stat")
		// Gone, or a zombie waiting for its parent (init) to reap it.
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("background child %s still running a minute after the timeout: the process group was not killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCommandCancelled(t *testing.T) {
	a := commandActivity(t, "long="+script(t, "cat >/dev/null\nsleep 30"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Invoke(ctx, json.RawMessage(`[]`))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled command: got %v, want an error wrapping the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled command returned after %s, want well under 5s", d)
	}
}

func TestCommandLongStderrKeepsTail(t *testing.T) {
	a := commandActivity(t, "noisy="+script(t, "cat >/dev/null\ni=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done\necho 'FINAL REASON' >&2\nexit 1"))
	_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	wantErrContains(t, err, "FINAL REASON (exit status 1)")
	if strings.Contains(err.Error(), "line 0\n") {
		t.Fatalf("long stderr should be truncated to its tail, got %d bytes", len(err.Error()))
	}
	if len(err.Error()) > stderrKeep+100 {
		t.Fatalf("error message too long: %d bytes", len(err.Error()))
	}
}
