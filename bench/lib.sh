# Shared by the HTTP load benchmarks: source it, do not run it.

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

# summary LABEL WRK_OUTPUT_FILE: one line of req/s, p50, p99 and failures.
summary() {
  awk -v label="$1" '
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /^Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$NF}
    END {printf "%-48s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n", label, rps, p50, p99, (bad == "" ? 0 : bad)}' "$2"
}
