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

# `make run` keeps its throwaway secret key here, so that a restart can still read its data.
DEV_KEY := .data/dev-secret-key
DEV_ADDR := 127.0.0.1:17010

# Stamped into the binary (`attrcache --version`); the toolchain's own VCS stamping may be off.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: help run test build vet fmt services services-stop clean

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

test: services ## Start MariaDB and Redis if needed; check gofmt, go vet and go.mod; run every test with -race
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) test -race -count=1 ./...

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

clean: ## Remove build output (the data in .data/ stays)
	rm -rf bin/ attrcache
	$(GO) clean -testcache
