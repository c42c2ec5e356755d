#!/usr/bin/env bash
# Make sure command-line tools (and files) are installed, from Debian packages when they are not.
#   scripts/ensure-tools.sh TOOL=PACKAGE...
# TOOL is a command on PATH, or an absolute path that must exist (a file a package ships).
# Fails (exit 1) naming the tool when it is still missing afterwards.
set -euo pipefail

present() {
  case $1 in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pair in "$@"; do
  tool=${pair%%=*}
  present "$tool" || missing+=("$pair")
done
[ ${#missing[@]} -eq 0 ] && exit 0

packages=()
for pair in "${missing[@]}"; do packages+=("${pair#*=}"); done
echo "installing Debian packages: ${packages[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  "${packages[@]}" >/dev/null

for pair in "${missing[@]}"; do
  tool=${pair%%=*}
  present "$tool" || {
    echo "error: $tool is still missing after apt-get install ${pair#*=}" >&2
    exit 1
  }
done
