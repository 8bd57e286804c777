#!/usr/bin/env bash
# Build the Lambda python3.13 base image locally, since no container registry is reachable:
# a Debian trixie rootfs (Python 3.13) laid out like public.ecr.aws/lambda/python:3.13, imported
# into the project's engine (local/engine.sh, started if needed) and tagged exactly
#   public.ecr.aws/lambda/python:3.13-x86_64
# so that `sam local invoke|start-api --skip-pull-image` builds its own image on top of it.
#
#   local/base-image.sh            build unless the engine already has the image
#   local/base-image.sh --force    rebuild the image (reusing the cached rootfs tarball)
#   local/base-image.sh --fresh    rebuild and debootstrap the rootfs again
#
# Environment: DEBIAN_MIRROR (default: the Debian mirror this host's apt uses).
# Cache: .local/base-image/rootfs-trixie.tar; log: .local/logs/base-image.log.
set -euo pipefail

# shellcheck source=local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE=trixie
PYVER=3.13
IMAGE_DIR="$LOCAL_DIR/base-image"
CACHE_DIR="$STATE_DIR/base-image"
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE.tar"
LOG="$STATE_DIR/logs/base-image.log"

FORCE=0
FRESH=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --fresh) FORCE=1; FRESH=1 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

# The main Debian archive that apt on this host uses: the first enabled `deb` source whose
# suites include this host's codename, from one-line (.list) or deb822 (.sources) files.
debian_mirror() {
  local codename f
  codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
  [ -n "$codename" ] || return 1
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        # deb822: blank-line separated stanzas of "Key: value" fields.
        awk -v cn="$codename" '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " cn " ") && uris != "") {
              split(uris, u, " "); print u[1]; found = 1; exit
            }
            types = ""; suites = ""; uris = ""; enabled = ""
          }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
            if (key == "types") types = $0
            else if (key == "suites") suites = $0
            else if (key == "uris") uris = $0
            else if (key == "enabled") enabled = tolower($0) }
          END { if (!found) flush() }
        ' "$f"
        ;;
      *)
        # one-line: deb [options] URI suite component...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" \
          | awk -v cn="$codename" '$1 == "deb" && $3 == cn { print $2; exit }'
        ;;
    esac
  done | head -n 1 | grep .
}

# Unmount anything left mounted below DIR (debootstrap mounts /proc and /sys in its target
# and may leave them behind when killed) before DIR is deleted.
umount_under() {
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

image_id() { engine_docker image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null; }

"$LOCAL_DIR/engine.sh" start
with_lock base-image 900

if [ "$FORCE" = 0 ] && image_id > /dev/null; then
  step "base image $BASE_IMAGE present (local/base-image.sh --force rebuilds it)"
  exit 0
fi

T0=$SECONDS
mkdir -p "$CACHE_DIR" "$(dirname "$LOG")"
: > "$LOG"
on_exit() {
  local rc=$?
  [ "$rc" = 0 ] || printf 'error: base image build failed (exit %s); log: %s\n' "$rc" "$LOG" >&2
}
trap on_exit EXIT

# --- 1. the rootfs tarball (cached) ------------------------------------------------------
if [ "$FRESH" = 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
  command -v debootstrap > /dev/null || apt_install debootstrap
  MIRROR="${DEBIAN_MIRROR:-$(debian_mirror || true)}"
  [ -n "$MIRROR" ] || die "cannot read the Debian mirror from /etc/apt/sources.list{,.d}; set DEBIAN_MIRROR"
  # debootstrap downloads with wget: pass on an apt proxy if one is configured.
  APT_HTTP_PROXY=""
  eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy 2>/dev/null || true)"
  PROXY_ENV=()
  [ -z "$APT_HTTP_PROXY" ] || PROXY_ENV=("http_proxy=$APT_HTTP_PROXY")
  DEBOOT_DIR="$CACHE_DIR/debootstrap"
  umount_under "$DEBOOT_DIR"
  rm -rf "$DEBOOT_DIR"
  step "debootstrap $SUITE from $MIRROR (about 35-70 s, network-bound)"
  run_logged "$LOG" env "${PROXY_ENV[@]}" \
    debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$DEBOOT_DIR" "$MIRROR"
  step "cache rootfs tarball ($ROOTFS_TAR)"
  rm -rf "$DEBOOT_DIR/var/cache/apt/archives/"*.deb "$DEBOOT_DIR/var/lib/apt/lists/"*_Packages
  tar -C "$DEBOOT_DIR" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  mv -f "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  umount_under "$DEBOOT_DIR"
  rm -rf "$DEBOOT_DIR"
else
  step "reuse cached rootfs ($ROOTFS_TAR; --fresh debootstraps again)"
fi

# --- 2. lay it out like the official image -----------------------------------------------
ROOTFS="$CACHE_DIR/rootfs"
umount_under "$ROOTFS"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
tar -C "$ROOTFS" --numeric-owner -xpf "$ROOTFS_TAR"
[ -x "$ROOTFS/usr/bin/python$PYVER" ] \
  || die "the $SUITE rootfs has no /usr/bin/python$PYVER (Debian moved on?); adjust SUITE in $0"

step "layout: /var/lang, /var/runtime (awslambdaric), boto3, RIE, bootstrap (about 10 s)"
SITE="/var/lang/lib/python$PYVER/site-packages"
mkdir -p "$ROOTFS/var/lang/bin" "$ROOTFS$SITE" "$ROOTFS/var/runtime" "$ROOTFS/var/task" \
  "$ROOTFS/opt" "$ROOTFS/usr/local/bin"
ln -sfn "/usr/bin/python$PYVER" "$ROOTFS/var/lang/bin/python$PYVER"
ln -sfn "python$PYVER" "$ROOTFS/var/lang/bin/python3"
ln -sfn "python$PYVER" "$ROOTFS/var/lang/bin/python"

ensure_sam_venv
RIE="$(find "$SAM_VENV" -path '*/samcli/local/rapid/aws-lambda-rie-x86_64' -type f | head -n 1)"
[ -n "$RIE" ] || die "aws-lambda-rie-x86_64 not found in $SAM_VENV (is aws-sam-cli installed?)"
install -m 0755 "$RIE" "$ROOTFS/usr/local/bin/aws-lambda-rie"
install -m 0755 "$IMAGE_DIR/bootstrap" "$ROOTFS/var/runtime/bootstrap"
install -m 0755 "$IMAGE_DIR/lambda-entrypoint.sh" "$ROOTFS/lambda-entrypoint.sh"

# The host's pip (the SAM venv's, which is not externally managed) fetches cp313 wheels.
pip_target() {
  run_logged "$LOG" "$SAM_VENV/bin/python" -m pip install --quiet --no-compile --no-deps \
    --target "$1" --python-version "$PYVER" --platform manylinux2014_x86_64 \
    --implementation cp --only-binary=:all: -r "$2"
}
pip_target "$ROOTFS/var/runtime" "$IMAGE_DIR/requirements-runtime.txt"
pip_target "$ROOTFS$SITE" "$IMAGE_DIR/requirements-site.txt"
rm -rf "${ROOTFS:?}/var/runtime/bin" "${ROOTFS:?}$SITE/bin"
# Byte-compile with the image's own Python so that cold starts do not compile boto3.
run_logged "$LOG" chroot "$ROOTFS" "/usr/bin/python$PYVER" -m compileall -q -j 0 \
  /var/runtime "$SITE"

# --- 3. import and tag -------------------------------------------------------------------
OLD_ID="$(image_id || true)"
step "docker import -> $BASE_IMAGE"
PYTHONPATH_VALUE="/opt/python/lib/python$PYVER/site-packages:/opt/python:$SITE:/var/runtime"
tar -C "$ROOTFS" --numeric-owner -c . | engine_docker import \
  --change "ENV LANG=en_US.UTF-8" \
  --change "ENV TZ=:/etc/localtime" \
  --change "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin" \
  --change "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib" \
  --change "ENV LAMBDA_TASK_ROOT=/var/task" \
  --change "ENV LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "ENV PYTHONPATH=$PYTHONPATH_VALUE" \
  --change "WORKDIR /var/task" \
  --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
  - "$BASE_IMAGE" >> "$LOG"
rm -rf "$ROOTFS"

if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(image_id)" ]; then
  # SAM CLI's images built on the old base are stale: drop them (SAM rebuilds on demand).
  engine_docker images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E '^(public\.ecr\.aws/lambda/python:3\.13-rapid-|samcli/lambda-python:3\.13-)' \
    | while read -r ref; do engine_docker rmi -f "$ref" >> "$LOG" 2>&1 || true; done
  engine_docker rmi "$OLD_ID" >> "$LOG" 2>&1 || true
fi

step "smoke test: python, awslambdaric, boto3 in the image"
engine_docker run --rm --network none --entrypoint /var/lang/bin/python3 "$BASE_IMAGE" -c \
  'import sys, awslambdaric, boto3; print("python", sys.version.split()[0], "boto3", boto3.__version__)' \
  >&2 || die "the new image does not run python with awslambdaric and boto3"
step "base image ready in $((SECONDS - T0)) s"
