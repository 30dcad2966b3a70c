#!/usr/bin/env bash
# The web UI: `build` (install from the lock, then vite build into web/dist),
# `check` (eslint, tsc, vitest, OpenAPI snapshot), `e2e` (Chromium against the
# real binary). node_modules lives outside the checkout, keyed by the hash of
# package-lock.json, so a fresh clone on the same machine reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
web=$root/web

export BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BERTH_CACHE/cargo-target}
export PATH=$HOME/.cargo/bin:$PATH

step() { printf '\n== web: %s\n' "$*"; }

# Installs into $BERTH_CACHE/npm/<sha of the lock>/ and links web/node_modules
# there; a half-finished install never becomes visible under its final name.
install_deps() {
  local sha dir tmp
  sha=$(sha256sum "$web/package-lock.json" | cut -c1-16)
  dir=$BERTH_CACHE/npm/$sha
  if [ ! -d "$dir/node_modules" ]; then
    step "npm ci (lock $sha)"
    tmp=$(mktemp -d "$BERTH_CACHE/npm/.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$BERTH_CACHE/npm" && mktemp -d "$BERTH_CACHE/npm/.tmp.XXXXXX"; })
    cp "$web/package.json" "$web/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error)
    mkdir -p "$dir"
    mv "$tmp/node_modules" "$dir/node_modules"
    rm -rf "$tmp"
  fi
  if [ "$(readlink "$web/node_modules" 2>/dev/null)" != "$dir/node_modules" ]; then
    rm -rf "$web/node_modules"
    ln -s "$dir/node_modules" "$web/node_modules"
  fi
}

# The document the server serves, read from the built binary on a free port.
served_openapi() {
  local out=$1
  build_binary
  with_server "$(mktemp -d /tmp/berth-openapi.XXXXXX)" \
    bash -c 'curl -fsS "$BERTH_URL/api/v1/openapi.json"' >"$out"
}

# BERTH_BIN names a prebuilt binary to use instead of building one.
build_binary() {
  [ -n "${BERTH_BIN:-}" ] && return
  step "cargo build -p berth"
  cargo build --locked -p berth
}

# Runs "$@" with BERTH_URL pointing at a fresh `berth serve` on port 0 with a
# throwaway SQLite database in $1, and stops the server afterwards. With the
# test Prometheus (BERTH_TEST_PROMETHEUS_URL and its file_sd directory
# BERTH_TEST_PROMETHEUS_TARGETS, as scripts/test.sh exports them) the server
# queries it and is listed there as a target while it runs, so that its
# per-environment series reach the portal's charts.
with_server() {
  local dir=$1
  shift
  local log=$dir/berth.log pid url="" rc=0 target=""
  if [ -n "${BERTH_TEST_PROMETHEUS_URL:-}" ]; then export BERTH_PROMETHEUS_URL=$BERTH_TEST_PROMETHEUS_URL; fi
  # With the test OpenID provider (scripts/oidc.sh), single sign-on through
  # its client `berth` (tools/oidc-provider/testing.json).
  if [ -n "${BERTH_TEST_OIDC_ISSUER:-}" ]; then
    export BERTH_OIDC_ISSUER=$BERTH_TEST_OIDC_ISSUER BERTH_OIDC_CLIENT_ID=berth \
      BERTH_OIDC_CLIENT_SECRET=berth-dev-secret BERTH_OIDC_NAME="Test Provider" \
      BERTH_OIDC_ADMIN_GROUP=berth-admins
  fi
  BERTH_LISTEN=127.0.0.1:0 \
    BERTH_KUBE_LISTEN=127.0.0.1:0 \
    BERTH_DATABASE_URL="sqlite://$dir/berth.db?mode=rwc" \
    BERTH_ADMIN_EMAIL=${BERTH_ADMIN_EMAIL:-admin@berth.test} \
    BERTH_ADMIN_PASSWORD=${BERTH_ADMIN_PASSWORD:-admin-password-for-tests} \
    RUST_LOG=${RUST_LOG:-info} \
    "${BERTH_BIN:-$CARGO_TARGET_DIR/debug/berth}" serve >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -n1 | sed 's/listening on //' || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "web: berth did not start; its log:" >&2
    cat "$log" >&2
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  if [ -n "${BERTH_TEST_PROMETHEUS_TARGETS:-}" ]; then
    target=$BERTH_TEST_PROMETHEUS_TARGETS/berth-web-$pid.json
    # Renamed into place (Prometheus reads only *.json), never read half-written.
    printf '[{"targets":["%s"],"labels":{"job":"berth-web"}}]\n' "${url#http://}" >"$target.tmp"
    mv "$target.tmp" "$target"
  fi
  BERTH_URL=$url BERTH_LOG=$log "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    # What Berth warned of while the specs ran: a failure's cause on its side.
    echo "web: berth's warnings and errors (last 80):" >&2
    grep -E '"level":"(WARN|ERROR)"' "$log" | tail -n 80 >&2 || true
  fi
  [ -z "$target" ] || rm -f "$target"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return "$rc"
}

# Builds into a scratch directory and replaces web/dist only when the output
# differs, so that an unchanged UI does not make cargo re-embed it.
cmd_build() {
  install_deps
  step "vite build"
  local out
  out=$(mktemp -d "$web/.dist.XXXXXX")
  (cd "$web" && npx --no-install vite build --logLevel warn --outDir "$out" --emptyOutDir)
  if diff -rq "$out" "$web/dist" >/dev/null 2>&1; then
    rm -rf "$out"
  else
    rm -rf "$web/dist"
    mv "$out" "$web/dist"
    chmod 755 "$web/dist"
  fi
  (cd "$web" && node scripts/size.mjs)
}

cmd_check() {
  install_deps
  cd "$web"
  step "eslint"
  npx --no-install eslint --max-warnings 0 .
  step "tsc --noEmit"
  npx --no-install tsc --noEmit -p .
  step "vitest"
  npx --no-install vitest run
  step "OpenAPI snapshot"
  cmd_check_api
}

cmd_check_api() {
  install_deps
  local served
  served=$(mktemp /tmp/berth-openapi.XXXXXX.json)
  served_openapi "$served"
  (cd "$web" && node scripts/check-api.mjs "$served")
  rm -f "$served"
}

cmd_update_api() {
  install_deps
  served_openapi "$web/openapi.json"
  (cd "$web" && npx --no-install openapi-typescript openapi.json -o src/api/schema.d.ts)
}

cmd_e2e() {
  install_deps
  if [ ! -x /usr/bin/chromium ]; then
    step "installing Debian's chromium"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  [ -f "$web/dist/index.html" ] || cmd_build
  build_binary
  local dir
  dir=$(mktemp -d /tmp/berth-e2e.XXXXXX)
  # Screenshots of every page state at 1280 and 390 px, outside the checkout
  # unless BERTH_E2E_SHOTS names a directory (CI: one it keeps as artifacts).
  export BERTH_E2E_SHOTS=${BERTH_E2E_SHOTS:-$(mktemp -d /tmp/berth-e2e-shots.XXXXXX)}
  mkdir -p "$BERTH_E2E_SHOTS"
  echo "web: screenshots go to $BERTH_E2E_SHOTS"
  step "end-to-end (Chromium against berth)"
  # The metrics spec starts a second server of its own, without Prometheus.
  export BERTH_E2E_BIN=${BERTH_BIN:-$CARGO_TARGET_DIR/debug/berth}
  # Specs named after `e2e` (web/e2e/portal.test.mjs or e2e/portal.test.mjs) run alone.
  local specs=() spec
  for spec in "$@"; do specs+=("$web/e2e/${spec##*/}"); done
  [ ${#specs[@]} -gt 0 ] || specs=("$web"/e2e/*.test.mjs)
  with_server "$dir" bash -c 'cd "$0" && node --test --test-reporter=spec --test-concurrency=1 "${@}"' "$web" "${specs[@]}"
  rm -rf "$dir"
}

case "${1:-}" in
  build) cmd_build ;;
  check) cmd_check ;;
  check-api) cmd_check_api ;;
  update-api) cmd_update_api ;;
  e2e) shift; cmd_e2e "$@" ;;
  *) echo "usage: scripts/web.sh build|check|check-api|update-api|e2e [spec...]" >&2; exit 2 ;;
esac
