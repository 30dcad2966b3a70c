#!/usr/bin/env bash
# Runs schemathesis (PyPI) from a virtualenv cached under $BERTH_CACHE, keyed
# by its version, made on first use: `scripts/schemathesis.sh run URL ...`.
# `scripts/schemathesis.sh --install` only makes sure it is there.
set -euo pipefail

version=4.32.5
venv=${BERTH_CACHE:-$HOME/.cache/berth}/schemathesis/$version
# The stamp is written last, so an install cut short is made again.
if [ ! -f "$venv/.installed" ]; then
  echo "schemathesis: installing $version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
  touch "$venv/.installed"
fi
if [ "${1:-}" = --install ]; then
  exit 0
fi
exec "$venv/bin/schemathesis" "$@"
