#!/usr/bin/env bash
# The user journey of the Environment API with nothing but curl and kubectl,
# against a running Berth (`make run` in another terminal):
#   register -> create -> Ready -> kubeconfig -> kubectl create deployment ->
#   events and workloads show it -> add a member -> delete -> 404;
#   over policy -> pending -> an admin approves -> Ready; another is rejected
#   and the requester sees the reason.
# Usage: scripts/journey.sh [BASE_URL]   (admin credentials from .berth/admin.env)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
base=${1:-http://127.0.0.1:8080}
kubectl=.berth/bin/kubectl
[ -f .berth/admin.env ] && . .berth/admin.env
work=$(mktemp -d /tmp/berth-journey.XXXXXX)
trap 'rm -rf "$work"' EXIT
run=$(date +%s)

say() { printf '\n$ %s\n' "$*"; }
field() { python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[int(k)] if isinstance(v, list) else v.get(k)
print(v)' "$1"; }
# api TOKEN METHOD PATH [BODY]: prints the answer, fails unless it is 2xx.
api() {
  local token=$1 method=$2 path=$3 body=${4:-}
  say curl -X "$method" "$base$path" ${body:+-d "'$body'"} >&2
  local args=(-sS -X "$method" -H "authorization: Bearer $token" -w '\n%{http_code}' "$base$path")
  [ -n "$body" ] && args+=(-H 'content-type: application/json' -d "$body")
  local out status
  out=$(curl "${args[@]}")
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  printf '%s %s\n' "$status" "$(printf '%s' "$out" | head -c 600)" >&2
  [[ $status == 2* ]] || { echo "unexpected status $status" >&2; return 1; }
  printf '%s' "$out"
}
# token EMAIL PASSWORD [register]: a personal access token for the account.
token() {
  if [ "${3:-}" = register ]; then
    curl -sSf -o /dev/null -H 'content-type: application/json' \
      -d "{\"email\":\"$1\",\"password\":\"$2\"}" "$base/api/v1/auth/register"
  fi
  api_token "$base" "$1" "$2" "$work" journey
}
# until_phase TOKEN NAME PHASE: polls the environment, two minutes at most.
until_phase() {
  local phase=""
  for _ in $(seq 240); do
    phase=$(curl -sS -H "authorization: Bearer $1" "$base/api/v1/environments/$2" | field status.phase)
    [ "$phase" = "$3" ] && { echo "$2 is $phase" >&2; return 0; }
    sleep 0.5
  done
  echo "$2 is $phase, not $3, after two minutes" >&2
  return 1
}

ann=ann-$run@example.com
bob=bob-$run@example.com
env=journey-$run
say "register $ann and $bob, log in, create API tokens"
ann_token=$(token "$ann" "correct horse battery $run" register)
bob_token=$(token "$bob" "correct horse battery $run" register)

api "$ann_token" POST /api/v1/environments \
  "{\"name\":\"$env\",\"template\":\"small\",\"podSecurity\":\"baseline\",\"description\":\"curl journey\"}" >/dev/null
until_phase "$ann_token" "$env" Ready

api "$ann_token" GET "/api/v1/environments/$env/kubeconfig" >"$work/kubeconfig"
say kubectl --kubeconfig kubeconfig create deployment web --image=nginx:1.27
"$kubectl" --kubeconfig "$work/kubeconfig" create deployment web --image=nginx:1.27
say kubectl --kubeconfig kubeconfig get secrets -n kube-system "(must be refused)"
if "$kubectl" --kubeconfig "$work/kubeconfig" get secrets -n kube-system 2>&1; then
  echo "a tenant read kube-system secrets" >&2
  exit 1
fi
for _ in $(seq 60); do
  workloads=$(curl -sS -H "authorization: Bearer $ann_token" "$base/api/v1/environments/$env/workloads")
  grep -q '"web' <<<"$workloads" && break
  sleep 0.5
done
api "$ann_token" GET "/api/v1/environments/$env/workloads" | grep -q '"web' || { echo "workloads lack web" >&2; exit 1; }
api "$ann_token" GET "/api/v1/environments/$env/events" >/dev/null

api "$ann_token" PUT "/api/v1/environments/$env/members/$bob" '{"role":"viewer"}' >/dev/null
[ "$(api "$bob_token" GET "/api/v1/environments/$env" | field role)" = viewer ]

api "$ann_token" DELETE "/api/v1/environments/$env" >/dev/null
for _ in $(seq 240); do
  status=$(curl -sS -o /dev/null -w '%{http_code}' -H "authorization: Bearer $ann_token" "$base/api/v1/environments/$env")
  [ "$status" = 404 ] && break
  sleep 0.5
done
say curl "$base/api/v1/environments/$env"
echo "$status" >&2
[ "$status" = 404 ]

say "over policy: a member asks for 64 CPUs"
big=big-$run
request=$(api "$ann_token" POST /api/v1/environments "{\"name\":\"$big\",\"template\":\"small\",\"quota\":{\"cpu\":\"64\"}}" | field request.id)
admin_token=$(token "$BERTH_ADMIN_EMAIL" "$BERTH_ADMIN_PASSWORD")
api "$admin_token" GET "/api/v1/admin/requests?state=pending" | grep -q "$request"
api "$admin_token" POST "/api/v1/admin/requests/$request/approve" >/dev/null
until_phase "$ann_token" "$big" Ready
api "$ann_token" DELETE "/api/v1/environments/$big" >/dev/null

huge=huge-$run
request=$(api "$ann_token" POST /api/v1/environments "{\"name\":\"$huge\",\"template\":\"small\",\"quota\":{\"cpu\":\"64\"}}" | field request.id)
api "$admin_token" POST "/api/v1/admin/requests/$request/reject" '{"reason":"use the large template"}' >/dev/null
[ "$(api "$ann_token" GET "/api/v1/requests?state=rejected" | field items.0.reason)" = "use the large template" ]

printf '\nthe journey works against %s\n' "$base"
