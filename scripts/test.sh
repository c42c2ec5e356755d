#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   ./scripts/test.sh [pytest args...]
# Installs the Debian packages the tests drive (a real registry and independent validators),
# creates .venv with ocibuild and its test extras, and runs pytest on both cores.
# A missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(docker-registry skopeo umoci apache2-utils busybox-static zstd tar gzip curl git)
TOOLS=(docker-registry skopeo umoci htpasswd busybox zstd tar gzip curl git)

missing=()
for tool in "${TOOLS[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages (missing: ${missing[*]})" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${DEBIAN_PACKAGES[@]}" >/dev/null
fi
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is still missing after apt-get install" >&2; exit 1; }
done

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
