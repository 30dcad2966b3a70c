#!/usr/bin/env bash
# `make bench`: every benchmark in bench/, one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p berth
bench/accounts.sh
bench/api.sh
bench/provision/run.sh
bench/promql/run.sh
bench/hec/run.sh
bench/load/run.sh
