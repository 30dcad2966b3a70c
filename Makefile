# Two commands matter on a fresh machine: `make run` and `make test`.
# Every other target is a step of those two. Build caches live outside the
# checkout (under $(BERTH_CACHE)) so that a fresh clone on the same machine
# reuses them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

export BERTH_CACHE ?= $(HOME)/.cache/berth
export CARGO_TARGET_DIR ?= $(BERTH_CACHE)/cargo-target
export PATH := $(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)

.PHONY: run test deps build localcluster cluster-up cluster-down lint fmt test-rust bench

## run: install what is missing, build, start the local cluster and Berth on its defaults
run: deps localcluster build
	@if [ -z "$${KUBECONFIG:-}" ]; then $(MAKE) --no-print-directory cluster-up; fi
	scripts/run.sh

## test: install what is missing and run every test and check
test: deps localcluster
	scripts/test.sh

deps:
	scripts/deps.sh

build:
	scripts/web.sh build
	cargo build --release --locked -p berth

localcluster:
	scripts/localcluster.sh build

cluster-up: localcluster
	scripts/localcluster.sh up

cluster-down:
	scripts/localcluster.sh down

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

bench:
	scripts/bench.sh
