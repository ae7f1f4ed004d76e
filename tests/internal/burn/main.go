// Command burn keeps N CPUs busy, for `make test-loaded` where stress-ng is missing:
// N spinning OS threads, so the load average rises by about N. It stops on SIGTERM or
// SIGINT, when its parent exits, or after -timeout.
//
//	go run ./tests/internal/burn -cpus 6 -timeout 1h
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	cpus := flag.Int("cpus", 6, "threads to keep busy")
	timeout := flag.Duration("timeout", time.Hour, "stop after this long")
	flag.Parse()
	if *cpus < 1 {
		fmt.Fprintln(os.Stderr, "burn: -cpus must be at least 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*cpus + 1)
	for range *cpus {
		go spin()
	}
	parent := os.Getppid()
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) && os.Getppid() == parent {
		time.Sleep(time.Second)
	}
}

// spin keeps one OS thread busy.
func spin() {
	runtime.LockOSThread()
	x := uint64(1)
	for {
		x = x*6364136223846793005 + 1442695040888963407
		if x == 0 {
			runtime.Gosched()
		}
	}
}
