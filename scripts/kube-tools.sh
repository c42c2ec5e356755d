#!/usr/bin/env bash
# Build the Kubernetes test bed's binaries from published Go modules at pinned versions:
#   scripts/kube-tools.sh            -> prints the bin directory (last line of stdout)
#   scripts/kube-tools.sh --built    -> the same if the build is finished, else exit 1, no build
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok and kwokctl
# land in ${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}/kube-<versions>/bin, with kwok's
# kustomize stages beside them in share/. A stamp written last marks a finished build, so a
# warm run does nothing and an interrupted one is redone. Go output and progress go to stderr.
# Versions are exact: the module proxy here refuses version lists for some modules, and a
# query like @latest would make the test bed drift.
set -euo pipefail

K8S=v1.36.4
K8S_STAGING=v0.36.4 # k8s.io/kubernetes's staging modules are published as v0.<minor>.<patch>
ETCD=v3.6.10
KWOK=v0.8.0

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -x "$GO" ]; then
  echo "kube-tools.sh: no Go toolchain (looked for go on PATH and /usr/local/go/bin/go);" \
    "install Go >= 1.26 or set GO=/path/to/go" >&2
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

ROOT="${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}/kube-$K8S-etcd-$ETCD-kwok-$KWOK"
BIN="$ROOT/bin"
STAMP="$ROOT/complete"
TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)

built() {
  [ -f "$STAMP" ] || return 1
  for tool in "${TOOLS[@]}"; do [ -x "$BIN/$tool" ] || return 1; done
}

if built; then
  echo "$BIN"
  exit 0
fi
[ "${1:-}" != --built ] || exit 1

mkdir -p "$ROOT"
# Two callers at once (two checkouts, a CI retry) would race on the same wrapper modules.
exec 9>"$ROOT/lock"
flock 9
if built; then
  echo "$BIN"
  exit 0
fi
rm -f "$STAMP"
rm -rf "$BIN" "$ROOT/src" "$ROOT/share"
mkdir -p "$BIN" "$ROOT/src/k8s" "$ROOT/src/etcd"
START=$SECONDS
step() { echo "kube-tools.sh: [$((SECONDS - START))s] $*" >&2; }

build_kubernetes() {
  cd "$ROOT/src/k8s"
  printf 'module local/k8s\n\ngo 1.26\n' >go.mod
  # k8s.io/kubernetes replaces its staging modules with ./staging/... paths, which do not
  # exist in the published module: point each at its published version instead.
  local gomod
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@$K8S" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || { echo "kube-tools.sh: no go.mod for k8s.io/kubernetes@$K8S" >&2; exit 1; }
  sed -n 's|^[[:space:]]*\(k8s.io/[^[:space:]]*\) => \./staging/.*$|\1|p' "$gomod" |
    while read -r mod; do echo "replace $mod => $mod $K8S_STAGING"; done >>go.mod
  local pkgs=() tool
  for tool in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    pkgs+=("k8s.io/kubernetes/cmd/$tool")
  done
  "$GO" get "${pkgs[@]/%/@$K8S}" >&2
  local minor=${K8S#v1.}
  minor=${minor%%.*}
  # kwokctl reads these versions to choose the flags it passes each component.
  local v=k8s.io/component-base/version
  "$GO" build -trimpath -o "$BIN/" -ldflags "-s -w -X $v.gitVersion=$K8S -X $v.gitMajor=1 \
    -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z" \
    "${pkgs[@]}" >&2
}

build_etcd() {
  cd "$ROOT/src/etcd"
  printf 'module local/etcd\n\ngo 1.26\n' >go.mod
  local m mods=()
  for m in server api client/pkg client pkg; do mods+=("go.etcd.io/etcd/$m/v3@$ETCD"); done
  "$GO" get "${mods[@]}" >&2
  "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kwok() {
  GOBIN="$BIN" "$GO" install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK" >&2
  # The tests apply kwok's own stages; copy them out of the module cache, which may be cleaned.
  local dir
  dir=$("$GO" mod download -json "sigs.k8s.io/kwok@$KWOK" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  mkdir -p "$ROOT/share/kwok"
  cp -r "$dir/kustomize" "$ROOT/share/kwok/"
  chmod -R u+w "$ROOT/share/kwok"
}

step "building Kubernetes $K8S, etcd $ETCD, kwok $KWOK (about 18 minutes cold on 2 cores)"
(build_kubernetes)
step "building etcd"
(build_etcd)
step "building kwok"
(build_kwok)
for tool in "${TOOLS[@]}"; do
  [ -x "$BIN/$tool" ] || { echo "kube-tools.sh: $tool was not built" >&2; exit 1; }
done
printf 'kubernetes %s\netcd %s\nkwok %s\n' "$K8S" "$ETCD" "$KWOK" >"$STAMP"
step "done"
echo "$BIN"
