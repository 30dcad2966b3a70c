#!/usr/bin/env bash
# What sending to Splunk HEC costs (issue 15), in one run on release builds:
#   1. request latency of an audited write (POST /api/v1/tokens, one audit
#      entry each) with Splunk off (no BERTH_SPLUNK_HEC_URL);
#   2. the same with Splunk configured but down: requests only queue;
#   3. the collector comes back: how fast the outbox drains (events/s, from
#      Berth's own /metrics: events sent until the depth is 0);
#   4. the same load with Splunk up, the drainer sending as it goes.
# The collector is berth-testkit's HEC (gzip, token, indexer acknowledgement
# checked as Splunk documents them), as a process.
# Usage: bench/hec/run.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-10}
connections=${2:-8}
. bench/lib.sh
target=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release
# One invocation, so that both share one set of dependency features.
cargo build --release --locked -p berth --bin berth -p berth-testkit --example hec-receiver
token=bench-hec-token

work=$(mktemp -d /tmp/berth-bench-hec.XXXXXX)
hec_port=$(free_port)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# serve NAME [HEC_URL]: a release berth on its own SQLite store, at $base.
serve() {
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name"
  env BERTH_LISTEN=127.0.0.1:$port BERTH_KUBE_LISTEN=127.0.0.1:0 \
    BERTH_DATABASE_URL="sqlite://$work/$name/berth.db" \
    BERTH_ADMIN_EMAIL=bench@example.com BERTH_ADMIN_PASSWORD=bench-admin-password \
    ${2:+BERTH_SPLUNK_HEC_URL=$2 BERTH_SPLUNK_HEC_TOKEN=$token} \
    RUST_LOG=error "$target/berth" serve --no-controller >"$work/$name/server.log" 2>&1 &
  pids+=($!)
  base=http://127.0.0.1:$port
  wait_healthy "$base"
}

# load BASE TOKEN OUT: audited writes for $duration seconds.
load() {
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s bench/hec/post-token.lua \
    -H "authorization: Bearer $2" "$1/api/v1/tokens" >"$3"
}

# metric BASE NAME: a series' value on /metrics.
metric() {
  curl -sf "$1/metrics" | awk -v name="$2" '$1 == name {print $2}'
}

serve off
off=$base
off_token=$(api_token "$off" bench@example.com bench-admin-password "$work/off")
load "$off" "$off_token" "$work/off.txt"
kill "${pids[-1]}"

serve on "http://127.0.0.1:$hec_port"
on=$base
on_token=$(api_token "$on" bench@example.com bench-admin-password "$work/on")
load "$on" "$on_token" "$work/down.txt"

# The depth on /metrics is refreshed twice a second: wait until it settles.
queued=-1
while [ "$queued" != "$(metric "$on" berth_splunk_outbox_depth)" ]; do
  queued=$(metric "$on" berth_splunk_outbox_depth)
  sleep 0.6
done

"$target/examples/hec-receiver" "127.0.0.1:$hec_port" "$token" >"$work/hec.txt" &
pids+=($!)
hec_pid=$!
# Timed from the first batch in (the drainer may be in its backoff of up to
# 10 s when the collector returns) to the last, by the sent counter.
first="" first_sent=0
for _ in $(seq 2400); do
  sent=$(metric "$on" berth_splunk_events_sent_total)
  if [ -z "$first" ] && [ "$sent" -gt 0 ]; then first=$(date +%s.%N) first_sent=$sent; fi
  [ "$sent" -ge "$queued" ] && break
  sleep 0.02
done
last=$(date +%s.%N)
[ "$sent" -ge "$queued" ] || { echo "the outbox did not drain: $sent of $queued sent" >&2; exit 1; }
load "$on" "$on_token" "$work/up.txt"
for _ in $(seq 600); do
  [ "$(metric "$on" berth_splunk_outbox_depth)" = 0 ] && break
  sleep 0.1
done
total=$(metric "$on" berth_splunk_events_sent_total)
failures=$(metric "$on" berth_splunk_send_failures_total)
kill "$hec_pid"
wait "$hec_pid" || true

echo
echo "POST /api/v1/tokens (one audit entry each), $connections connections, ${duration}s per run"
summary "Splunk off" "$work/off.txt"
summary "Splunk configured, down (queueing)" "$work/down.txt"
summary "Splunk up, drainer sending beside" "$work/up.txt"
python3 - "$queued" "$first_sent" "$first" "$last" <<'PY'
import sys
queued, first_sent = int(sys.argv[1]), int(sys.argv[2])
first, last = float(sys.argv[3]), float(sys.argv[4])
seconds = max(last - first, 0.001)
print(f"delivery from the outbox: a backlog of {queued} events, the last {queued - first_sent} "
      f"in {seconds:.2f} s after the first batch: {(queued - first_sent) / seconds:,.0f} events/s "
      f"(batches of 500, gzip, indexer acknowledgement)")
PY
echo "events sent $total in all, failed requests $failures (while down); collector: $(tail -n 1 "$work/hec.txt")"
