#!/usr/bin/env bash
# A real OpenID provider (tools/oidc-provider: the zitadel/oidc example
# provider with clients and users from tools/oidc-provider/testing.json) for
# `make run` and for tests.
#
#   oidc.sh build               compile it (cached under $BERTH_CACHE/oidc-provider/<key>/)
#   oidc.sh start DIR [PORT]    start one on PORT (a free loopback port without one), print its issuer URL
#   oidc.sh status DIR          print its issuer URL while it runs, else exit 1
#   oidc.sh stop DIR            stop it and remove DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/.." && pwd -P)
BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
export PATH="/usr/local/go/bin:$PATH"

usage() { echo "usage: oidc.sh build | start DIR [PORT] | status DIR | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] || usage
[ "$cmd" = build ] || [ -n "$dir" ] || usage

# Keyed by everything that decides the binary, so an unchanged tree never rebuilds.
source_key() {
  {
    go version
    sha256sum "$root/scripts/oidc.sh"
    cd "$root/tools/oidc-provider"
    sha256sum go.mod go.sum ./*.go
  } | sha256sum | cut -c1-16
}

# Prints the cached binary's path, building it first when missing.
build() {
  command -v go >/dev/null || { echo "oidc: the go command is missing (expected in /usr/local/go/bin)" >&2; exit 1; }
  local out tmp
  out="$BERTH_CACHE/oidc-provider/$(source_key)/berth-oidc-provider"
  if [[ ! -x $out ]]; then
    echo "oidc: building the OpenID provider (about a minute cold)" >&2
    mkdir -p "$(dirname "$out")"
    # Beside the final name, then renamed: a concurrent or interrupted build
    # never leaves a truncated binary at the cached path.
    tmp="$out.tmp.$$"
    (cd "$root/tools/oidc-provider" && go build -trimpath -o "$tmp" .) >&2
    mv -f "$tmp" "$out"
  fi
  echo "$out"
}

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "$cmd" in
  build) build >/dev/null ;;
  start)
    if running; then cat "$dir/url"; exit 0; fi
    binary=$(build)
    port=${3:-$(free_port)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    url="http://127.0.0.1:$port"
    # Its own process group, so that a test run's end (or Ctrl-C) does not take it down half-way.
    setsid "$binary" -config "$root/tools/oidc-provider/testing.json" -listen "127.0.0.1:$port" \
      -issuer "$url" >"$dir/provider.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 100); do
      if curl -sf "$url/.well-known/openid-configuration" >/dev/null; then echo "$url" >"$dir/url"; echo "$url"; exit 0; fi
      running || break
      sleep 0.1
    done
    echo "the OpenID provider did not answer at $url; its log:" >&2
    cat "$dir/provider.log" >&2
    exit 1
    ;;
  status)
    running && cat "$dir/url" || { echo "no OpenID provider runs in $dir" >&2; exit 1; }
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
