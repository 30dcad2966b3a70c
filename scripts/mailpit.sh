#!/usr/bin/env bash
# Mailpit: a real SMTP server with a web inbox and an HTTP API, for `make run`
# and for tests. Built from the Go module proxy once per version, into
# $BERTH_CACHE/mailpit/<version>/ (reused while present).
#
#   mailpit.sh install             builds it if missing and prints the binary's path
#   mailpit.sh start DIR [SMTP_PORT HTTP_PORT]
#                                  starts one in DIR (free loopback ports without
#                                  them) and prints two lines: its SMTP URL
#                                  (smtp://127.0.0.1:PORT) and its inbox/API URL
#   mailpit.sh status DIR          prints the same while it runs, else exits 1
#   mailpit.sh stop DIR            stops it and removes DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MAILPIT_VERSION=v1.33.1
cache=${BERTH_CACHE:-$HOME/.cache/berth}/mailpit/$MAILPIT_VERSION
bin=$cache/bin/mailpit

usage() { echo "usage: mailpit.sh install | start DIR [SMTP_PORT HTTP_PORT] | status DIR | stop DIR" >&2; exit 2; }
cmd=${1:-}
[ -n "$cmd" ] || usage

install() {
  [ -x "$bin" ] && return 0
  export PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || { echo "mailpit: the go command is missing (expected in /usr/local/go/bin)" >&2; exit 1; }
  echo "mailpit: building github.com/axllent/mailpit@$MAILPIT_VERSION (once)" >&2
  mkdir -p "$cache"
  # A private GOPATH bin: the build lands here, or not at all.
  GOFLAGS=-mod=mod GOBIN="$cache/bin.tmp" go install "github.com/axllent/mailpit@$MAILPIT_VERSION" >&2
  mv "$cache/bin.tmp" "$cache/bin"
}

if [ "$cmd" = install ]; then install; echo "$bin"; exit 0; fi
dir=${2:-}
[ -n "$dir" ] || usage
running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "$cmd" in
  start)
    if running; then cat "$dir/urls"; exit 0; fi
    install
    smtp_port=${3:-$(free_port)}
    http_port=${4:-$(free_port)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    http_url="http://127.0.0.1:$http_port"
    # Its own process group, so that a test run's end (or Ctrl-C) does not take it down half-way.
    # Local catcher: any sender and credentials are accepted, nothing is relayed.
    setsid "$bin" --smtp "127.0.0.1:$smtp_port" --listen "127.0.0.1:$http_port" \
      --database "$dir/mailpit.db" --smtp-auth-accept-any --smtp-auth-allow-insecure \
      --max 5000 >"$dir/mailpit.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 150); do
      if curl -sf "$http_url/livez" >/dev/null; then
        printf 'smtp://127.0.0.1:%s\n%s\n' "$smtp_port" "$http_url" >"$dir/urls"
        cat "$dir/urls"
        exit 0
      fi
      running || break
      sleep 0.1
    done
    echo "Mailpit did not become ready at $http_url; its log:" >&2
    cat "$dir/mailpit.log" >&2
    exit 1
    ;;
  status)
    running && cat "$dir/urls" || { echo "Mailpit is not running in $dir" >&2; exit 1; }
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
