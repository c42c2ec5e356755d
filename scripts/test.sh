#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it.
#   ./scripts/test.sh [pytest args...]
# Installs the Debian packages the tests drive (a real registry and independent validators),
# creates .venv with ocibuild and its test extras (which bring the checkers too), then runs,
# stopping at the first that fails: ruff check, ruff format --check, mypy (strict, package and
# tests), lint-imports (the floors), the same checks for the plugin in plugins/ocibuild-gcp
# (installed too, like any third-party plugin; its sources may import only ocibuild's public
# API), and pytest on both cores: the plugin's tests, then ocibuild's. Before pytest it builds the
# Kubernetes test bed from pinned Go modules (scripts/kube-tools.sh: needs Go >= 1.26 and the
# Go module proxy; about 18 minutes and 5.5 GB the first time, cached after that), then the
# Kubeflow / serving test bed on top of it (scripts/kubeflow-tools.sh: the JobSet, Trainer v2
# and Training Operator v1 controllers and the Kubeflow and KServe CRDs; 11 to 27 minutes and
# 4.4 GB of Go caches the first time, 140 MB kept, cached after that). Either build failing
# stops the script with one line.
# A missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/ensure-tools.sh docker-registry=docker-registry skopeo=skopeo umoci=umoci \
  htpasswd=apache2-utils busybox=busybox-static zstd=zstd tar=tar gzip=gzip curl=curl git=git \
  zsh=zsh fish=fish \
  dockerd=docker.io docker=docker.io podman=podman buildah=buildah \
  /usr/share/doc/python3-pip-whl=python3-pip-whl \
  /usr/share/doc/python3-setuptools-whl=python3-setuptools-whl

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
# ocibuild, and its Google Cloud plugin as a user installs it: a separate distribution that
# ocibuild finds only through its entry point.
.venv/bin/python -m pip install -q -e '.[test]' -e './plugins/ocibuild-gcp[test]'

LINTED=(ocibuild tests benchmarks noxfile.py scripts plugins/ocibuild-gcp/src plugins/ocibuild-gcp/tests)
GCP_PLUGIN=plugins/ocibuild-gcp

check() {
  local name=$1
  shift
  echo "==> $name" >&2
  if ! "$@"; then
    echo "test.sh: FAILED: $name ($*)" >&2
    exit 1
  fi
}

check "ruff check" .venv/bin/ruff check "${LINTED[@]}"
check "ruff format" .venv/bin/ruff format --check "${LINTED[@]}"
check "mypy --strict" .venv/bin/mypy  # files and strictness come from pyproject.toml
check "import contracts" .venv/bin/lint-imports
# The plugin's own configuration (its pyproject.toml) types its sources and tests.
check "mypy --strict (ocibuild-gcp)" sh -c "cd $GCP_PLUGIN && ../../.venv/bin/mypy"
check "ocibuild-gcp uses only ocibuild's public API" .venv/bin/python scripts/check-public-imports.py "$GCP_PLUGIN/src"

echo "==> Kubernetes test bed (scripts/kube-tools.sh)" >&2
if ! kube_out=$(./scripts/kube-tools.sh); then
  echo "test.sh: FAILED: scripts/kube-tools.sh (building the Kubernetes test bed)" >&2
  exit 1
fi
export OCIBUILD_KUBE_BIN="${kube_out##*$'\n'}"

echo "==> Kubeflow / serving test bed (scripts/kubeflow-tools.sh)" >&2
if ! kubeflow_out=$(./scripts/kubeflow-tools.sh); then
  echo "test.sh: FAILED: scripts/kubeflow-tools.sh (building the Kubeflow / serving test bed)" >&2
  exit 1
fi
export OCIBUILD_KUBEFLOW_DIR="${kubeflow_out##*$'\n'}"

if [ "$#" -eq 0 ]; then
  # The plugin's tests run from its own directory (its own rootdir and conftest), against
  # Google's APIs emulated on loopback.
  echo "==> pytest (ocibuild-gcp)" >&2
  if ! (cd "$GCP_PLUGIN" && ../../.venv/bin/python -m pytest -n 2 -q); then
    echo "test.sh: FAILED: the tests of $GCP_PLUGIN" >&2
    exit 1
  fi
fi

echo "==> pytest" >&2
# exec, so that pytest's own summary is the last line and its exit status is the script's.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
