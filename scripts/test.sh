#!/usr/bin/env bash
# `make test`: every check and test: Rust on SQLite and on a real PostgreSQL,
# against the shared local Kubernetes cluster, and the web UI in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

pg_dir=$(mktemp -d /tmp/berth-pg.XXXXXX)
prom_dir=$(mktemp -d /tmp/berth-prometheus.XXXXXX)
oidc_dir=$(mktemp -d /tmp/berth-oidc.XXXXXX)
mail_dir=$(mktemp -d /tmp/berth-mailpit.XXXXXX)
started_cluster=false
cleanup() {
  scripts/postgres.sh stop "$pg_dir"
  scripts/prometheus.sh stop "$prom_dir"
  scripts/oidc.sh stop "$oidc_dir"
  scripts/mailpit.sh stop "$mail_dir"
  if $started_cluster; then scripts/localcluster.sh down; fi
}
trap cleanup EXIT

step "web build (embedded in the binary)"
scripts/web.sh build

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Go: gofmt and go vet (localcluster, tools/oidc-provider)"
unformatted=$(PATH="/usr/local/go/bin:$PATH" gofmt -l localcluster tools/oidc-provider)
if [[ -n $unformatted ]]; then
  echo "gofmt would reformat: $unformatted" >&2
  exit 1
fi
# -trimpath as in scripts/localcluster.sh, so vet reuses that build's cache.
(cd localcluster && PATH="/usr/local/go/bin:$PATH" go vet -trimpath ./...)
(cd tools/oidc-provider && PATH="/usr/local/go/bin:$PATH" go vet -trimpath ./...)

step "local Kubernetes cluster (shared by every test)"
scripts/localcluster.sh status >/dev/null 2>&1 || started_cluster=true
scripts/localcluster.sh up

step "deploy: Dockerfile (hadolint), .gitlab-ci.yml (GitLab's schema), Helm chart (lint, values schema, server-side dry run)"
scripts/deploy-check.sh

step "PostgreSQL (throwaway cluster)"
pg_url=$(scripts/postgres.sh start "$pg_dir")
echo "$pg_url"

step "Prometheus (shared by the metrics tests; they add their targets to its file_sd directory)"
BERTH_TEST_PROMETHEUS_URL=$(PROMETHEUS_SCRAPE_INTERVAL=1s scripts/prometheus.sh start "$prom_dir")
export BERTH_TEST_PROMETHEUS_URL BERTH_TEST_PROMETHEUS_TARGETS=$prom_dir/targets
echo "$BERTH_TEST_PROMETHEUS_URL"

step "Mailpit (a real SMTP server shared by the mail tests; each reads its own addresses)"
{ read -r BERTH_TEST_SMTP_URL; read -r BERTH_TEST_MAILPIT_URL; } < <(scripts/mailpit.sh start "$mail_dir")
export BERTH_TEST_SMTP_URL BERTH_TEST_MAILPIT_URL
echo "$BERTH_TEST_SMTP_URL $BERTH_TEST_MAILPIT_URL"

step "OpenID provider (tools/oidc-provider, shared by the single sign-on tests)"
BERTH_TEST_OIDC_ISSUER=$(scripts/oidc.sh start "$oidc_dir")
export BERTH_TEST_OIDC_ISSUER
echo "$BERTH_TEST_OIDC_ISSUER"

step "tests on SQLite"
cargo test --workspace --locked --no-fail-fast --lib --bins --tests

step "store and API tests on PostgreSQL"
BERTH_TEST_POSTGRES_URL=$pg_url cargo test --locked --no-fail-fast --lib --bins --tests -p berth-store -p berth

step "web checks"
scripts/web.sh check

step "web end-to-end"
scripts/web.sh e2e
