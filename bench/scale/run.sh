#!/usr/bin/env bash
# N Environments (default 1000, no apps: bounds, access, no pods) reconciled
# to Ready by one `berth controller` process; then its CPU while nothing
# changes (sampled over IDLE seconds) and its peak RSS (VmHWM).
#
#   bench/scale/run.sh                 N=1000 IDLE=60 PROFILE=dev|release
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}
N=${N:-1000}
IDLE=${IDLE:-60}
PROFILE=${PROFILE:-dev}
flags=()
dir=debug
[[ $PROFILE == release ]] && flags=(--release) && dir=release
cargo build -q "${flags[@]}" -p berth
berth=$CARGO_TARGET_DIR/$dir/berth
kubeconfig=.berth/cluster/kubeconfig
k() { .berth/bin/kubectl --kubeconfig "$kubeconfig" "$@"; }
run=scale-$(date +%s)
selector=berth.dev/bench-run=$run
work=$(mktemp -d)

"$berth" controller --kubeconfig "$kubeconfig" --identity "$run" --lease-name "berth-$run" \
  --selector "$selector" --metrics-listen 127.0.0.1:0 >"$work/controller.log" 2>&1 &
pid=$!
cleanup() {
  k delete environments -l "$selector" --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 600); do
    [[ -z $(k get environments -l "$selector" -o name 2>/dev/null) ]] && break
    sleep 1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  k -n kube-system delete lease "berth-$run" --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for i in $(seq 0 $((N - 1))); do
  printf -- '---\napiVersion: berth.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: s-%s-%d\n  labels: {berth.dev/bench-run: %s}\nspec: {template: small, members: [{email: ada@example.com, role: owner}]}\n' \
    "${run#scale-}" "$i" "$run"
done >"$work/envs.yaml"

start=$(date +%s.%N)
k apply --server-side -f "$work/envs.yaml" >/dev/null
applied=$(date +%s.%N)
while :; do
  ready=$(k get environments -l "$selector" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Ready$' || true)
  [[ $ready -ge $N ]] && break
  sleep 1
done
done_at=$(date +%s.%N)

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$IDLE"
after=$(ticks)
idle_cpu=$(awk -v d=$((after - before)) -v hz="$hz" -v s="$IDLE" 'BEGIN {printf "%.2f", 100 * d / hz / s}')
rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
printf '| environments | kubectl apply of the CRs | created -> all Ready | idle CPU over %ss | peak RSS |\n|---|---|---|---|---|\n' "$IDLE"
printf '| %s | %.1f s | %.1f s | %s%% of a core | %s MiB |\n' "$N" \
  "$(echo "$applied - $start" | bc)" "$(echo "$done_at - $start" | bc)" "$idle_cpu" "$rss"
