# shellcheck shell=bash
# shellcheck disable=SC2034  # the path variables are for the scripts that source this file
# Small helpers shared by the local-stack scripts. Source it; it sets no shell options
# and exports nothing (callers choose `set -euo pipefail`).
#
# Paths (all derived from this file's location, so the repo can live anywhere):
#   REPO_ROOT         the repository root
#   STATE_DIR         .local/ in the repo (gitignored); override with LOCAL_STATE_DIR
#   ENGINE_DIR        the project's own Docker engine: data root, config, log
#   ENGINE_RUN_DIR    its exec root, pidfile and socket (short path: unix sockets max ~108 chars)
#   ENGINE_SOCK, ENGINE_PIDFILE, ENGINE_LOG
#   BASE_IMAGE        the Lambda base image tag SAM CLI looks for
#
# Functions: step, warn, die, engine_docker_host, engine_pid, engine_running, engine_docker,
#            bridge_ip, apt_install, run_logged, with_lock, ensure_sam_venv

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(dirname "$LOCAL_DIR")"
STATE_DIR="${LOCAL_STATE_DIR:-$REPO_ROOT/.local}"
ENGINE_DIR="$STATE_DIR/docker"
ENGINE_LOG="$ENGINE_DIR/dockerd.log"
BASE_IMAGE="public.ecr.aws/lambda/python:3.13-x86_64"
SAM_VENV="$REPO_ROOT/.venv-sam"

# The exec root holds containerd's sockets (<exec-root>/containerd/containerd.sock.ttrpc), so
# it and the API socket must stay well under the 108-byte unix socket limit. A deep checkout
# falls back to a per-checkout directory under /tmp named after a hash of the repo path.
if [ $(( ${#ENGINE_DIR} + 40 )) -le 100 ]; then
  ENGINE_RUN_DIR="$ENGINE_DIR/run"
else
  ENGINE_RUN_DIR="/tmp/avl-docker-$(printf '%s' "$REPO_ROOT" | sha1sum | cut -c1-12)"
fi
ENGINE_SOCK="$ENGINE_RUN_DIR/docker.sock"
ENGINE_PIDFILE="$ENGINE_RUN_DIR/dockerd.pid"

# One progress line per step, on stderr so that stdout stays machine-readable.
step() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The DOCKER_HOST value that reaches the project's engine.
engine_docker_host() { printf 'unix://%s\n' "$ENGINE_SOCK"; }

# Pid of the project's dockerd if it is alive (pidfile + the process really is dockerd).
engine_pid() {
  local pid
  [ -r "$ENGINE_PIDFILE" ] || return 1
  pid="$(tr -dc '0-9' < "$ENGINE_PIDFILE")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
  printf '%s\n' "$pid"
}

engine_running() { engine_pid > /dev/null; }

# The docker CLI pointed at the project's engine (never at any other daemon).
engine_docker() { DOCKER_HOST="$(engine_docker_host)" docker "$@"; }

# IPv4 address of the bridge the project's dockerd attaches containers to (docker0 unless
# another dockerd owned it at start, see engine.sh). Containers reach host services there.
bridge_ip() {
  local dev addr
  dev="$(cat "$ENGINE_DIR/bridge" 2>/dev/null || echo docker0)"
  addr="$(ip -4 -o addr show dev "$dev" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)"
  if [ -z "$addr" ] && engine_running; then
    addr="$(engine_docker network inspect bridge \
      --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
  fi
  [ -n "$addr" ] || return 1
  printf '%s\n' "$addr"
}

# run_logged LOGFILE CMD...: run CMD with all its output appended to LOGFILE; on failure show
# the end of the log and where the rest is.
run_logged() {
  local log="$1"; shift
  mkdir -p "$(dirname "$log")"
  printf '\n### %s: %s\n' "$(date -u +%FT%TZ)" "$*" >> "$log"
  if ! "$@" >> "$log" 2>&1; then
    printf 'error: command failed: %s\n--- last lines of %s ---\n' "$*" "$log" >&2
    tail -n 25 "$log" >&2
    printf -- '--- full log: %s ---\n' "$log" >&2
    return 1
  fi
}

# apt_install PKG...: install Debian packages (noninteractive, quiet, apt-get update first).
apt_install() {
  local log="$STATE_DIR/logs/apt.log"
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $*"
  step "apt-get install $* (about 30 s)"
  if [ -z "${APT_UPDATED:-}" ]; then
    run_logged "$log" apt-get update -q || die "apt-get update failed (see $log)"
    APT_UPDATED=1
  fi
  run_logged "$log" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" \
    || die "apt-get install $* failed (see $log)"
}

# with_lock NAME: hold an exclusive lock (fd 9) on .local/NAME.lock until the script exits, so
# that concurrent callers (make -j, two terminals) wait instead of racing.
with_lock() {
  mkdir -p "$STATE_DIR"
  exec 9> "$STATE_DIR/$1.lock"
  flock -w "${2:-600}" 9 || die "timed out waiting for $STATE_DIR/$1.lock"
}

# The SAM CLI venv (.venv-sam from requirements-sam.txt); created when missing.
ensure_sam_venv() {
  [ -x "$SAM_VENV/bin/sam" ] && return 0
  local log="$STATE_DIR/logs/sam-venv.log"
  step "create .venv-sam from requirements-sam.txt (about 1 min)"
  run_logged "$log" python3 -m venv "$SAM_VENV" || die "python3 -m venv failed (see $log)"
  run_logged "$log" "$SAM_VENV/bin/pip" install -q -r "$REPO_ROOT/requirements-sam.txt" \
    || die "pip install -r requirements-sam.txt failed (see $log)"
}
