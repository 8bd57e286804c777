#!/usr/bin/env bash
# Byte-compile one build artifact for Lambda's python3.13; `sam build` runs it at the end of the
# layer's recipe (functions/shared/Makefile) and of each function's (functions/function.mk).
#
#   functions/compile-pyc.sh DIR RUNTIME_PATH
#
# DIR is the artifact on this machine; RUNTIME_PATH is where Lambda mounts it (/opt/python for the
# layer's python/, /var/task for a function), recorded in the code objects so that tracebacks
# name the runtime's paths. Lambda mounts both read-only, so without .pyc files every cold start
# compiles every module it imports and cannot keep the result. The files are unchecked-hash
# .pyc (PEP 552): valid whatever modification times the deployment zip gives the sources, never
# checked against them (an import reads the .pyc alone), and rebuilt with every build. Any 3.13.x
# compiles them for every 3.13.x (the bytecode magic number is fixed within a minor release).
#
# The compiler, first found: $PYTHON313; python3.13 on PATH; the project's locally built Lambda
# base image on the project's Docker engine (`make build` starts both when python3.13 is missing).
set -euo pipefail

# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

[ $# -eq 2 ] || die "usage: $0 DIR RUNTIME_PATH"
dir="$(cd "$1" && pwd -P)"
runtime="$2"
compile=(-I -m compileall -q -j 0 --invalidation-mode unchecked-hash)

is_python313() { "$1" -I -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' > /dev/null 2>&1; }
python="${PYTHON313:-}"
if [ -n "$python" ]; then
  is_python313 "$python" || die "PYTHON313=$python is not a working Python 3.13"
elif candidate="$(command -v python3.13)" && is_python313 "$candidate"; then
  python="$candidate"  # (a python3.13 that does not run, such as an inactive pyenv shim, is skipped)
fi

if [ -n "$python" ]; then
  "$python" "${compile[@]}" -s "$dir" -p "$runtime" "$dir"
elif engine_running && engine_docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
  # the artifact mounted where Lambda mounts it, so the recorded paths are the runtime's already
  engine_docker run --rm --network none --user "$(id -u):$(id -g)" -v "$dir:$runtime" \
    --entrypoint /var/lang/bin/python3.13 "$BASE_IMAGE" "${compile[@]}" "$runtime"
else
  die "no Python 3.13 to byte-compile $dir with: put python3.13 on PATH (or set PYTHON313), or run" \
    "'bash local/engine.sh start && bash local/base-image.sh' (make build does)"
fi
