#!/usr/bin/env bash
# Load benchmark of the Environment API (issue 7): with N environments (default
# 1,000) in the cluster, GET /api/v1/environments?all=true as an admin and
# GET /api/v1/environments/{name}, each at 100 concurrent clients, the list
# also as browsers ask for it (gzip). Both are served from the watch cache;
# goal p99 < 25 ms on this 2-core machine.
# Runs `berth serve --no-controller` (release) against the local cluster; the
# environments are created with kubectl and removed afterwards.
# Usage: bench/api.sh [count] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
duration=${2:-10}
. bench/lib.sh
bin=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth
scripts/localcluster.sh up >/dev/null
kubectl=.berth/bin/kubectl
export KUBECONFIG=$PWD/.berth/cluster/kubeconfig
run=bench-$(date +%s)

work=$(mktemp -d /tmp/berth-bench-api.XXXXXX)
port=$(free_port)
base=http://127.0.0.1:$port
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$kubectl" delete environments.berth.dev -l "berth.dev/bench=$run" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
BERTH_LISTEN=127.0.0.1:$port BERTH_DATABASE_URL="sqlite://$work/berth.db" \
  BERTH_ADMIN_EMAIL=bench@example.com BERTH_ADMIN_PASSWORD=bench-admin-password \
  RUST_LOG=warn "$bin" serve --no-controller >"$work/server.log" 2>&1 &
pid=$!
trap cleanup EXIT
wait_healthy "$base"

echo "creating $count environments"
python3 - "$count" "$run" >"$work/envs.yaml" <<'PY'
import sys
count, run = int(sys.argv[1]), sys.argv[2]
for i in range(count):
    print(f"""---
apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: {run}-{i}
  labels: {{berth.dev/bench: "{run}"}}
  annotations: {{berth.dev/created-by: bench@example.com}}
spec:
  template: small
  members: [{{email: bench@example.com, role: owner}}]""")
PY
# The API installs the CRD when it connects; wait for it before applying.
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
"$kubectl" apply --server-side -f "$work/envs.yaml" >/dev/null

token=$(api_token "$base" bench@example.com bench-admin-password "$work")
for _ in $(seq 300); do
  seen=$(curl -sf -H "authorization: Bearer $token" "$base/api/v1/environments?all=true" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$seen" -ge "$count" ] && break
  sleep 0.2
done
echo "the cache holds $seen environments; a list answer is $(curl -sf -H "authorization: Bearer $token" "$base/api/v1/environments?all=true" | wc -c) bytes, \
$(curl -sf -H "authorization: Bearer $token" -H 'accept-encoding: gzip' "$base/api/v1/environments?all=true" | wc -c) gzip-compressed"

wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/environments?all=true" >"$work/list.txt"
wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" -H "accept-encoding: gzip" \
  "$base/api/v1/environments?all=true" >"$work/list-gzip.txt"
wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" \
  "$base/api/v1/environments?all=true&limit=100" >"$work/list-page.txt"
wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/environments/$run-7" >"$work/get.txt"
echo
summary "GET /api/v1/environments?all=true ($count)" "$work/list.txt"
summary "  the same, accept-encoding: gzip" "$work/list-gzip.txt"
summary "  its first page, limit=100" "$work/list-page.txt"
summary "GET /api/v1/environments/{name}" "$work/get.txt"
