package main

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// work is what a run asked of the machine: this process's CPU (and its reaped
// children's: extra workers, the HTTP client), the local PostgreSQL server's CPU and
// the WAL it wrote. A figure that could not be read is negative.
type work struct {
	clientCPU time.Duration
	serverCPU time.Duration
	walBytes  int64
}

// readWork reads the counters work is the difference of, on dsn when it is PostgreSQL.
func readWork(ctx context.Context, dsn string, pg bool) work {
	w := work{clientCPU: processCPU(), serverCPU: -1, walBytes: -1}
	if !pg {
		return w
	}
	if local(dsn) {
		w.serverCPU = postgresServerCPU()
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		if conn.QueryRow(ctx, `SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`).Scan(&w.walBytes) != nil {
			w.walBytes = -1
		}
		_ = conn.Close(context.WithoutCancel(ctx))
	}
	return w
}

// since is w minus before, each figure negative when either side could not be read.
func (w work) since(before work) work {
	d := work{clientCPU: w.clientCPU - before.clientCPU, serverCPU: -1, walBytes: -1}
	if w.serverCPU >= 0 && before.serverCPU >= 0 {
		d.serverCPU = w.serverCPU - before.serverCPU
	}
	if w.walBytes >= 0 && before.walBytes >= 0 {
		d.walBytes = w.walBytes - before.walBytes
	}
	return d
}

// processCPU is the user and system CPU of this process and of its children that
// ended and were waited for.
func processCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// local reports whether dsn names a server on this machine (loopback or a socket),
// whose processes /proc shows.
func local(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "" {
		h = u.Query().Get("host")
	}
	return h == "" || h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" || strings.HasPrefix(h, "/")
}

// postgresServerCPU sums the CPU of this machine's postgres processes, and of the
// backends that ended (the postmaster's reaped children), from /proc; -1 without it.
func postgresServerCPU() time.Duration {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return -1
	}
	comm := map[string]string{}
	fields := map[string][]string{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || end+2 > len(s) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		comm[pid] = s[open+1 : end]
		fields[pid] = strings.Fields(s[end+2:])
	}
	isPG := func(c string) bool { return c == "postgres" || c == "postmaster" }
	var ticks int64
	for pid, f := range fields {
		if !isPG(comm[pid]) || len(f) < 15 {
			continue
		}
		ticks += atoi(f[11]) + atoi(f[12]) // utime, stime
		if !isPG(comm[f[1]]) {
			ticks += atoi(f[13]) + atoi(f[14]) // the postmaster: its reaped backends
		}
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / hz
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// workPerStep is the median over runs of each figure per step (an activity).
type workPerStep struct {
	ClientCPUMS float64 `json:"client_cpu_ms"`
	ServerCPUMS float64 `json:"server_cpu_ms,omitempty"`
	WALBytes    float64 `json:"wal_bytes,omitempty"`
}

func workPer(stats []runStats, steps int) *workPerStep {
	if steps <= 0 || len(stats) == 0 {
		return nil
	}
	med := func(get func(work) float64) float64 {
		var v []float64
		for _, s := range stats {
			if x := get(s.work); x >= 0 {
				v = append(v, x/float64(steps))
			}
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		m := v[len(v)/2]
		if len(v)%2 == 0 {
			m = (v[len(v)/2-1] + m) / 2
		}
		return m
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	w := &workPerStep{
		ClientCPUMS: math.Round(med(func(w work) float64 { return ms(w.clientCPU) })*1000) / 1000,
		ServerCPUMS: math.Round(med(func(w work) float64 {
			if w.serverCPU < 0 {
				return -1
			}
			return ms(w.serverCPU)
		})*1000) / 1000,
		WALBytes: math.Round(med(func(w work) float64 { return float64(w.walBytes) })),
	}
	return w
}

func (w *workPerStep) String() string {
	s := fmt.Sprintf("client CPU %.3f ms", w.ClientCPUMS)
	if w.ServerCPUMS > 0 {
		s += fmt.Sprintf(", server CPU %.3f ms", w.ServerCPUMS)
	}
	if w.WALBytes > 0 {
		s += fmt.Sprintf(", WAL %.0f B", w.WALBytes)
	}
	return s
}
