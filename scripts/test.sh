#!/usr/bin/env bash
# `make test`: every check and test, on SQLite and on a real PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

pg_dir=$(mktemp -d /tmp/berth-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
step "PostgreSQL (throwaway cluster)"
pg_url=$(scripts/postgres.sh start "$pg_dir")
echo "$pg_url"

step "tests on SQLite"
cargo test --workspace --locked

step "store and API tests on PostgreSQL"
BERTH_TEST_POSTGRES_URL=$pg_url cargo test --locked -p berth-store -p berth
