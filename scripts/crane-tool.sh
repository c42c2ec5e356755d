#!/usr/bin/env bash
# Build crane (go-containerregistry's CLI) from its published Go module at a pinned version,
# for the start-up benchmark (benchmarks/startup.py) to run beside ocibuild:
#   scripts/crane-tool.sh            -> prints the crane binary's path (last line of stdout)
#   scripts/crane-tool.sh --built    -> the same if it is built already, else exit 1, no build
# It lands in ${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}/crane-<version>/bin; a stamp
# written last marks a finished build (as scripts/kube-tools.sh does), so a warm run does nothing.
set -euo pipefail

CRANE=v0.22.1

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -x "$GO" ]; then
  echo "crane-tool.sh: no Go toolchain (looked for go on PATH and /usr/local/go/bin/go);" \
    "install Go or set GO=/path/to/go" >&2
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

ROOT="${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}/crane-$CRANE"
BIN="$ROOT/bin"
STAMP="$ROOT/complete"

if [ -f "$STAMP" ] && [ -x "$BIN/crane" ]; then
  echo "$BIN/crane"
  exit 0
fi
[ "${1:-}" != --built ] || exit 1

mkdir -p "$ROOT"
exec 9>"$ROOT/lock"
flock 9
if [ -f "$STAMP" ] && [ -x "$BIN/crane" ]; then
  echo "$BIN/crane"
  exit 0
fi
rm -f "$STAMP"
mkdir -p "$BIN"
echo "crane-tool.sh: building crane $CRANE" >&2
GOBIN="$BIN" "$GO" install "github.com/google/go-containerregistry/cmd/crane@$CRANE" >&2
touch "$STAMP"
echo "$BIN/crane"
