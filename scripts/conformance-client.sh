#!/usr/bin/env bash
# Run the MCP conformance suite's client scenarios against Switchboard's own
# client (cmd/switchboard-conformance-client: the hub's transport and OAuth
# client), or against the go-sdk everything-client for the baseline.
#
# Usage: scripts/conformance-client.sh [switchboard|baseline|all]   (default: switchboard)
#
#   switchboard  `conformance client --suite all` against switchboard (enforced: every check passes)
#   baseline     the same against go-sdk's conformance/everything-client (informational)
#   all          both
#
# Environment:
#   SWITCHBOARD_CACHE        cache for Node 22 + the suite
#                            (default: $HOME/.cache/switchboard-ci)
#   CONFORMANCE_OUT          logs, results and binaries
#                            (default: <repo>/.cache/conformance-client; runs/ is wiped)
#   CONFORMANCE_RUN_TIMEOUT  hard limit per suite run, seconds (default: 900)
#   CONFORMANCE_CLIENT_BIN   use this switchboard-conformance-client binary
#                            instead of building one
#
# Output: "LABEL: N passed / M failed" per run, with the failing scenarios.
# Per-run stdout and the suite's results are kept under $CONFORMANCE_OUT/runs/<label>/.
# Exit status: 0 if every scenario of the switchboard run passed, 1 if not,
# 2 on usage/setup errors.
set -euo pipefail

EVERYTHING_CLIENT_PKG=github.com/modelcontextprotocol/go-sdk/conformance/everything-client
# go-sdk v1.8.0 everything-client, for comparison: "passed/failed".
BASELINE=494/13

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

MODE=${1:-switchboard}
case "$MODE" in
  switchboard|baseline|all) ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "conformance-client.sh: unknown mode '$MODE'" >&2; usage >&2; exit 2 ;;
esac
[[ $# -le 1 ]] || { echo "conformance-client.sh: too many arguments" >&2; usage >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard-ci}
OUT=${CONFORMANCE_OUT:-$REPO/.cache/conformance-client}
RUN_TIMEOUT=${CONFORMANCE_RUN_TIMEOUT:-900}
BIN=$OUT/bin
RUNS=$OUT/runs

# log/die and Node 22 + the suite; no background processes, so no traps.
LOG_PREFIX=conformance-client MANAGES_PROCESSES=0 LOG_INSTALL_TIME=0
# shellcheck source-path=SCRIPTDIR source=lib/conformance-common.sh
source "$REPO/scripts/lib/conformance-common.sh"

# ---------------------------------------------------------------------------
# Summarising a run: the "=== SUMMARY ===" block of the suite's stdout
# ("✓ name: N passed, M failed" per scenario, then "Total: ..."), checked
# against the expected scenario count from its header.
# ---------------------------------------------------------------------------
summarise() {
  "$NODE" - "$1" <<'EOF'
const fs = require("fs");
const log = fs.readFileSync(process.argv[2], "utf8");
const header = log.match(/^Running (.+?) \((\d+) scenarios\)/m);
const i = Math.max(log.lastIndexOf("=== SUMMARY ==="), log.lastIndexOf("=== SUITE SUMMARY ==="));
const tail = i >= 0 ? log.slice(i) : "";
let passed = 0, failed = 0, n = 0;
const bad = [];
for (const m of tail.matchAll(/^([✓✗]) (\S+): (\d+) passed, (\d+) failed/gmu)) {
  n++; passed += +m[3]; failed += +m[4];
  if (m[1] === "✗" || +m[4] > 0) bad.push(`${m[2]} (${m[4]} failed)`);
}
const expected = header ? +header[2] : 0;
const complete = i >= 0 && expected > 0 && n === expected ? 1 : 0;
console.log(`PASSED=${passed}`);
console.log(`FAILED=${failed}`);
console.log(`SCENARIOS=${n}`);
console.log(`EXPECTED=${expected}`);
console.log(`COMPLETE=${complete}`);
console.log(`BAD='${bad.join(", ").replace(/'/g, "")}'`);
EOF
}

ROWS=()
RESULT=0

# run_suite LABEL ENFORCE COMMAND
run_suite() {
  local label=$1 enforce=$2 cmd=$3
  local dir=$RUNS/$label
  mkdir -p "$dir"
  log "$label: conformance client --command \"$cmd\" --suite all"
  local t0 rc=0 ms
  t0=$(now_ms)
  timeout --kill-after=10 "$RUN_TIMEOUT" "$NODE" "$SUITE_JS" client --command "$cmd" --suite all \
    -o "$dir/results" >"$dir/stdout.log" 2>&1 || rc=$?
  ms=$(($(now_ms) - t0))
  ((rc != 124)) || log "$label: suite run exceeded ${RUN_TIMEOUT}s and was killed"
  local PASSED=0 FAILED=0 SCENARIOS=0 EXPECTED=0 COMPLETE=0 BAD=''
  eval "$(summarise "$dir/stdout.log")"
  echo "$label: $PASSED passed / $FAILED failed ($SCENARIOS/$EXPECTED scenarios, $(fmt_ms "$ms"))"
  [[ -z $BAD ]] || echo "  failing: $BAD"
  local verdict=ok
  if ((enforce)); then
    if ((!COMPLETE)); then
      log "$label: suite run incomplete (exit $rc; see $dir/stdout.log)"
      verdict=FAIL
    elif ((FAILED > 0)) || [[ -n $BAD ]]; then
      verdict=FAIL
    fi
    [[ $verdict == ok ]] || RESULT=1
  else
    verdict="info (go-sdk v1.8.0: $BASELINE)"
  fi
  ROWS+=("$label|$PASSED|$FAILED|$(fmt_ms "$ms")|$verdict")
}

T_START=$(now_ms)
ensure_toolchain
mkdir -p "$BIN"
rm -rf "$RUNS"
mkdir -p "$RUNS"

if [[ $MODE == baseline || $MODE == all ]]; then
  log "building everything-client"
  go build -o "$BIN/everything-client" "$EVERYTHING_CLIENT_PKG" || die "building $EVERYTHING_CLIENT_PKG failed"
  run_suite baseline-everything-client 0 "$BIN/everything-client"
fi
if [[ $MODE == switchboard || $MODE == all ]]; then
  if [[ -n ${CONFORMANCE_CLIENT_BIN:-} ]]; then
    [[ -x $CONFORMANCE_CLIENT_BIN ]] || die "CONFORMANCE_CLIENT_BIN=$CONFORMANCE_CLIENT_BIN is not executable"
    CC=$CONFORMANCE_CLIENT_BIN
  else
    log "building switchboard-conformance-client"
    go build -o "$BIN/switchboard-conformance-client" ./cmd/switchboard-conformance-client ||
      die "building ./cmd/switchboard-conformance-client failed"
    CC=$BIN/switchboard-conformance-client
  fi
  run_suite switchboard 1 "$CC"
fi

echo
echo "=== MCP conformance, client side (suite $SUITE_VERSION --suite all) ==="
printf '%-28s %7s %7s %8s  %s\n' RUN PASSED FAILED TIME VERDICT
for row in "${ROWS[@]}"; do
  IFS='|' read -r -a f <<<"$row"
  printf '%-28s %7s %7s %8s  %s\n' "${f[@]}"
done
echo "results: $RUNS"
echo "total time: $(fmt_ms $(($(now_ms) - T_START)))"
if ((RESULT)); then
  echo "RESULT: FAIL (not every scenario passed)"
  exit 1
fi
echo "RESULT: OK"
