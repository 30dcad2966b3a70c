#!/usr/bin/env bash
# Time from creating N Environments at once to all Ready (Berth's controller,
# in process), side by side with `kubectl apply --server-side` of the same
# objects (the builder's YAML) followed by `kubectl wait` for the Deployments,
# on the same local cluster in the same run. Prints a Markdown table.
#
#   bench/provision/run.sh [N...]        default: 1 100
#   PROFILE=release bench/provision/run.sh   (an optimized controller)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/berth/cargo-target}
flags=()
[[ ${PROFILE:-dev} == release ]] && flags=(--release)
cargo run -q "${flags[@]}" -p berth-controller --example provision -- "$@"
