#!/usr/bin/env bash
# The local Kubernetes control plane for development and tests: a real
# kube-apiserver, controller-manager, scheduler, etcd and metrics-server built
# from the published Go modules (localcluster/), plus fake nodes that serve
# the kubelet's API (container logs, metrics).
#
#   scripts/localcluster.sh build   compile berth-cluster and helm (cached) into .berth/bin/
#   scripts/localcluster.sh up      start the cluster in the background, return once ready
#   scripts/localcluster.sh down    stop it, leaving no process behind
#   scripts/localcluster.sh status  exit 0 when it runs and is healthy
#
# Fixed places: .berth/bin/{berth-cluster,kubectl,helm}, the admin kubeconfig at
# .berth/cluster/kubeconfig, logs in .berth/cluster/logs/.
#
# Helm (the chart's lint, template and package) is a `tool` of the same Go
# module: its Kubernetes modules are the cluster's (k8s.io v0.34, replaced to
# the same releases), so one module graph and one build cache serve both.
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
export PATH="/usr/local/go/bin:$PATH"
BIN_DIR=.berth/bin
CLUSTER_DIR=.berth/cluster
BINARY=$BIN_DIR/berth-cluster

# The build is keyed by everything that decides the binary: the module
# files, the sources, this script (it holds the build flags) and the Go
# release, so an unchanged tree never rebuilds.
source_key() {
  {
    go version
    sha256sum scripts/localcluster.sh
    cd localcluster
    sha256sum go.mod go.sum ./*.go
  } | sha256sum | cut -c1-16
}

# The version stamps that Kubernetes' own release build sets; without them
# every component reports v0.0.0-master.
version_ldflags() {
  local version major minor
  version=$(cd localcluster && go list -m -f '{{.Version}}' k8s.io/kubernetes)
  major=${version#v}
  major=${major%%.*}
  minor=${version#v*.}
  minor=${minor%%.*}
  local pkg flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

# Helm's release build stamps its version and the Kubernetes release it
# defaults to (Capabilities.KubeVersion, lint's deprecation checks): the
# client-go minor, major 0 + 1, as helm's Makefile computes it.
helm_ldflags() {
  local helm_version kube_version kube_minor
  helm_version=$(cd localcluster && go list -m -f '{{.Version}}' helm.sh/helm/v3)
  kube_version=$(cd localcluster && go list -m -f '{{.Version}}' k8s.io/client-go)
  kube_minor=${kube_version#v*.}
  kube_minor=${kube_minor%%.*}
  local flags="-X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
  done
  echo "$flags"
}

# go_build OUT PACKAGE LDFLAGS: builds beside the final name and renames, so
# that a concurrent build or an interrupted one never leaves a truncated
# binary at the cached path.
go_build() {
  local out=$1 package=$2 ldflags=$3
  local tmp="$out.tmp.$$"
  (cd localcluster && go build -trimpath -ldflags="-s -w $ldflags" -o "$tmp" "$package")
  mv -f "$tmp" "$out"
}

build() {
  if ! command -v go >/dev/null; then
    echo "localcluster: the go command is missing (expected in /usr/local/go/bin)" >&2
    exit 1
  fi
  local key dir
  key=$(source_key)
  dir="$BERTH_CACHE/localcluster/$key"
  mkdir -p "$dir"
  if [[ ! -x $dir/berth-cluster ]]; then
    echo "localcluster: building berth-cluster $key (a cold build takes about 20 minutes on 2 cores)" >&2
    go_build "$dir/berth-cluster" . "$(version_ldflags)"
  fi
  if [[ ! -x $dir/helm ]]; then
    echo "localcluster: building helm $key" >&2
    go_build "$dir/helm" helm.sh/helm/v3/cmd/helm "$(helm_ldflags)"
  fi
  mkdir -p "$BIN_DIR"
  ln -sfn "$dir/berth-cluster" "$BINARY"
  # berth-cluster runs kubectl when invoked under that name.
  ln -sfn berth-cluster "$BIN_DIR/kubectl"
  ln -sfn "$dir/helm" "$BIN_DIR/helm"
}

case "${1:-}" in
  build)
    build
    ;;
  up)
    build
    "$BINARY" up --dir "$CLUSTER_DIR"
    ;;
  down)
    if [[ -x $BINARY ]]; then
      "$BINARY" down --dir "$CLUSTER_DIR"
    else
      echo "cluster not running (berth-cluster is not built)"
    fi
    ;;
  status)
    if [[ ! -x $BINARY ]]; then
      echo "cluster not running (berth-cluster is not built)"
      exit 1
    fi
    "$BINARY" status --dir "$CLUSTER_DIR"
    ;;
  *)
    echo "usage: $0 build|up|down|status" >&2
    exit 2
    ;;
esac
