package stenttest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                "0s",
		1500 * time.Millisecond:          "1.5s",
		250 * time.Millisecond:           "250ms",
		90 * time.Second:                 "1m30s",
		30 * 24 * time.Hour:              "30d",
		26*time.Hour + 3*time.Second:     "1d2h3s",
		time.Hour + 500*time.Millisecond: "1h500ms",
		-2 * time.Minute:                 "-2m",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFormatHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(kind backend.EventKind, seq int, name, data string, at time.Duration) backend.Event {
		var raw json.RawMessage
		if data != "" {
			raw = json.RawMessage(data)
		}
		return backend.Event{Kind: kind, Seq: seq, Name: name, Data: raw, At: t0.Add(at)}
	}
	failed := ev(backend.EventActivityFailed, 3, "charge", "", 30*24*time.Hour+time.Hour+90*time.Second)
	failed.Error = &backend.ErrorInfo{Type: "PaymentError", Message: "card\ndeclined", Attempts: 3}
	end := ev(backend.EventFailed, 0, "", "", 30*24*time.Hour+time.Hour+90*time.Second)
	end.Error = &backend.ErrorInfo{Type: "PaymentError", Message: `durable: "charge" failed`}
	events := []backend.Event{
		ev(backend.EventStarted, 0, "", `[ "u1", {"a": 1} ]`, 0),
		ev(backend.EventActivityScheduled, 1, "fetch", `{"args":["u1"],"hash":"abc","pos":"x.star:1:2","options":{"cached":true,"timeout_ms":30000,"retry":{"max_attempts":3},"cache_ttl_ms":3600000,"x":[1]}}`, 0),
		ev(backend.EventActivityCompleted, 1, "fetch", `{"id": "u1"}`, 0),
		ev(backend.EventTimerScheduled, 2, "sleep", `{"hash":"h","pos":"p","options":{"duration_ms":2592000000}}`, 0),
		ev(backend.EventTimerFired, 2, "sleep", `null`, 30*24*time.Hour),
		ev(backend.EventSignalWait, 4, "approved", `{"hash":"h","pos":"p","options":{"timeout_ms":86400000}}`, 30*24*time.Hour),
		ev(backend.EventSignalReceived, 4, "approved", `{"by":"ann"}`, 30*24*time.Hour+time.Hour),
		ev(backend.EventSideEffect, 5, "uuid", `"0f0e"`, 30*24*time.Hour+time.Hour),
		failed,
		end,
	}
	got := FormatHistory(events, t0)
	want := strings.Join([]string{
		`1 started ["u1",{"a":1}]`,
		`2 activity_scheduled #1 fetch ["u1"] retry={"max_attempts":3} timeout=30s cached cache_ttl=1h x=[1]`,
		`3 activity_completed #1 fetch {"id":"u1"}`,
		`4 timer_scheduled #2 sleep 30d`,
		`5 timer_fired #2 sleep @+30d`,
		`6 signal_wait #4 approved timeout=1d`,
		`7 signal_received #4 approved {"by":"ann"} @+30d1h`,
		`8 side_effect #5 uuid "0f0e"`,
		`9 activity_failed #3 charge PaymentError (3 attempts): "card\ndeclined" @+30d1h1m30s`,
		`10 failed PaymentError: "durable: \"charge\" failed"`,
	}, "\n") + "\n"
	if d := Diff("want", want, "got", got); d != "" {
		t.Error(d)
	}
}

func TestDiff(t *testing.T) {
	want := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
	got := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\nl\n"
	d := Diff("want", want, "got", got)
	exp := strings.Join([]string{
		"--- want", "+++ got",
		"@@ -1,7 +1,7 @@", " a", " b", " c", "-d", "+D", " e", " f", " g",
		"@@ -9,3 +9,4 @@", " i", " j", " k", "+l", "",
	}, "\n")
	if d != exp {
		t.Errorf("Diff:\n%s\nwant:\n%s", d, exp)
	}
	if Diff("a", "x\n", "b", "x\n") != "" {
		t.Error("equal texts have a diff")
	}
	if d := Diff("a", "", "b", "x\n"); d != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" {
		t.Errorf("diff from empty:\n%s", d)
	}
	if d := Diff("a", "x", "b", "x\n"); !strings.Contains(d, "-x (no newline at end)") {
		t.Errorf("missing newline not shown:\n%s", d)
	}
}

func TestDedent(t *testing.T) {
	got := dedent("\n\t\t1 a\n\t\t  2 b\n\n\t\t3 c\n\t")
	if want := "1 a\n  2 b\n\n3 c\n"; got != want {
		t.Errorf("dedent = %q, want %q", got, want)
	}
}
