#!/usr/bin/env bash
# A Prometheus (Debian's package) for `make run` and for tests.
#
#   prometheus.sh start DIR [PORT]  configures one in DIR (data, configuration and a
#                                   file_sd directory DIR/targets), starts it on PORT
#                                   (a free loopback port without one) and prints its URL
#   prometheus.sh status DIR        prints its URL while it runs, else exits 1
#   prometheus.sh stop DIR          stops it and removes DIR
#
# It scrapes every target listed in DIR/targets/*.json (Prometheus re-reads them
# within a second: Berth, or a test's own exporter), honouring their labels, and,
# with a kubeconfig (PROMETHEUS_KUBECONFIG, else the local cluster's), every node's
# kubelet (/metrics/cadvisor and /metrics/resource), listed once at start in
# DIR/kubelets/nodes.json. PROMETHEUS_SCRAPE_INTERVAL
# (default 2s) sets how often, and how often it evaluates Berth's alerting rules
# (deploy/prometheus/*.yml). Remote write is accepted at /api/v1/write.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: prometheus.sh start DIR [PORT] | status DIR | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage

# Absolute, so that the configuration holds wherever Prometheus runs from.
rules_dir=$(cd "$(dirname "$0")/../deploy/prometheus" && pwd -P)

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

# A field of the current context's user in a kubeconfig, empty when it has none.
user_field() {
  "$kubectl" --kubeconfig "$1" config view --raw --minify -o "jsonpath={.users[0].user.$2}" 2>/dev/null || true
}

write_config() {
  local interval=$1 kubeconfig=$2
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: $interval
  evaluation_interval: $interval
YAML
  # Berth's alerting rules (deploy/prometheus/*.yml; *.test.yml are promtool's
  # unit tests of them, not rules).
  echo "rule_files:" >>"$dir/prometheus.yml"
  local rules
  for rules in "$rules_dir"/*.yml; do
    case $rules in *.test.yml) continue ;; esac
    echo "  - \"$rules\"" >>"$dir/prometheus.yml"
  done
  cat >>"$dir/prometheus.yml" <<YAML
scrape_configs:
  # Berth and anything else a target file names. Their labels are kept as
  # exported: Berth's per-environment series carry their own namespace.
  - job_name: berth
    honor_labels: true
    file_sd_configs:
      - files: ["$dir/targets/*.json"]
        refresh_interval: 1s
YAML
  # Kubelets authenticate their callers (a client certificate of the cluster
  # CA, or a bearer token) and authorize them for nodes/metrics, so
  # Prometheus presents the kubeconfig's credentials, copied beside its
  # configuration.
  local client_auth="" cert key token
  if [ -n "$kubeconfig" ]; then
    cert=$(user_field "$kubeconfig" client-certificate-data)
    key=$(user_field "$kubeconfig" client-key-data)
    token=$(user_field "$kubeconfig" token)
    if [ -n "$cert" ] && [ -n "$key" ]; then
      (umask 077 && base64 -d <<<"$cert" >"$dir/kubelet-client.crt" && base64 -d <<<"$key" >"$dir/kubelet-client.key")
      client_auth="      cert_file: $dir/kubelet-client.crt
      key_file: $dir/kubelet-client.key"
    elif [ -n "$token" ]; then
      (umask 077 && printf '%s' "$token" >"$dir/kubelet-client.token")
      client_auth="    authorization:
      credentials_file: $dir/kubelet-client.token"
    fi
  fi
  local path
  for path in cadvisor resource; do
    cat >>"$dir/prometheus.yml" <<YAML
  # The kubelets listed in DIR/kubelets/*.json (Debian's Prometheus is built
  # without Kubernetes discovery). The local cluster's fake nodes serve
  # self-signed certificates on the address they advertise.
  - job_name: kubelet-$path
    scheme: https
    metrics_path: /metrics/$path
    tls_config:
      insecure_skip_verify: true
$client_auth
    file_sd_configs:
      - files: ["$dir/kubelets/*.json"]
        refresh_interval: 5s
YAML
  done
  [ -n "$kubeconfig" ] || return 0
  # Each node's kubelet address, as the node advertises it, labelled with its name.
  "$kubectl" --kubeconfig "$kubeconfig" get nodes -o json 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["items"]
targets = []
for n in nodes:
    ips = [a["address"] for a in n["status"].get("addresses", []) if a["type"] == "InternalIP"]
    port = n["status"].get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port", 10250)
    if ips:
        targets.append({"targets": [f"{ips[0]}:{port}"], "labels": {"node": n["metadata"]["name"]}})
json.dump(targets, sys.stdout)
' >"$dir/kubelets/nodes.json.tmp" && mv "$dir/kubelets/nodes.json.tmp" "$dir/kubelets/nodes.json" \
    || echo "prometheus: could not list the cluster's nodes; kubelets are not scraped" >&2
}

case "$cmd" in
  start)
    command -v prometheus >/dev/null || { echo "prometheus is not installed: run scripts/deps.sh" >&2; exit 1; }
    if running; then cat "$dir/url"; exit 0; fi
    port=${3:-$(free_port)}
    mkdir -p "$dir/targets" "$dir/kubelets" "$dir/data"
    dir=$(cd "$dir" && pwd)
    kubeconfig=${PROMETHEUS_KUBECONFIG:-}
    if [ -z "$kubeconfig" ] && [ -f .berth/cluster/kubeconfig ]; then kubeconfig=$PWD/.berth/cluster/kubeconfig; fi
    kubectl=$(command -v kubectl || echo .berth/bin/kubectl)
    write_config "${PROMETHEUS_SCRAPE_INTERVAL:-2s}" "$kubeconfig"
    promtool check config "$dir/prometheus.yml" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
    url="http://127.0.0.1:$port"
    # Its own process group, so that a test run's end (or Ctrl-C) does not take it down half-way.
    setsid prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
      --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
      --storage.tsdb.retention.time=2d --log.level=warn >"$dir/prometheus.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 150); do
      if curl -sf "$url/-/ready" >/dev/null; then echo "$url" >"$dir/url"; echo "$url"; exit 0; fi
      running || break
      sleep 0.1
    done
    echo "Prometheus did not become ready at $url; its log:" >&2
    cat "$dir/prometheus.log" >&2
    exit 1
    ;;
  status)
    running && cat "$dir/url" || { echo "Prometheus is not running in $dir" >&2; exit 1; }
    ;;
  stop)
    if running; then
      pid=$(cat "$dir/pid")
      kill "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
