#!/usr/bin/env bash
# End-to-end suite: the official BigQuery clients (Python and Node) against a
# real `sluice serve`.
#
#   SLUICE_BIN=target/debug/sluice bash tests/e2e/run.sh [extra pytest args]
#   SLUICE_BIN=target/debug/sluice bash tests/e2e/run.sh --bench-upstream
#   SLUICE_BIN=target/debug/sluice bash tests/e2e/run.sh --bench-mcp
#   SLUICE_BIN=target/debug/sluice bash tests/e2e/run.sh --bench-audit
#
# Needs python3 (>= 3.11), node (>= 20) and npm; reaches only PyPI and npm,
# and apt-get for Debian's chromium when /usr/bin/chromium is missing and
# Debian's prometheus (for promtool) when promtool is missing.
# Installs into tests/e2e/.venv and tests/e2e/node/node_modules, and reinstalls
# only when requirements.txt or package-lock.json change.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
NODE_DIR="$HERE/node"
PYTHON="${PYTHON:-python3}"

die() { echo "run.sh: $*" >&2; exit 2; }

hash_of() { "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

if [[ -z "${SLUICE_BIN:-}" && -z "${SLUICE_URL:-}" ]]; then
  die "SLUICE_BIN is not set: point it at the sluice binary (e.g. SLUICE_BIN=target/debug/sluice)"
fi
if [[ -n "${SLUICE_BIN:-}" ]]; then
  [[ -f "$SLUICE_BIN" && -x "$SLUICE_BIN" ]] || die "SLUICE_BIN=$SLUICE_BIN does not exist or is not executable"
  SLUICE_BIN="$(cd "$(dirname "$SLUICE_BIN")" && pwd)/$(basename "$SLUICE_BIN")"
  export SLUICE_BIN
fi
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

# --- Python environments ----------------------------------------------------
# ensure_venv DIR REQUIREMENTS: (re)creates DIR and installs REQUIREMENTS,
# only when the file changed since the last install.
ensure_venv() {
  local venv="$1" reqs="$2" hash stamp
  hash="$(hash_of "$reqs")"
  stamp="$venv/.requirements.sha256"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "run.sh: creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
  fi
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
    echo "run.sh: installing $(basename "$reqs")"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$reqs"
    echo "$hash" >"$stamp"
  fi
}

ensure_venv "$VENV" "$HERE/requirements.txt"
# bqemulator (the third-party BigQuery emulator used as an upstream) lives in
# a venv of its own: it would break pytest in the first (see the file).
EMU_VENV="$HERE/.venv-bqemulator"
ensure_venv "$EMU_VENV" "$HERE/requirements-bqemulator.txt"
export BQEMULATOR_PYTHON="$EMU_VENV/bin/python"

if [[ "${1:-}" == "--bench-upstream" ]]; then
  # Not a test: the benchmark of docs/benchmarks.md against bqemulator.
  cd "$HERE" && exec "$VENV/bin/python" bench_upstream.py
fi
if [[ "${1:-}" == "--bench-audit" ]]; then
  # Not a test: a query's latency with the audit log on and off (docs/benchmarks.md).
  cd "$HERE" && exec "$VENV/bin/python" bench_audit.py
fi
if [[ "${1:-}" == "--bench-mcp" ]]; then
  # Not a test: MCP execute_sql against the REST API (docs/benchmarks.md).
  cd "$HERE" && exec "$VENV/bin/python" bench_mcp.py
fi

# --- Node environment -------------------------------------------------------
lock_hash="$(hash_of "$NODE_DIR/package-lock.json")"
node_stamp="$NODE_DIR/node_modules/.package-lock.sha256"
if [[ ! -d "$NODE_DIR/node_modules" || ! -f "$node_stamp" || "$(cat "$node_stamp")" != "$lock_hash" ]]; then
  echo "run.sh: installing Node dependencies (npm ci)"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" >"$node_stamp"
fi

# --- Chromium (the web UI's browser test) -----------------------------------
# Debian's package; installed when missing. If it cannot be, the suite stops
# here: the browser test is never skipped for want of a browser.
if [[ -z "${SLUICE_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  echo "run.sh: installing chromium (apt-get)"
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq \
    && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || die "cannot install Debian's chromium package, which the web UI's browser test needs"
  [[ -x /usr/bin/chromium ]] || die "apt-get installed chromium, but /usr/bin/chromium is missing"
fi

# --- promtool (the metrics test) ---------------------------------------------
# Prometheus' own checker, from Debian's prometheus package; installed when
# missing, never skipped.
if ! command -v promtool >/dev/null; then
  echo "run.sh: installing prometheus for promtool (apt-get)"
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq \
    && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || die "cannot install Debian's prometheus package, whose promtool the metrics test needs"
  command -v promtool >/dev/null || die "apt-get installed prometheus, but promtool is missing"
fi

# --- Run --------------------------------------------------------------------
status=0

echo "run.sh: Python suite, embedded warehouse"
(cd "$HERE" && SLUICE_E2E_UPSTREAM=embedded "$VENV/bin/python" -m pytest -q "$@") || status=1

if [[ -z "${SLUICE_URL:-}" ]]; then
  echo "run.sh: Python suite, BigQuery upstream against bqemulator"
  (cd "$HERE" && SLUICE_E2E_UPSTREAM=bqemulator "$VENV/bin/python" -m pytest -q "$@") || status=1
fi

echo "run.sh: Node suite, embedded warehouse"
(cd "$NODE_DIR" && SLUICE_E2E_UPSTREAM=embedded node --test) || status=1

if [[ -z "${SLUICE_URL:-}" ]]; then
  echo "run.sh: Node suite, BigQuery upstream against bqemulator"
  stack_out="$(mktemp)"
  (cd "$HERE" && exec "$VENV/bin/python" upstream_stack.py) >"$stack_out" &
  stack_pid=$!
  # The stack stops the emulator and token service when it is stopped,
  # also when this script is interrupted.
  trap 'kill "$stack_pid" 2>/dev/null || true' EXIT
  config=""
  # Until it says where its configuration is, or exits (10 minutes at most).
  for _ in $(seq 1 3000); do
    config="$(sed -n 's/^config //p' "$stack_out")"
    [[ -n "$config" ]] && break
    kill -0 "$stack_pid" 2>/dev/null || break
    sleep 0.2
  done
  if [[ -n "$config" ]]; then
    (cd "$NODE_DIR" && SLUICE_E2E_UPSTREAM=bqemulator SLUICE_CONFIG="$config" node --test) || status=1
  else
    echo "run.sh: the upstream stack (bqemulator, token service) did not start" >&2
    status=1
  fi
  kill "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
  trap - EXIT
  rm -f "$stack_out"
fi

if [[ $status -ne 0 ]]; then
  echo "run.sh: FAILED" >&2
else
  echo "run.sh: all end-to-end tests passed"
fi
exit $status
