#!/usr/bin/env bash
# `make run`: Berth on its embedded defaults, with admin credentials kept in
# .berth/admin.env (created once, readable only by you) and printed at start.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only you may read what Berth keeps here (the admin's password, the database).
mkdir -p .berth
chmod 700 .berth

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

# Prometheus, kept running between runs (scripts/prometheus.sh stop .berth/prometheus
# ends it), scraping this Berth and the cluster's kubelets; 9090 when that is free.
if [ -z "${BERTH_PROMETHEUS_URL:-}" ]; then
  prom_port=9090
  curl -s -o /dev/null "http://127.0.0.1:$prom_port" && prom_port=
  BERTH_PROMETHEUS_URL=$(scripts/prometheus.sh status .berth/prometheus 2>/dev/null \
    || scripts/prometheus.sh start .berth/prometheus $prom_port)
  export BERTH_PROMETHEUS_URL
  printf '[{"targets": ["%s"], "labels": {"job": "berth"}}]\n' "${listen/0.0.0.0/127.0.0.1}" \
    >.berth/prometheus/targets/berth.json
fi

# Mailpit, kept running between runs (scripts/mailpit.sh stop .berth/mailpit
# ends it): verification and reset links land in its web inbox.
if [ -z "${BERTH_SMTP_URL:-}" ]; then
  { read -r BERTH_SMTP_URL; read -r mail_inbox; } < <(scripts/mailpit.sh status .berth/mailpit 2>/dev/null \
    || scripts/mailpit.sh start .berth/mailpit)
  export BERTH_SMTP_URL
  export BERTH_PUBLIC_URL=${BERTH_PUBLIC_URL:-http://$listen}
fi

cat <<MSG

  Berth is starting at http://$listen
  Kubeconfigs reach environments at https://${BERTH_KUBE_LISTEN:-127.0.0.1:8443}
  Prometheus: $BERTH_PROMETHEUS_URL
  Mail (verification and password-reset links): ${mail_inbox:-$BERTH_SMTP_URL}
  Admin login: $BERTH_ADMIN_EMAIL / $BERTH_ADMIN_PASSWORD
  (the password applies when this store is created; it is kept in $creds)

MSG
exec "${CARGO_TARGET_DIR:-target}/release/berth" serve
