package main

import (
	"testing"

	"github.com/stent-go/stent/backend"
)

// TestCountsLineMarksBoundedCounts: a status whose count stopped at CountAtMost, and
// the total it takes part in, print with a "+"; exact counts print as they are.
func TestCountsLineMarksBoundedCounts(t *testing.T) {
	bounded := backend.ListFilter{CountAtMost: 10000}
	for _, tc := range []struct {
		f      backend.ListFilter
		counts map[backend.Status]int
		want   string
	}{
		{bounded, nil, "no executions"},
		{bounded, map[backend.Status]int{backend.StatusRunning: 1}, "1 execution: 1 running"},
		{bounded, map[backend.Status]int{backend.StatusRunning: 2, backend.StatusCompleted: 9999},
			"10001 executions: 2 running · 9999 completed"},
		{bounded, map[backend.Status]int{backend.StatusRunning: 2, backend.StatusCompleted: 10000},
			"10002+ executions: 2 running · 10000+ completed"},
		{backend.ListFilter{}, map[backend.Status]int{backend.StatusCompleted: 10000}, "10000 executions: 10000 completed"},
	} {
		if got := countsLine(tc.f, tc.counts); got != tc.want {
			t.Errorf("countsLine(%v, %v) = %q, want %q", tc.f.CountAtMost, tc.counts, got, tc.want)
		}
	}
}
