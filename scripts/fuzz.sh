#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a while each.
#
# Usage: scripts/fuzz.sh [DURATION]   run each target for DURATION (default 10s)
#        scripts/fuzz.sh -l           list the targets (package and name)
#
# Targets are discovered with `go test -list '^Fuzz' ./...`, so a new
# Fuzz function is picked up without editing this script. Targets of one
# package run one after another, so its instrumented test binary is built
# once (the build cache serves the others).
#
# Environment:
#   FUZZ_PKGS      packages to search (default ./...)
#   FUZZ_MATCH     only targets whose name matches this regexp (default all)
#   FUZZ_PARALLEL  fuzzing worker processes per target (default: GOMAXPROCS)
#   FUZZ_MINIMIZE  -fuzzminimizetime (default 2s: minimizing an interesting
#                  input must not eat a short run)
#   FUZZ_LOGDIR    where each target's output is kept (default a temp dir)
#
# Prints a table target / package / execs / result and exits non-zero if any
# target failed; the failing input is then in the package's
# testdata/fuzz/<Target>/ (commit it as a regression seed with the fix).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

list_only=0
duration=10s
case "${1:-}" in
  -l | --list) list_only=1 ;;
  -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
  "") ;;
  *) duration=$1 ;;
esac

# discover prints "package<TAB>target" lines.
discover() {
  local out
  # shellcheck disable=SC2086
  if ! out=$(go test -list '^Fuzz' ${FUZZ_PKGS:-./...} 2>&1); then
    printf '%s\n' "$out" >&2
    echo "fuzz.sh: go test -list failed" >&2
    exit 1
  fi
  local names=() line
  while IFS= read -r line; do
    case "$line" in
      Fuzz*) names+=("$line") ;;
      "ok "* | "?  "*)
        local pkg
        pkg=$(awk '{print $2}' <<<"$line")
        local n
        for n in "${names[@]}"; do printf '%s\t%s\n' "$pkg" "$n"; done
        names=()
        ;;
    esac
  done <<<"$out"
}

targets=$(discover | { if [[ -n ${FUZZ_MATCH:-} ]]; then awk -F'\t' -v re="$FUZZ_MATCH" '$2 ~ re'; else cat; fi; })

if ((list_only)); then
  printf '%s\n' "$targets" | awk -F'\t' '{printf "%-28s %s\n", $2, $1}'
  exit 0
fi

if [[ -z $targets ]]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

logdir=${FUZZ_LOGDIR:-$(mktemp -d)}
mkdir -p "$logdir"
parallel=()
[[ -n ${FUZZ_PARALLEL:-} ]] && parallel=(-parallel "$FUZZ_PARALLEL")

total=$(printf '%s\n' "$targets" | wc -l)
echo "fuzz.sh: $total targets, $duration each, logs in $logdir"
rows=()
failed=0
t0=$(date +%s)
while IFS=$'\t' read -r pkg name; do
  log="$logdir/${pkg//\//_}.$name.log"
  rc=0
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" -fuzzminimizetime "${FUZZ_MINIMIZE:-2s}" \
    "${parallel[@]}" "$pkg" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
  result=ok
  if ((rc != 0)) && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
    # The Go fuzzing engine sometimes reports its own deadline expiring
    # while a worker is still busy (no input failed, nothing written).
    result="ok (engine deadline)"
    rc=0
  fi
  if ((rc != 0)); then
    result=FAIL
    failed=$((failed + 1))
    echo "---- $name ($pkg) failed:"
    grep -v '^fuzz: elapsed' "$log" | tail -n 30
  fi
  rows+=("$(printf '%-28s %-58s %12s  %s' "$name" "${pkg#github.com/switchboard-mcp/switchboard/}" "${execs:-?}" "$result")")
  printf '%s\n' "${rows[-1]}"
done <<<"$targets"

echo
printf '%-28s %-58s %12s  %s\n' TARGET PACKAGE EXECS RESULT
printf '%s\n' "${rows[@]}"
echo "fuzz.sh: $total targets, $failed failed, $(($(date +%s) - t0))s"
((failed == 0))
