# Stent's everyday commands. `make help` lists them.

GO       ?= go
PKGS     ?= ./...
TESTFLAGS ?=
FUZZTIME ?= 5s
TEST_TIMEOUT ?= 40m
LOAD_CPUS ?= 6

# The suite's command. test-loaded runs the same packages and tests without the race
# detector (make test has it): under the burner it would stretch a run past an hour, and
# what that run checks is that no test depends on the machine's speed.
TESTCMD = $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)
LOADED_TESTCMD = $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)

.PHONY: help test test-loaded test-faults test-failover test-scale vet fmt tidy build bench fuzz

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the stent CLI into ./bin/stent
	$(GO) build -o bin/stent ./cmd/stent

test: vet ## vet, then run every test with the race detector (Postgres/Redis tests need STENT_TEST_POSTGRES / STENT_TEST_REDIS)
	$(TESTCMD)

# PostgreSQL connection faults, minutes long: 200 workflows through a proxy that cuts
# every connection every 2 s, and through a pg_terminate_backend storm.
test-faults: ## the long PostgreSQL connection-fault runs (needs STENT_TEST_POSTGRES)
	STENT_TEST_FAULTS=1 $(GO) test -race -count=1 -timeout 30m -run 'TestPostgresConnectionFaults$$' -v ./tests

# PostgreSQL primary failover, minutes long and not part of make test: two throwaway
# PostgreSQL 15 clusters (a primary and a streaming standby, run as the postgres OS
# user), four workers on a multi-host DSN running 2,000 workflows, kill -9 of the
# primary and promotion of the standby; with synchronous replication, then asynchronous.
# STENT_FAILOVER_EXECUTIONS=200 runs a smaller workload.
test-failover: ## the PostgreSQL primary-failover runs (needs PostgreSQL 15's initdb, pg_ctl, pg_basebackup)
	STENT_TEST_FAILOVER=1 $(GO) test -race -count=1 -timeout 150m -run 'TestPostgresFailover$$' -v ./tests

# PostgreSQL at scale, not part of make test (nor of CI): P5 on an empty store, then on
# the same store filled with STENT_SCALE_COUNT ended executions and their histories;
# `stent list`'s first page; `stent prune` deleting them while P5 runs beside it. It
# prints the figures in one block and asserts no timing. Without the race detector:
# the figures are timings. STENT_SCALE_COUNT=20000 runs a small one.
STENT_SCALE_COUNT ?= 1000000
test-scale: ## the PostgreSQL scale run (needs STENT_TEST_POSTGRES; a million executions by default)
	STENT_SCALE_COUNT=$(STENT_SCALE_COUNT) $(GO) test -count=1 -timeout 120m -run 'TestScale$$' -v ./tests

# The suite must not depend on an idle machine: the same command while LOAD_CPUS
# busy threads (stress-ng --cpu, or tests/internal/burn without it) keep the load above
# LOAD_CPUS. The package timeout is longer: everything runs slower, nothing may fail.
test-loaded: TEST_TIMEOUT = 45m
test-loaded: vet ## make test's suite while a CPU burner keeps the load above LOAD_CPUS (6)
	@set -e; \
	if command -v stress-ng >/dev/null 2>&1; then \
		stress-ng --cpu $(LOAD_CPUS) --timeout 90m --quiet & burner=$$!; \
	else \
		burn=$$(mktemp -d)/burn; $(GO) build -o "$$burn" ./tests/internal/burn; \
		"$$burn" -cpus $(LOAD_CPUS) -timeout 90m & burner=$$!; \
	fi; \
	trap 'kill $$burner 2>/dev/null || true; wait $$burner 2>/dev/null || true' EXIT INT TERM; \
	$(LOADED_TESTCMD); \
	echo "load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"

vet: ## go vet and gofmt check
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

tidy: ## go mod tidy
	$(GO) mod tidy

bench: ## run the benchmark scenarios on SQLite
	$(GO) run ./cmd/stent bench --scenario all

# fuzz-one TARGET PACKAGE: the Go fuzzer sometimes ends a short run with "context
# deadline exceeded" when a worker stalls as the time runs out (a loaded machine), with
# no failing input. A second run tells: a real failure is saved under testdata/fuzz and
# fails it again as a seed.
define fuzz-one
	$(GO) test -run='^$$' -fuzz='^$(1)$$' -fuzztime=$(FUZZTIME) $(2) || \
		$(GO) test -run='^$$' -fuzz='^$(1)$$' -fuzztime=$(FUZZTIME) $(2)
endef

fuzz: ## run each fuzz target for a few seconds (FUZZTIME=5s)
	$(call fuzz-one,FuzzParseDuration,./builtins)
	$(call fuzz-one,FuzzValueRoundTrip,./builtins)
	$(call fuzz-one,FuzzFromJSONFast,./builtins)
	$(call fuzz-one,FuzzScript,./interpreter)
