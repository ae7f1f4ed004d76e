package stenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
)

// FormatHistory renders an execution's history as text, one line per event, in a form
// that is stable across runs and reads well in a diff:
//
//	1 started [["u1"],"Welcome"]
//	2 activity_scheduled #1 fetch_user_data ["u1"] retry={"max_attempts":3,"initial_delay_ms":1000,"backoff_factor":2}
//	3 activity_completed #1 fetch_user_data {"id":"u1"} @+3s
//	4 timer_scheduled #2 sleep 30d
//	5 timer_fired #2 sleep @+30d3s
//	6 side_effect #3 uuid <uuid1>
//	7 activity_attempt_failed #4 charge_card attempt 1 ActivityError: "card declined"
//	8 activity_failed #4 charge_card ActivityError (3 attempts): "card declined"
//	9 failed ActivityError: "durable: activity \"charge_card\" failed after 3 attempts: card declined"
//
// Lines are numbered from 1 (the number of the event, not its storage ID); #N is the
// step's sequence number. "@+D" marks an event that happened later than the one before
// it, D being the virtual time since base (the first event's time when base is zero).
// Times, storage IDs and script positions are left out; side effects whose value is
// random (uuid, random) must be masked by the caller (see newMasker).
func FormatHistory(events []backend.Event, base time.Time) string {
	var b strings.Builder
	for i, line := range historyLines(events, base) {
		fmt.Fprintf(&b, "%d %s\n", i+1, line)
	}
	return b.String()
}

func historyLines(events []backend.Event, base time.Time) []string {
	if base.IsZero() && len(events) > 0 {
		base = events[0].At
	}
	prev := base
	lines := make([]string, 0, len(events))
	for _, ev := range events {
		line := formatEvent(ev)
		if !ev.At.IsZero() && ev.At.After(prev) {
			line += " @+" + FormatDuration(ev.At.Sub(base))
			prev = ev.At
		}
		lines = append(lines, line)
	}
	return lines
}

// scheduledData is the Data the interpreter writes with *_scheduled events.
type scheduledData struct {
	Args    json.RawMessage `json:"args"`
	Options json.RawMessage `json:"options"`
}

func formatEvent(ev backend.Event) string {
	kind := string(ev.Kind)
	step := func(rest ...string) string {
		parts := []string{kind, "#" + strconv.Itoa(ev.Seq), ev.Name}
		for _, r := range rest {
			if r != "" {
				parts = append(parts, r)
			}
		}
		return strings.Join(parts, " ")
	}
	switch ev.Kind {
	case backend.EventStarted:
		return kind + " " + compactJSON(ev.Data)
	case backend.EventCompleted:
		return kind + " " + compactJSON(ev.Data)
	case backend.EventFailed:
		return kind + " " + formatError(ev.Error)
	case backend.EventCancelRequested:
		if len(ev.Data) > 0 && string(ev.Data) != "null" {
			return kind + " " + compactJSON(ev.Data)
		}
		return kind
	case backend.EventActivityScheduled, backend.EventChildScheduled:
		var d scheduledData
		_ = json.Unmarshal(ev.Data, &d)
		args := compactJSON(d.Args)
		if len(d.Args) == 0 {
			args = "[]"
		}
		return step(args, formatCallOptions(d.Options))
	case backend.EventTimerScheduled:
		var o struct {
			DurationMS int64 `json:"duration_ms"`
		}
		decodeOptions(ev, &o)
		return step(FormatDuration(time.Duration(o.DurationMS) * time.Millisecond))
	case backend.EventSignalWait:
		var o struct {
			TimeoutMS int64 `json:"timeout_ms"`
		}
		decodeOptions(ev, &o)
		if o.TimeoutMS > 0 {
			return step("timeout=" + FormatDuration(time.Duration(o.TimeoutMS)*time.Millisecond))
		}
		return step()
	case backend.EventTimerFired, backend.EventSignalTimedOut:
		return step()
	case backend.EventActivityFailed:
		return step(formatError(ev.Error))
	case backend.EventActivityAttemptFailed:
		// The worker and the attempt's times vary from run to run: the attempt and the
		// error are what a golden history keeps.
		var d backend.AttemptData
		_ = json.Unmarshal(ev.Data, &d)
		return step("attempt "+strconv.Itoa(d.Attempt), formatError(ev.Error))
	case backend.EventActivityCompleted, backend.EventChildCompleted:
		if ev.Error != nil {
			return step(formatError(ev.Error))
		}
		return step(compactJSON(ev.Data))
	case backend.EventSignalReceived, backend.EventSideEffect:
		return step(compactJSON(ev.Data))
	}
	// An event kind this package does not know yet: show everything it has.
	out := step(compactJSON(ev.Data))
	if ev.Error != nil {
		out += " " + formatError(ev.Error)
	}
	return out
}

// formatCallOptions shows an activity's per-call options: retry={...} as recorded,
// durations (the *_ms fields) with units, flags by name: "retry={...} timeout=30s cached".
func formatCallOptions(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil {
		return "options=" + compactJSON(raw)
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	rank := map[string]int{"retry": 1, "timeout_ms": 2, "heartbeat_timeout_ms": 3, "cached": 4, "cache_ttl_ms": 5}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank[keys[i]], rank[keys[j]]
		if ri == 0 {
			ri = 100
		}
		if rj == 0 {
			rj = 100
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := o[k]
		var ms int64
		var flag bool
		switch {
		case strings.HasSuffix(k, "_ms") && json.Unmarshal(v, &ms) == nil:
			parts = append(parts, strings.TrimSuffix(k, "_ms")+"="+FormatDuration(time.Duration(ms)*time.Millisecond))
		case json.Unmarshal(v, &flag) == nil:
			if flag {
				parts = append(parts, k)
			} else {
				parts = append(parts, k+"=false")
			}
		default:
			parts = append(parts, k+"="+compactJSON(v))
		}
	}
	return strings.Join(parts, " ")
}

// formatError renders a stored failure on one line: its type, attempts and message.
func formatError(info *backend.ErrorInfo) string {
	if info == nil {
		return "error"
	}
	typ := info.Type
	if typ == "" {
		typ = "error"
	}
	if info.Attempts > 1 {
		typ += fmt.Sprintf(" (%d attempts)", info.Attempts)
	}
	return typ + ": " + quote(info.Message)
}

// quote writes s as a JSON string, so that a message stays on one line.
func quote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// compactJSON writes raw JSON on one line; anything else is quoted.
func compactJSON(raw json.RawMessage) string {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return quote(string(raw))
	}
	return buf.String()
}

// indentJSON writes raw JSON indented by two spaces, keeping key order.
func indentJSON(raw json.RawMessage) string {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return "null"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, trimmed, "", "  "); err != nil {
		return string(trimmed)
	}
	return buf.String()
}

// FormatDuration writes d with the units scripts use (d h m s ms): "30d", "1h30m",
// "1.5s", "0s".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	units := []struct {
		suffix string
		size   time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}}
	for _, u := range units {
		if d >= u.size {
			fmt.Fprintf(&b, "%d%s", d/u.size, u.suffix)
			d %= u.size
		}
	}
	switch {
	case d == 0:
	case d%time.Second == 0:
		fmt.Fprintf(&b, "%ds", d/time.Second)
	case d < time.Second && d%time.Millisecond == 0:
		fmt.Fprintf(&b, "%dms", d/time.Millisecond)
	default:
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s")
	}
	return b.String()
}

// decodeOptions reads the options of the step ev schedules into o.
func decodeOptions(ev backend.Event, o any) {
	var d scheduledData
	_ = json.Unmarshal(ev.Data, &d)
	_ = json.Unmarshal(d.Options, o)
}
