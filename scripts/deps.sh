#!/usr/bin/env bash
# Installs the system packages that building, running and testing Berth need,
# skipping whatever is already there, so that a second run costs nothing.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v prometheus >/dev/null || missing+=(prometheus)

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in cargo go node npm; do
  command -v "$tool" >/dev/null || { echo "deps: $tool is not installed; this machine kind ships it" >&2; exit 1; }
done

# schemathesis (PyPI) for the contract test, in a venv cached by version.
"$(dirname "$0")/schemathesis.sh" --install
