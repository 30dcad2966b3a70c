#!/usr/bin/env bash
# Load benchmark of accounts (issue 3): GET /api/v1/me with a bearer token,
# and login at 16 concurrent clients while /me keeps being served.
# Targets on a 2-core machine: /me >= 20,000 req/s with p99 < 5 ms;
# login p99 < 1 s at 16 clients while /me keeps p99 < 20 ms.
# Usage: bench/accounts.sh [seconds]   (builds the release binary if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=${CARGO_TARGET_DIR:-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
BERTH_LISTEN=127.0.0.1:$port BERTH_DATABASE_URL="sqlite://$work/berth.db" KUBECONFIG=$work/none \
  BERTH_ADMIN_PASSWORD=bench-admin-password "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

password="bench password 123"
curl -sf -o /dev/null -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" "$base/api/v1/auth/register"
curl -sf -c "$work/jar" -o /dev/null -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" "$base/api/v1/auth/login"
csrf=$(awk '/berth_csrf/ {print $7}' "$work/jar")
session=$(awk '/berth_session/ {print $7}' "$work/jar")
token=$(curl -sf -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
  -H "cookie: berth_session=$session; berth_csrf=$csrf" -d '{"name":"bench"}' "$base/api/v1/tokens" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"$password"}'
LUA

summary() { # label, wrk output file
  awk -v label="$1" '
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2}
    /Non-2xx/ {bad=$NF}
    END {printf "%-34s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", label, rps, p50, p99, (bad == "" ? 0 : bad)}' "$2"
}

echo "warming up"
wrk -t2 -c32 -d3s -H "authorization: Bearer $token" "$base/api/v1/me" >/dev/null

echo "GET /api/v1/me alone (${duration}s, 64 connections)"
wrk -t2 -c64 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/me" >"$work/me.txt"

echo "login at 16 clients, with GET /api/v1/me at 16 connections beside it (${duration}s)"
wrk -t1 -c16 -d"${duration}s" --latency -s "$work/login.lua" "$base/api/v1/auth/login" >"$work/login.txt" &
logins=$!
wrk -t1 -c16 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/me" >"$work/me-under-login.txt"
wait "$logins"

echo
summary "GET /api/v1/me" "$work/me.txt"
summary "POST /api/v1/auth/login (16 clients)" "$work/login.txt"
summary "GET /api/v1/me during logins" "$work/me-under-login.txt"
