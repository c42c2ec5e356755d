#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   ./scripts/test.sh [pytest args...]
# Installs the Debian packages the tests drive (a real registry and independent validators),
# creates .venv with ocibuild and its test extras, and runs pytest on both cores.
# A missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/ensure-tools.sh docker-registry=docker-registry skopeo=skopeo umoci=umoci \
  htpasswd=apache2-utils busybox=busybox-static zstd=zstd tar=tar gzip=gzip curl=curl git=git

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian's own python3 needs python3-venv for ensurepip.
    rm -rf .venv
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
