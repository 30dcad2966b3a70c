#!/usr/bin/env bash
# `make run`: Berth on its embedded defaults, with admin credentials kept in
# .berth/admin.env (created once, readable only by you) and printed at start.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .berth

creds=.berth/admin.env
if [ -z "${BERTH_ADMIN_PASSWORD:-}" ]; then
  if [ ! -f "$creds" ]; then
    umask 077
    printf 'BERTH_ADMIN_EMAIL=%s\nBERTH_ADMIN_PASSWORD=%s\n' \
      "${BERTH_ADMIN_EMAIL:-admin@berth.local}" "$(openssl rand -base64 18 | tr -d '/+=')" >"$creds"
  fi
  set -a
  . "$creds"
  set +a
fi

listen=${BERTH_LISTEN:-127.0.0.1:8080}
cat <<MSG

  Berth is starting at http://$listen
  Admin login: $BERTH_ADMIN_EMAIL / $BERTH_ADMIN_PASSWORD
  (the password applies when this store is created; it is kept in $creds)

MSG
exec "${CARGO_TARGET_DIR:-target}/release/berth" serve
