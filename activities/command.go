package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ExitCodeNonRetryable is the exit status (EX_DATAERR in sysexits.h) with which a
// command activity reports a failure that must not be retried.
const ExitCodeNonRetryable = 65

const (
	// commandWaitDelay bounds how long a finished or killed command may keep its
	// output pipes open (through a child it left behind) before Invoke gives up on them.
	commandWaitDelay = 2 * time.Second
	// stderrKeep is how much of the end of stderr is kept for the error message.
	stderrKeep = 4 << 10
	// stdoutQuote is how much of a non-JSON stdout is quoted in the error.
	stdoutQuote = 200
)

// Environment variables a command activity receives.
const (
	EnvExecutionID    = "STENT_EXECUTION_ID"
	EnvSeq            = "STENT_SEQ"
	EnvAttempt        = "STENT_ATTEMPT"
	EnvActivity       = "STENT_ACTIVITY"
	EnvIdempotencyKey = "STENT_IDEMPOTENCY_KEY"
)

// runCommand runs a command activity once: args on stdin, JSON result on stdout.
func (a *Activity) runCommand(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
	if _, err := a.splitArgs(args); err != nil {
		return nil, err
	}
	input := bytes.TrimSpace(args)
	if len(input) == 0 || string(input) == "null" {
		input = []byte("[]")
	}
	path := a.command[0]
	cmd := exec.CommandContext(ctx, path, a.command[1:]...)
	cmd.Stdin = bytes.NewReader(append(append([]byte(nil), input...), '\n'))
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: stderrKeep}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.Env = a.commandEnv(ctx)
	cmd.WaitDelay = commandWaitDelay
	setProcessGroup(cmd)
	sup, err := superviseCommand(cmd)
	if err != nil {
		return nil, a.startError(path, err)
	}
	if err := cmd.Start(); err != nil {
		sup.close()
		return nil, a.startError(path, err)
	}
	sup.started()
	err = cmd.Wait()
	if serr := sup.startError(); serr != nil {
		return nil, a.startError(path, serr)
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return nil, a.exitError(exitErr, stderr.String())
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		return nil, &Error{
			Type:    TypeCommand,
			Message: fmt.Sprintf("command activity %q: running %s: %v", a.Name, path, err),
			Cause:   err,
		}
	}
	out := bytes.TrimSpace(stdout.Bytes())
	if len(out) == 0 {
		return json.RawMessage("null"), nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		quoted := out
		more := ""
		if len(quoted) > stdoutQuote {
			quoted, more = quoted[:stdoutQuote], fmt.Sprintf(" (%d bytes in all)", len(out))
		}
		return nil, &Error{
			Type: TypeOutput,
			Message: fmt.Sprintf("command activity %q: stdout was not JSON (%v); it began with %q%s; "+
				"a command activity must print its result as JSON, or nothing", a.Name, err, quoted, more),
			Cause: err,
		}
	}
	return json.RawMessage(compact.Bytes()), nil
}

// commandEnv is the environment of one attempt: the worker's, cleaned of secrets (see
// cleanEnv), plus the STENT_* variables of this attempt.
func (a *Activity) commandEnv(ctx context.Context) []string {
	env := cleanEnv(os.Environ(), a.Options.PassEnv)
	// The trace context is this attempt's, never one inherited from the worker's own.
	kept := env[:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != EnvTraceparent && k != EnvTracestate {
			kept = append(kept, kv)
		}
	}
	env = kept
	env = append(env, EnvActivity+"="+a.Name)
	if info, ok := InfoFromContext(ctx); ok {
		env = append(env,
			EnvExecutionID+"="+info.ExecutionID,
			EnvSeq+"="+strconv.Itoa(info.Seq),
			EnvAttempt+"="+strconv.Itoa(info.Attempt),
			EnvIdempotencyKey+"="+info.IdempotencyKey(),
		)
	}
	if tp := traceparent(ctx); tp != "" {
		env = append(env, EnvTraceparent+"="+tp)
	}
	return env
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// startError explains why the command could not be started.
func (a *Activity) startError(path string, err error) error {
	e := &Error{Type: TypeCommandNotFound, NonRetryable: true, Cause: err}
	switch {
	case errors.Is(err, exec.ErrNotFound):
		e.Message = fmt.Sprintf("command activity %q: command %q not found in PATH: check the path, or give it as ./%s or an absolute path", a.Name, path, path)
	case errors.Is(err, fs.ErrNotExist):
		e.Message = fmt.Sprintf("command activity %q: command %q not found: check the path (relative paths are resolved against the worker's directory %s)", a.Name, path, workDir())
	case errors.Is(err, fs.ErrPermission):
		e.Message = fmt.Sprintf("command activity %q: command %q is not executable: check its permissions (chmod +x %s)", a.Name, path, path)
	case errors.Is(err, syscall.ENOEXEC):
		e.Message = fmt.Sprintf("command activity %q: command %q cannot be executed (exec format error): a script needs a #! line", a.Name, path)
	default:
		e.Type, e.NonRetryable = TypeCommand, false
		e.Message = fmt.Sprintf("command activity %q: cannot start %q: %v", a.Name, path, err)
	}
	return e
}

func workDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "(unknown)"
	}
	return wd
}

// exitError is the failure of a command that exited non-zero or was killed: its
// message is the command's stderr and its exit status.
func (a *Activity) exitError(ee *exec.ExitError, stderr string) error {
	stderr = strings.TrimSpace(stderr)
	status := ee.Error() // "exit status 3", "signal: killed"
	msg := status
	if stderr != "" {
		msg = stderr + " (" + status + ")"
	}
	return &Error{
		Type:         TypeCommand,
		Message:      msg,
		NonRetryable: ee.ExitCode() == ExitCodeNonRetryable,
		Cause:        ee,
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
		b.truncated = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	s := b.buf
	if len(s) > b.max {
		s, b.truncated = s[len(s)-b.max:], true
	}
	for len(s) > 0 && !isRuneStart(s[0]) {
		s = s[1:]
	}
	if b.truncated {
		return "..." + string(s)
	}
	return string(s)
}

// SplitCommand splits a command line into words like a POSIX shell does for simple
// quoting: blanks separate words, 'single quotes' keep everything literally, "double
// quotes" keep everything but \" \\ \$ and \`, and a backslash outside quotes escapes
// the next character. Nothing is expanded ($VAR, globs, pipes and redirections are
// plain characters).
func SplitCommand(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case '\'':
			in = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in command %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '"':
			in = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated double quote in command %q", s)
			}
		case '\\':
			in = true
			if i+1 < len(s) {
				i++
			}
			cur.WriteByte(s[i])
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
