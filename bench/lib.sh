# Shared by the HTTP load benchmarks: source it, do not run it.

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_healthy BASE_URL: until /healthz answers, 10 s at most.
wait_healthy() {
  for _ in $(seq 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "the server at $1 did not become healthy" >&2
  return 1
}

# api_token BASE_URL EMAIL PASSWORD WORKDIR: logs in and prints a new API token.
api_token() {
  local base=$1 email=$2 password=$3 jar=$4/jar csrf session
  curl -sf -c "$jar" -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/v1/auth/login"
  csrf=$(awk '/berth_csrf/ {print $7}' "$jar")
  session=$(awk '/berth_session/ {print $7}' "$jar")
  curl -sf -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
    -H "cookie: berth_session=$session; berth_csrf=$csrf" -d '{"name":"bench"}' "$base/api/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# summary LABEL WRK_OUTPUT_FILE: one line of req/s, p50, p99 and failures.
summary() {
  awk -v label="$1" '
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$NF}
    END {printf "%-48s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", label, rps, p50, p99, (bad == "" ? 0 : bad)}' "$2"
}
