#!/usr/bin/env bash
# What tenant-safe PromQL costs (issue 14): in one run, the same query asked
# of Prometheus directly and through Berth's enforcing endpoint
# (GET /api/v1/environments/{name}/metrics/query: token, visibility, parse,
# confine, print, re-check, forward), both with wrk at a few connections so
# that latency, not the 2-core machine's saturation, is measured. Berth must
# add under 1 ms at p99.
# Runs Debian's Prometheus (scripts/prometheus.sh) scraping a release
# `berth serve` on the local cluster, with one Environment made by kubectl
# whose per-environment series are the data.
# The two paths alternate in rounds, so that whatever else the machine does
# falls on both alike.
# Usage: bench/promql/run.sh [seconds per round] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-15}
connections=${2:-4}
rounds=${3:-1}
. bench/lib.sh
bin=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth
scripts/localcluster.sh up >/dev/null
kubectl=.berth/bin/kubectl
export KUBECONFIG=$PWD/.berth/cluster/kubeconfig
env=bench-promql-$(date +%s)

work=$(mktemp -d /tmp/berth-bench-promql.XXXXXX)
# Prometheus scrapes Berth as in production (its default, 15 s), not every
# second as the tests do: each scrape of Berth's /metrics walks the managed
# namespaces, which on two cores shows in the tail of both paths.
scrape=${PROMETHEUS_SCRAPE_INTERVAL:-15s}
prometheus=$(PROMETHEUS_SCRAPE_INTERVAL=$scrape scripts/prometheus.sh start "$work/prometheus")
port=$(free_port)
base=http://127.0.0.1:$port
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$kubectl" delete environments.berth.dev "$env" --wait=false >/dev/null 2>&1 || true
  scripts/prometheus.sh stop "$work/prometheus"
  rm -rf "$work"
}
BERTH_LISTEN=127.0.0.1:$port BERTH_DATABASE_URL="sqlite://$work/berth.db" \
  BERTH_ADMIN_EMAIL=bench@example.com BERTH_ADMIN_PASSWORD=bench-admin-password \
  BERTH_PROMETHEUS_URL=$prometheus RUST_LOG=warn "$bin" serve --no-controller >"$work/server.log" 2>&1 &
pid=$!
trap cleanup EXIT
wait_healthy "$base"
printf '[{"targets": ["127.0.0.1:%s"], "labels": {"job": "berth"}}]\n' "$port" >"$work/prometheus/targets/berth.json"

for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
"$kubectl" apply --server-side -f - >/dev/null <<YAML
apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: $env
  annotations: {berth.dev/created-by: bench@example.com}
spec:
  template: small
  members: [{email: bench@example.com, role: owner}]
YAML
token=$(api_token "$base" bench@example.com bench-admin-password "$work")

# A chart's query; Prometheus directly gets it already confined, so both do the same work.
query='sum by (phase) (berth_environment_phase)'
confined="sum by (phase) (berth_environment_phase{namespace=\"$env\"})"
encode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
direct="$prometheus/api/v1/query?query=$(encode "$confined")"
through="$base/api/v1/environments/$env/metrics/query?query=$(encode "$query")"
for _ in $(seq 450); do
  curl -sf -H "authorization: Bearer $token" "$through" | grep -q '"phase"' && break
  sleep 0.2
done
curl -sf -H "authorization: Bearer $token" "$through" | grep -q '"phase"' ||
  { echo "Prometheus has no series of $env after 90 s (scrape interval $scrape)" >&2; exit 1; }
[ "$(curl -sf "$direct" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"])')" = \
  "$(curl -sf -H "authorization: Bearer $token" "$through" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"])')" ] ||
  echo "note: the two answers differ (a scrape between them)"

# One request at a time, the paths alternating request by request over
# kept-alive connections (one curl): latency without queueing, which is
# what a person loading a chart sees. wrk's rounds below load the machine.
sequential=${SEQUENTIAL:-3000}
python3 - "$direct" "$through" "$sequential" >"$work/curl.cfg" <<'PY'
import sys
direct, through, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    print(f'url = "{direct}"\noutput = /dev/null')
    print(f'url = "{through}"\noutput = /dev/null')
PY
curl -s -H "authorization: Bearer $token" -K "$work/curl.cfg" -w '%{time_total}\n' >"$work/sequential.txt"
python3 - "$work/sequential.txt" <<'PY'
import sys
times = [float(t) * 1000 for t in open(sys.argv[1]).read().split()]
paths = {"Prometheus /api/v1/query directly": times[0::2], "Berth .../metrics/query (enforcing)": times[1::2]}
print(f"\none request at a time, alternating, {len(times) // 2} each:")
for label, ts in paths.items():
    ts.sort()
    pick = lambda q: ts[min(len(ts) - 1, int(q * len(ts)))]
    print(f"{label:<48} p50 {pick(0.5):6.3f} ms   p90 {pick(0.9):6.3f} ms   p99 {pick(0.99):6.3f} ms")
d, b = sorted(times[0::2]), sorted(times[1::2])
q = lambda ts, p: ts[min(len(ts) - 1, int(p * len(ts)))]
print(f"{'Berth adds':<48} p50 {q(b, .5) - q(d, .5):6.3f} ms   p90 {q(b, .9) - q(d, .9):6.3f} ms   p99 {q(b, .99) - q(d, .99):6.3f} ms")
PY

echo
echo "query: $query ($connections connections, $rounds rounds of ${duration}s per path, alternating; scrape interval $scrape)"
for round in $(seq "$rounds"); do
  wrk -t1 -c"$connections" -d"${duration}s" --latency "$direct" >"$work/direct.txt"
  wrk -t1 -c"$connections" -d"${duration}s" --latency -H "authorization: Bearer $token" "$through" >"$work/through.txt"
  summary "round $round: Prometheus /api/v1/query directly" "$work/direct.txt"
  summary "round $round: Berth .../metrics/query (enforcing)" "$work/through.txt"
done
