#!/usr/bin/env bash
# Mixed load (issue 17): 60 s of logins, lists, gets, creates, deletes and
# previews at a fixed rate (bench/load/load.py: about 37 requests/s, latency
# counted from each request's scheduled start) against `berth serve`
# (release, controller included) on the local cluster, with PostgreSQL when
# BERTH_DATABASE_URL names one, else SQLite. Reports p50/p99 per route and
# fails on any error. Results: bench/load/RESULTS.md.
# Usage: bench/load/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
. bench/lib.sh
bin=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth
scripts/localcluster.sh up >/dev/null
kubectl=.berth/bin/kubectl
export KUBECONFIG=$PWD/.berth/cluster/kubeconfig

work=$(mktemp -d /tmp/berth-bench-load.XXXXXX)
# Names of this run's environments carry it, so that cleanup takes only those.
run=$(printf '%04x%04x' $RANDOM $RANDOM)
port=$(free_port)
base=http://127.0.0.1:$port
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Whatever the run left (its own environments only, by their prefix).
  "$kubectl" get environments.berth.dev -o name 2>/dev/null | grep -E "/(load|lm)-$run-" |
    xargs -r "$kubectl" delete --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
BERTH_LISTEN=127.0.0.1:$port BERTH_KUBE_LISTEN=127.0.0.1:$(free_port) \
  BERTH_DATABASE_URL="${BERTH_DATABASE_URL:-sqlite://$work/berth.db}" \
  BERTH_ADMIN_EMAIL=bench@example.com BERTH_ADMIN_PASSWORD=bench-admin-password \
  RUST_LOG=warn "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
trap cleanup EXIT
wait_healthy "$base"

admin=$(api_token "$base" bench@example.com bench-admin-password "$work")
auth=(-H "authorization: Bearer $admin" -H 'content-type: application/json')
# Room for the run's environments under the admin's name.
curl -sSf "${auth[@]}" "$base/api/v1/admin/policy" |
  python3 -c 'import json, sys; p = json.load(sys.stdin); p["maxEnvironmentsPerUser"] = 1000; p["approval"] = "never"; print(json.dumps(p))' |
  curl -sSf -o /dev/null -X PUT "${auth[@]}" -d @- "$base/api/v1/admin/policy"

# Eight members, each with a token and an environment of their own to read.
echo "[" >"$work/users.json"
for i in $(seq 8); do
  email=load-member-$i@example.com password="load member password $i"
  curl -sSf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/v1/auth/register"
  token=$(mkdir -p "$work/$i" && api_token "$base" "$email" "$password" "$work/$i")
  name=lm-$run-$i
  curl -sSf -o /dev/null -X POST -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"$name\",\"template\":\"small\",\"ttl\":\"1h\"}" "$base/api/v1/environments"
  [ "$i" = 1 ] || echo "," >>"$work/users.json"
  printf '["%s", "%s", "%s", "%s"]\n' "$email" "$password" "$token" "$name" >>"$work/users.json"
done
echo "]" >>"$work/users.json"

echo "load: $seconds s against $base (release, controller on); machine load before: $(cut -d' ' -f1-3 /proc/loadavg)"
BENCH_RUN=$run python3 bench/load/load.py "$base" "$admin" "$work/users.json" "$seconds"
echo "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"
