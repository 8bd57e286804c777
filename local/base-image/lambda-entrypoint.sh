#!/bin/sh
# /lambda-entrypoint.sh: the image's ENTRYPOINT. Outside Lambda (no AWS_LAMBDA_RUNTIME_API) it
# runs the bootstrap under the Runtime Interface Emulator, which serves the invoke API on :8080;
# inside Lambda it runs the bootstrap directly. The handler is the single argument (the CMD).
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"

RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  exec /usr/local/bin/aws-lambda-rie "$RUNTIME_ENTRYPOINT"
else
  exec "$RUNTIME_ENTRYPOINT"
fi
