#!/usr/bin/env bash
# Load benchmark of accounts (issue 3): GET /api/v1/me with a bearer token,
# and login at 16 concurrent clients while /me keeps being served.
# Targets on a 2-core machine: /me >= 20,000 req/s with p99 < 5 ms;
# login p99 < 1 s at 16 clients while /me keeps p99 < 20 ms.
# Usage: bench/accounts.sh [seconds]   (builds the release binary if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
. bench/lib.sh
bin=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}/release/berth
[ -x "$bin" ] || cargo build --release --locked -p berth

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
port=$(free_port)
base=http://127.0.0.1:$port
BERTH_LISTEN=127.0.0.1:$port BERTH_DATABASE_URL="sqlite://$work/berth.db" KUBECONFIG=$work/none \
  BERTH_ADMIN_PASSWORD=bench-admin-password "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
wait_healthy "$base"

password="bench password 123"
curl -sf -o /dev/null -H 'content-type: application/json' \
  -d "{\"email\":\"bench@example.com\",\"password\":\"$password\"}" "$base/api/v1/auth/register"
token=$(api_token "$base" bench@example.com "$password" "$work")

cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"$password"}'
LUA

echo "warming up"
wrk -t2 -c32 -d3s -H "authorization: Bearer $token" "$base/api/v1/me" >/dev/null

for connections in 32 64; do
  echo "GET /api/v1/me alone (${duration}s, $connections connections)"
  wrk -t2 -c$connections -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/me" \
    >"$work/me-$connections.txt"
done

echo "login at 16 clients, with GET /api/v1/me at 16 connections beside it (${duration}s)"
wrk -t1 -c16 -d"${duration}s" --latency -s "$work/login.lua" "$base/api/v1/auth/login" >"$work/login.txt" &
logins=$!
wrk -t1 -c16 -d"${duration}s" --latency -H "authorization: Bearer $token" "$base/api/v1/me" >"$work/me-under-login.txt"
wait "$logins"

echo
summary "GET /api/v1/me (32 connections)" "$work/me-32.txt"
summary "GET /api/v1/me (64 connections)" "$work/me-64.txt"
summary "POST /api/v1/auth/login (16 clients)" "$work/login.txt"
summary "GET /api/v1/me during logins" "$work/me-under-login.txt"
