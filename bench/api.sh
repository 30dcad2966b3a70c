#!/usr/bin/env bash
# Load benchmark of the Environment API (issue 7): with N environments (default
# 1,000) in the cluster, GET /api/v1/environments?all=true as an admin and
# GET /api/v1/environments/{name}, each at 100 concurrent clients. Both are
# served from the watch cache; goal p99 < 25 ms on this 2-core machine.
# Runs `berth serve --no-controller` (release) against the local cluster; the
# environments are created with kubectl and removed afterwards.
# Usage: bench/api.sh [count] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
duration=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth
scripts/localcluster.sh up >/dev/null
kubectl=.berth/bin/kubectl
export KUBECONFIG=$PWD/.berth/cluster/kubeconfig
run=bench-$(date +%s)

work=$(mktemp -d /tmp/berth-bench-api.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

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

admin_token() {
  curl -sf -c "$work/jar" -o /dev/null -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-admin-password"}' "$base/api/v1/auth/login"
  local csrf session
  csrf=$(awk '/berth_csrf/ {print $7}' "$work/jar")
  session=$(awk '/berth_session/ {print $7}' "$work/jar")
  curl -sf -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
    -H "cookie: berth_session=$session; berth_csrf=$csrf" -d '{"name":"bench"}' "$base/api/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
token=$(admin_token)
for _ in $(seq 300); do
  seen=$(curl -sf -H "authorization: Bearer $token" "$base/api/v1/environments?all=true" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$seen" -ge "$count" ] && break
  sleep 0.2
done
echo "the cache holds $seen environments"

summary() {
  awk -v label="$1" '
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$NF}
    END {printf "%-44s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", label, rps, p50, p99, (bad == "" ? 0 : bad)}' "$2"
}
wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/environments?all=true" >"$work/list.txt"
wrk -t2 -c100 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/environments/$run-7" >"$work/get.txt"
echo
summary "GET /api/v1/environments?all=true ($count)" "$work/list.txt"
summary "GET /api/v1/environments/{name}" "$work/get.txt"
