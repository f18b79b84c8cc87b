# attrcache's developer commands. `make help` lists them.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go

# Where the services listen; scripts/services.sh and the tests read the same values.
export MYSQL_PORT ?= 3306
export REDIS_PORT ?= 6379
export ATTRCACHE_TEST_MYSQL ?= root@tcp(127.0.0.1:$(MYSQL_PORT))/
export ATTRCACHE_TEST_REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0

# The three-master Redis Cluster of `make cluster`; the packages that cache data are tested on it
# too (cmd/attrcache with serve configured by ATTRCACHE_REDIS_ADDRS). Each node also uses its
# port + 10000 for the cluster bus.
export REDIS_CLUSTER_PORTS ?= 7001 7002 7003
comma := ,
space := $() $()
CLUSTER_ADDRS = $(subst $(space),$(comma),$(addprefix 127.0.0.1:,$(subst $(comma),$(space),$(REDIS_CLUSTER_PORTS))))
CLUSTER_TEST_PKGS := ./cache/ ./sso/ ./httpapi/ ./cmd/attrcache/

# The three-node MariaDB Galera cluster of `make galera`, on these SQL ports; each node also uses
# its port + 1000 (group communication), + 2000 and + 3000 (state transfers). `make test-galera`
# runs GALERA_TEST_PKGS on it, with instances on different nodes.
export GALERA_PORTS ?= 3311 3312 3313
GALERA_ADDRS = $(subst $(space),$(comma),$(addprefix 127.0.0.1:,$(subst $(comma),$(space),$(GALERA_PORTS))))
# persist runs last: after it, MariaDB 10.11.19's purge on one node at times spins on history it
# cannot finish and grows by 0.4-1.4 GB every 6-8 s until the OOM killer ends the node, which failed
# the packages that ran after it (reproduced with persist alone, before and after 2026-12-06's
# changes). The Galera nodes are throwaway test servers: delete .data/galera to start afresh.
GALERA_TEST_PKGS := ./faults/ ./galera/ ./persist/

# `make run` keeps its throwaway secret key here, so that a restart can still read its data.
DEV_KEY := .data/dev-secret-key
DEV_ADDR := 127.0.0.1:17010

# Stamped into the binary (`attrcache --version`); the toolchain's own VCS stamping may be off.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: help run test test-cluster test-galera fuzz build vet fmt services services-stop cluster cluster-stop galera galera-stop clean

help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

run: services build $(DEV_KEY) ## Start MariaDB and Redis if needed, build, then serve on 127.0.0.1:17010 (Ctrl-C stops)
	ATTRCACHE_HTTP_ADDR=$(DEV_ADDR) \
	ATTRCACHE_MYSQL_DSN='root@tcp(127.0.0.1:$(MYSQL_PORT))/attrcache?parseTime=true' \
	ATTRCACHE_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)/0 \
	ATTRCACHE_SECRET_KEY="$$(cat $(DEV_KEY))" \
	exec bin/attrcache serve --dev

$(DEV_KEY):
	@mkdir -p $(@D)
	@umask 077 && head -c 32 /dev/urandom | base64 >$@
	@echo "generated a development secret key in $@"

test: services ## Start MariaDB and Redis if needed; check gofmt, go vet and go.mod; run every test with -race, then test-cluster, test-galera, then each fuzz target for 3 s
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-cluster
	@$(MAKE) --no-print-directory test-galera
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

test-cluster: services cluster ## Run the tests of the packages that cache data against the Redis Cluster
	ATTRCACHE_TEST_REDIS_ADDRS=$(CLUSTER_ADDRS) $(GO) test -race -count=1 $(CLUSTER_TEST_PKGS)

# One package at a time, in GALERA_TEST_PKGS's order: a node's restart (its state transfer) and
# the fault suite's loads on the same two cores made both miss their bounds.
test-galera: services galera ## Run the fault suite, galera/ (hot key, migrations, a node killed) and the persist suite on the Galera cluster, instances on different nodes
	for pkg in $(GALERA_TEST_PKGS); do \
		ATTRCACHE_TEST_MYSQL='root@tcp(127.0.0.1:$(firstword $(subst $(comma),$(space),$(GALERA_PORTS))))/' \
		ATTRCACHE_TEST_GALERA_ADDRS=$(GALERA_ADDRS) $(GO) test -race -count=1 $$pkg || exit 1; \
	done

# The fuzz targets of `make fuzz`, as package:FuzzName. Each also runs over its seeds and its
# corpus in the package's testdata/fuzz/<FuzzName>/ in every `go test`; an input that fails is
# written there too, to be kept as a regression case once fixed.
FUZZ_TARGETS := .:FuzzParseUST .:FuzzKeyringOpen .:FuzzDecodeTOTPKey .:FuzzParseTime ./httpapi/:FuzzInput ./httpapi/:FuzzDecodeObject ./httpapi/:FuzzReadAttrItems
FUZZTIME ?= 10s
# Minimising each new input for the default 60 s would stall a short run; 2 s still shrinks a failing one.
FUZZMINIMIZETIME ?= 2s
# Usernames, by their rule.
FUZZ_TARGETS += .:FuzzCheckUsername

fuzz: services ## Run each fuzz target (UST, encryption envelope, TOTP key, timestamps, request decoding, attribute items) for FUZZTIME (10s)
	@GO='$(GO)' FUZZTIME='$(FUZZTIME)' FUZZMINIMIZETIME='$(FUZZMINIMIZETIME)' scripts/fuzz.sh $(FUZZ_TARGETS)

build: ## Build bin/attrcache
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/attrcache ./cmd/attrcache

vet: ## Run go vet
	$(GO) vet ./...

fmt: ## Format every Go file
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

services: ## Start MariaDB and Redis unless they answer (private servers, data in .data/)
	scripts/services.sh

services-stop: ## Stop the servers `make services` started
	scripts/services.sh stop

cluster: ## Start a three-master Redis Cluster on REDIS_CLUSTER_PORTS unless it is up (data in .data/cluster/)
	scripts/services.sh cluster

cluster-stop: ## Stop the Redis Cluster `make cluster` started
	scripts/services.sh cluster-stop

galera: ## Start a three-node MariaDB Galera cluster on GALERA_PORTS unless it is up (data in .data/galera/)
	scripts/services.sh galera

galera-stop: ## Stop the Galera cluster `make galera` started (the first node last, to bootstrap it again)
	scripts/services.sh galera-stop

.PHONY: bench
bench: services build ## Measure Redis, raw MariaDB upserts and attrcache side by side (BENCH_SECONDS per run, default 10); results in bench/results/
	@scripts/services.sh bench-tools
	bench/run.sh

# The packages with Go micro-benchmarks; httpapi's and persist's tests need MariaDB and Redis up.
BENCH_GO_PKGS := ./ ./cache/ ./httpapi/ ./persist/

.PHONY: bench-go
bench-go: services ## Run the Go micro-benchmarks (sealing, USTs, cache keys and codec, request decoding, upsert building)
	$(GO) test -run '^$$' -bench . -benchmem $(BENCH_GO_PKGS)

# The soak run's length in seconds; the test gets 5 minutes more to set up and check.
SOAK_SECONDS ?= 120

.PHONY: soak
soak: services ## Run SOAK_SECONDS (default 120) of mixed load with expiring attributes, then check consistency and that memory and goroutines stayed flat
	SOAK_SECONDS=$(SOAK_SECONDS) $(GO) test -tags soak -count=1 -v -timeout $$(( $(SOAK_SECONDS) + 300 ))s -run '^TestSoak$$' ./soak/

clean: ## Remove build output (the data in .data/ stays)
	rm -rf bin/ attrcache
	$(GO) clean -testcache
