#!/usr/bin/env bash
# Run the MCP conformance suite's authorization-server scenarios
# (`conformance authorization`: authorization-server-metadata-endpoint,
# authorization-code-grant) against Switchboard's OAuth 2.1 authorization server.
#
# Usage: scripts/conformance-auth.sh
#
# It starts `switchboard serve` on a free loopback port with a temporary data
# directory and a local user, registers a public client by DCR (redirect URI
# http://127.0.0.1:<port>/callback, the suite's callback server), runs the
# suite, and does the suite's browser step headless: scripts/oauth-browser.mjs
# opens the authorization URL the suite prints, signs in, consents and hands
# the redirect to the suite's callback server.
#
# Environment:
#   SWITCHBOARD_CACHE        cache for Node 22 + the suite
#                            (default: $HOME/.cache/switchboard-ci)
#   CONFORMANCE_OUT          logs, results and binaries
#                            (default: <repo>/.cache/conformance-auth; runs/ is wiped)
#   CONFORMANCE_RUN_TIMEOUT  hard limit for the suite run, seconds (default: 300)
#   SWITCHBOARD_BIN          use this switchboard binary instead of building one
#
# Output: "authorization: N passed / M failed" with the failing checks.
# The suite's stdout, checks.json results and the switchboard log are kept
# under $CONFORMANCE_OUT/runs/.
# Exit status: 0 if every check of both scenarios passed, 1 if not,
# 2 on usage/setup errors.
set -euo pipefail

SCENARIOS=(authorization-server-metadata-endpoint authorization-code-grant)
USERNAME=conformance

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

case "${1:-}" in
  "") ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "conformance-auth.sh: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CACHE=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard-ci}
OUT=${CONFORMANCE_OUT:-$REPO/.cache/conformance-auth}
RUN_TIMEOUT=${CONFORMANCE_RUN_TIMEOUT:-300}
BIN=$OUT/bin
RUNS=$OUT/runs
BROWSER_JS=$REPO/scripts/oauth-browser.mjs

# log/die, background processes (launch; stopped on exit), Node 22 + the suite.
LOG_PREFIX=conformance-auth MANAGES_PROCESSES=1 LOG_INSTALL_TIME=0
# shellcheck source-path=SCRIPTDIR source=lib/conformance-common.sh
source "$REPO/scripts/lib/conformance-common.sh"

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
T_START=$(now_ms)
ensure_toolchain
mkdir -p "$BIN"
rm -rf "$RUNS"
mkdir -p "$RUNS"

if [[ -n ${SWITCHBOARD_BIN:-} ]]; then
  [[ -x $SWITCHBOARD_BIN ]] || die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not executable"
  SB=$SWITCHBOARD_BIN
else
  log "building switchboard"
  go build -o "$BIN/switchboard" ./cmd/switchboard || die "building ./cmd/switchboard failed"
  SB=$BIN/switchboard
fi

# A temporary data directory with one local user; the issuer derives from
# the address switchboard listens on.
DATA=$RUNS/data
CFG=$RUNS/switchboard.yaml
cat >"$CFG" <<EOF
server:
  dataDir: "$DATA"
EOF
PASSWORD=$("$NODE" -p 'require("crypto").randomBytes(18).toString("base64url")')
printf '%s\n' "$PASSWORD" | "$SB" users add "$USERNAME" --role user --password-stdin --config "$CFG" >"$RUNS/users-add.log" 2>&1 ||
  { cat "$RUNS/users-add.log" >&2; die "switchboard users add failed"; }
launch switchboard "$RUNS/switchboard.log" "$SB" serve --config "$CFG" --listen "127.0.0.1:@PORT@"
ISSUER=http://127.0.0.1:$LAUNCH_PORT
RESOURCE=$ISSUER/mcp

# The suite's callback server listens on this port; the client registered
# for the run names it as its redirect URI (RFC 8252: loopback, exact path).
CB_PORT=$(free_port)
REG=$(curl -fsS -X POST -H 'Content-Type: application/json' \
  -d "{\"client_name\":\"MCP conformance suite\",\"redirect_uris\":[\"http://127.0.0.1:$CB_PORT/callback\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"]}" \
  "$ISSUER/register") || die "dynamic client registration at $ISSUER/register failed"
CLIENT_ID=$(printf '%s' "$REG" | "$NODE" -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).client_id')
[[ -n $CLIENT_ID && $CLIENT_ID != undefined ]] || die "registration returned no client_id: $REG"
log "registered client $CLIENT_ID (redirect http://127.0.0.1:$CB_PORT/callback)"

SUITE_LOG=$RUNS/stdout.log
log "conformance authorization --url $ISSUER --client-id $CLIENT_ID --resource $RESOURCE -p $CB_PORT"
t0=$(now_ms)
if ((HAVE_SETSID)); then
  setsid timeout --kill-after=10 "$RUN_TIMEOUT" "$NODE" "$SUITE_JS" authorization --url "$ISSUER" \
    --client-id "$CLIENT_ID" --resource "$RESOURCE" -p "$CB_PORT" -o "$RUNS/results" >"$SUITE_LOG" 2>&1 </dev/null &
else
  timeout --kill-after=10 "$RUN_TIMEOUT" "$NODE" "$SUITE_JS" authorization --url "$ISSUER" \
    --client-id "$CLIENT_ID" --resource "$RESOURCE" -p "$CB_PORT" -o "$RUNS/results" >"$SUITE_LOG" 2>&1 </dev/null &
fi
SUITE_PID=$!
PIDS+=("$SUITE_PID")

# The browser step: the suite prints the authorization URL on a line of its
# own and waits for the redirect on its callback server.
AUTH_URL=""
BROWSER_RC=0
while kill -0 "$SUITE_PID" 2>/dev/null; do
  AUTH_URL=$(grep -m1 -F "$ISSUER/authorize?" "$SUITE_LOG" || true)
  [[ -z $AUTH_URL ]] || break
  sleep 0.1
done
if [[ -n $AUTH_URL ]]; then
  log "browser step: signing in as $USERNAME and consenting (scripts/oauth-browser.mjs)"
  SWITCHBOARD_USERNAME=$USERNAME SWITCHBOARD_PASSWORD=$PASSWORD \
    "$NODE" "$BROWSER_JS" --deliver "$AUTH_URL" >"$RUNS/browser.log" 2>&1 || BROWSER_RC=$?
  if ((BROWSER_RC)); then
    log "browser step failed (exit $BROWSER_RC):"
    cat "$RUNS/browser.log" >&2
    # The suite would wait minutes for a callback that never comes.
    kill -TERM -- "-$SUITE_PID" 2>/dev/null || kill -TERM "$SUITE_PID" 2>/dev/null || true
  fi
else
  log "the suite exited without printing an authorization URL"
fi
SUITE_RC=0
wait "$SUITE_PID" || SUITE_RC=$?
ms=$(($(now_ms) - t0))
((SUITE_RC != 124)) || log "suite run exceeded ${RUN_TIMEOUT}s and was killed"

# Count the checks of each scenario's checks.json. A scenario without
# results, or a SKIPPED check (e.g. the grant without a client id), is a failure.
PASSED=0 FAILED=0 BAD=''
eval "$("$NODE" - "$RUNS/results" "${SCENARIOS[@]}" <<'EOF'
const fs = require("fs"), path = require("path");
const [dir, ...scenarios] = process.argv.slice(2);
let passed = 0, failed = 0;
const bad = [];
const dirs = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
for (const s of scenarios) {
  const d = dirs.filter((n) => n.startsWith(`authorization-server-${s}-`)).sort().pop();
  const f = d && path.join(dir, d, "checks.json");
  if (!f || !fs.existsSync(f)) { failed++; bad.push(`${s}: no results`); continue; }
  for (const c of JSON.parse(fs.readFileSync(f, "utf8"))) {
    if (c.status === "SUCCESS") passed++;
    else if (c.status === "FAILURE" || c.status === "SKIPPED") {
      failed++;
      bad.push(`${s}/${c.id}: ${c.status}${c.errorMessage ? " " + c.errorMessage : ""}`);
    }
  }
}
const q = (s) => `'${s.replace(/'/g, "")}'`;
console.log(`PASSED=${passed}`);
console.log(`FAILED=${failed}`);
console.log(`BAD=${q(bad.join("; "))}`);
EOF
)"

echo
echo "=== MCP conformance, authorization server (suite $SUITE_VERSION) ==="
echo "authorization: $PASSED passed / $FAILED failed (scenarios: ${SCENARIOS[*]}; $(fmt_ms "$ms"))"
[[ -z $BAD ]] || echo "  failing: $BAD"
echo "results: $RUNS"
echo "total time: $(fmt_ms $(($(now_ms) - T_START)))"
if ((FAILED > 0 || PASSED == 0 || SUITE_RC != 0 || BROWSER_RC != 0)); then
  log "suite exit $SUITE_RC; suite output tail ($SUITE_LOG):"
  tail -n 30 "$SUITE_LOG" >&2 || true
  log "switchboard log tail ($RUNS/switchboard.log):"
  tail -n 20 "$RUNS/switchboard.log" >&2 || true
  echo "RESULT: FAIL"
  exit 1
fi
echo "RESULT: OK"
