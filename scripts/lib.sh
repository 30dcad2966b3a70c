# Shell helpers shared by scripts/ and bench/: source it, do not run it.

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_healthy BASE_URL: until /healthz answers, 10 s at most.
wait_healthy() {
  for _ in $(seq 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "the server at $1 did not become healthy" >&2
  return 1
}

# api_token BASE_URL EMAIL PASSWORD WORKDIR [NAME]: logs in as the web UI
# does (session cookie, CSRF header) and prints a new personal access token.
api_token() {
  local base=$1 email=$2 password=$3 jar=$4/jar name=${5:-script} csrf session
  curl -sSf -c "$jar" -o /dev/null -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/api/v1/auth/login"
  csrf=$(awk '/berth_csrf/ {print $7}' "$jar")
  session=$(awk '/berth_session/ {print $7}' "$jar")
  curl -sSf -H 'content-type: application/json' -H "x-csrf-token: $csrf" \
    -H "cookie: berth_session=$session; berth_csrf=$csrf" -d "{\"name\":\"$name\"}" "$base/api/v1/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
