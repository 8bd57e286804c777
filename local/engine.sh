#!/usr/bin/env bash
# The project's own Docker engine for `sam local`: a dockerd with its own data root, exec root,
# pidfile, config and unix socket under .local/, independent of any other dockerd on the machine.
#
#   local/engine.sh start       install docker.io if dockerd is missing, start (or reuse) the engine
#   local/engine.sh stop        stop it (by the pid in its pidfile) and wait
#   local/engine.sh status      print its state; exit 0 when running, 3 when stopped
#   local/engine.sh env         print `export DOCKER_HOST=unix://...` (eval "$(local/engine.sh env)")
#   local/engine.sh bridge-ip   print the host's IPv4 address on the engine's bridge (docker0):
#                               containers reach host services there (bind those to it, not 0.0.0.0)
#
# Environment: ENGINE_START_TIMEOUT (seconds, default 60), LOCAL_STATE_DIR (default <repo>/.local).
# The engine touches no host firewall rule or sysctl (--iptables=false --ip-forward=false):
# published container ports go through docker-proxy on 127.0.0.1, containers reach the host on
# the bridge address, and nothing they send is routed beyond this machine.
set -euo pipefail

# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OWN_BRIDGE=avldocker0   # used only when another dockerd already runs (it owns docker0)
OWN_BRIDGE_CANDIDATES="172.31.254.1/24 172.30.254.1/24 172.29.254.1/24"

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

other_dockerd_running() {
  local f comm ours
  ours="$(engine_pid || true)"
  for f in /proc/[0-9]*/comm; do
    comm="$(cat "$f" 2>/dev/null || true)"
    [ "$comm" = dockerd ] || continue
    f="${f#/proc/}"; f="${f%/comm}"
    [ "$f" = "$ours" ] || return 0
  done
  return 1
}

# When another dockerd owns docker0, give ours a bridge of its own on a free /24.
setup_own_bridge() {
  local cidr net
  if ! ip link show "$OWN_BRIDGE" > /dev/null 2>&1; then
    for cidr in $OWN_BRIDGE_CANDIDATES; do
      net="${cidr%.*}."
      if ! ip -4 -o addr show | grep -qF " inet $net"; then
        ip link add name "$OWN_BRIDGE" type bridge
        ip addr add "$cidr" dev "$OWN_BRIDGE"
        ip link set "$OWN_BRIDGE" up
        break
      fi
    done
    ip link show "$OWN_BRIDGE" > /dev/null 2>&1 || die "no free subnet for bridge $OWN_BRIDGE"
  fi
  printf '%s\n' "$OWN_BRIDGE" > "$ENGINE_DIR/bridge"
}

cmd_start() {
  local pid launcher t0 waited timeout="${ENGINE_START_TIMEOUT:-60}"
  local -a bridge_args=()
  with_lock engine 120
  if pid="$(engine_pid)"; then
    step "engine already running (pid $pid, DOCKER_HOST=$(engine_docker_host))"
    return 0
  fi
  t0=$SECONDS
  [ "$(id -u)" = 0 ] || die "the engine runs dockerd, which needs root"

  if ! command -v dockerd > /dev/null || ! command -v ip > /dev/null; then
    apt_install docker.io iptables iproute2
  fi
  command -v docker > /dev/null || apt_install docker.io

  mkdir -p "$ENGINE_DIR/data" "$ENGINE_RUN_DIR/exec"
  [ -f "$ENGINE_DIR/daemon.json" ] || printf '{}\n' > "$ENGINE_DIR/daemon.json"
  rm -f "$ENGINE_SOCK" "$ENGINE_PIDFILE"
  [ ! -f "$ENGINE_LOG" ] || mv -f "$ENGINE_LOG" "$ENGINE_LOG.1"

  if other_dockerd_running; then
    setup_own_bridge
    bridge_args=(--bridge "$OWN_BRIDGE")
    step "another dockerd is running: using bridge $OWN_BRIDGE"
  else
    rm -f "$ENGINE_DIR/bridge"
    ip link del "$OWN_BRIDGE" 2>/dev/null || true   # left over from an unclean stop
  fi

  step "start dockerd (log: $ENGINE_LOG)"
  # setsid: the engine outlives this shell and its process group; 9>&-: it must not inherit
  # the start lock.
  env -u DOCKER_HOST -u DOCKER_CONTEXT setsid dockerd \
    --data-root "$ENGINE_DIR/data" \
    --exec-root "$ENGINE_RUN_DIR/exec" \
    --pidfile "$ENGINE_PIDFILE" \
    --host "unix://$ENGINE_SOCK" \
    --config-file "$ENGINE_DIR/daemon.json" \
    --containerd-namespace avl-local \
    --containerd-plugins-namespace avl-local-plugins \
    --iptables=false --ip-masq=false --ip-forward=false \
    "${bridge_args[@]}" \
    < /dev/null > "$ENGINE_LOG" 2>&1 9>&- &
  launcher=$!

  waited=0
  until engine_docker info > /dev/null 2>&1; do
    if [ "$waited" -ge "$timeout" ]; then
      pid="$(engine_pid || true)"
      kill "${pid:-$launcher}" 2>/dev/null || true
      tail -n 20 "$ENGINE_LOG" >&2 || true
      die "dockerd did not answer within ${timeout}s; see $ENGINE_LOG"
    fi
    if [ "$waited" -ge 3 ] && ! kill -0 "$launcher" 2>/dev/null && ! engine_running; then
      tail -n 20 "$ENGINE_LOG" >&2 || true
      die "dockerd exited during start-up; see $ENGINE_LOG"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  step "engine ready in $((SECONDS - t0)) s (pid $(engine_pid), DOCKER_HOST=$(engine_docker_host), bridge $(bridge_ip || echo '?'))"
}

cmd_stop() {
  local pid ctr_pid
  with_lock engine 120
  if ! pid="$(engine_pid)"; then
    step "engine not running"
    rm -f "$ENGINE_PIDFILE" "$ENGINE_SOCK"
    return 0
  fi
  step "stop dockerd (pid $pid)"
  kill -TERM "$pid"
  # dockerd gives running containers 15 s to stop, then exits.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "dockerd (pid $pid) still running after 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    ctr_pid="$(cat "$ENGINE_RUN_DIR/exec/containerd/containerd.pid" 2>/dev/null || true)"
    if [ -n "$ctr_pid" ] && [ "$(cat "/proc/$ctr_pid/comm" 2>/dev/null)" = containerd ]; then
      kill -TERM "$ctr_pid" 2>/dev/null || true
    fi
  fi
  if [ -f "$ENGINE_DIR/bridge" ]; then
    ip link del "$(cat "$ENGINE_DIR/bridge")" 2>/dev/null || true
    rm -f "$ENGINE_DIR/bridge"
  fi
  rm -f "$ENGINE_PIDFILE" "$ENGINE_SOCK"
  step "engine stopped"
}

cmd_status() {
  local pid
  if pid="$(engine_pid)"; then
    printf 'running pid=%s DOCKER_HOST=%s bridge_ip=%s\n' \
      "$pid" "$(engine_docker_host)" "$(bridge_ip || echo '?')"
    if engine_docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
      printf 'base image %s: present\n' "$BASE_IMAGE"
    else
      printf 'base image %s: missing (run local/base-image.sh)\n' "$BASE_IMAGE"
    fi
  else
    printf 'stopped\n'
    return 3
  fi
}

cmd_env() {
  engine_running || warn "engine not running (local/engine.sh start)"
  printf 'export DOCKER_HOST=%s\n' "$(engine_docker_host)"
}

cmd_bridge_ip() {
  engine_running || die "engine not running (local/engine.sh start)"
  bridge_ip || die "cannot find the engine's bridge address"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  bridge-ip) cmd_bridge_ip ;;
  *) usage ;;
esac
