package interpreter

import (
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/backend"
)

func completed(seq int) backend.Event {
	return backend.Event{Seq: seq, Kind: backend.EventActivityCompleted, Name: "a", Data: json.RawMessage(`1`)}
}

// AwaitsOnly is true exactly when the parked run waits for that one activity.
func TestAwaitsOnly(t *testing.T) {
	p := compileFile(t, `
def main():
    durable("a")
    gather([start("a"), start("a")])
    sleep("1s")
    return 1
`)
	run, err := p.NewRun("main", json.RawMessage(`[]`), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if run.AwaitsOnly(1) {
		t.Fatal("a run that has not started awaits nothing")
	}
	run.Advance(nil) // schedules seq 1
	if !run.AwaitsOnly(1) {
		t.Error("parked in durable() at seq 1: AwaitsOnly(1) = false")
	}
	if run.AwaitsOnly(2) {
		t.Error("AwaitsOnly(2) = true for a seq not issued yet")
	}
	run.Advance([]backend.Event{completed(1)}) // schedules seqs 2 and 3
	if run.AwaitsOnly(2) || run.AwaitsOnly(3) {
		t.Error("gather of seqs 2 and 3: AwaitsOnly of either = true while the other is open")
	}
	run.Advance([]backend.Event{completed(2)})
	if !run.AwaitsOnly(3) {
		t.Error("seq 2 done: AwaitsOnly(3) = false")
	}
	if run.AwaitsOnly(2) {
		t.Error("AwaitsOnly(2) = true for a seq that has its outcome")
	}
	run.Advance([]backend.Event{completed(3)}) // schedules the timer at seq 4
	if run.AwaitsOnly(4) {
		t.Error("AwaitsOnly(4) = true for a timer")
	}
}
