#!/usr/bin/env bash
# Build the Kubeflow / serving test bed from published Go modules at pinned versions:
#   scripts/kubeflow-tools.sh          -> prints the test bed's directory (last line of stdout)
#   scripts/kubeflow-tools.sh --built  -> the same if the build is finished, else exit 1, no build
# The directory, ${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}/kubeflow-<versions>/, holds
#   bin/jobset, bin/trainer-controller-manager, bin/training-operator   the controllers
#   crds/{jobset,trainer,training-operator,kserve}/*.yaml               the real CRDs
#   runtimes/torch_distributed.yaml     Trainer's torch-distributed ClusterTrainingRuntime
# The CRDs and the runtime are copied out of the module cache, which may be cleaned later.
# KServe is not built (its controller needs Knative or a gateway): only its CRD is taken.
# A stamp written last marks a finished build. Versions are exact: the module proxy here
# refuses the version lists of jobset and kserve, so nothing may ask for @latest.
set -euo pipefail

JOBSET=v0.12.0
TRAINER=v2.3.0
TRAINING_OPERATOR=v1.9.0
KSERVE=v0.20.0

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -x "$GO" ]; then
  echo "kubeflow-tools.sh: no Go toolchain (looked for go on PATH and /usr/local/go/bin/go);" \
    "install Go >= 1.26 or set GO=/path/to/go" >&2
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

CACHE="${OCIBUILD_TOOLS_CACHE:-$HOME/.cache/ocibuild-tools}"
ROOT="$CACHE/kubeflow-jobset-$JOBSET-trainer-$TRAINER-tfop-$TRAINING_OPERATOR-kserve-$KSERVE"
BIN="$ROOT/bin"
STAMP="$ROOT/complete"
TOOLS=(jobset trainer-controller-manager training-operator)

built() {
  [ -f "$STAMP" ] || return 1
  for tool in "${TOOLS[@]}"; do [ -x "$BIN/$tool" ] || return 1; done
  [ -f "$ROOT/runtimes/torch_distributed.yaml" ]
}

if built; then
  echo "$ROOT"
  exit 0
fi
[ "${1:-}" != --built ] || exit 1

mkdir -p "$ROOT"
# Two callers at once (two checkouts, a CI retry) would race on the same wrapper modules.
exec 9>"$ROOT/lock"
flock 9
if built; then
  echo "$ROOT"
  exit 0
fi
rm -f "$STAMP"
rm -rf "$BIN" "$ROOT/src" "$ROOT/crds" "$ROOT/runtimes"
mkdir -p "$BIN" "$ROOT/src" "$ROOT/crds" "$ROOT/runtimes"
START=$SECONDS
step() { echo "kubeflow-tools.sh: [$((SECONDS - START))s] $*" >&2; }

# The module's directory in the module cache (downloading it if needed).
module_dir() {
  local dir
  dir=$("$GO" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$dir" ] || { echo "kubeflow-tools.sh: no module directory for $1" >&2; exit 1; }
  echo "$dir"
}

# Build one package through a wrapper module that requires its module at an exact version
# (go install pkg@v would ask the proxy to resolve the module, which it refuses for some).
build_wrapped() {
  local name=$1 module=$2 version=$3 pkg=$4
  mkdir -p "$ROOT/src/$name"
  cd "$ROOT/src/$name"
  printf 'module local/%s\n\ngo 1.26\n\nrequire %s %s\n' "$name" "$module" "$version" >go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
  "$GO" mod tidy >&2
  "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/$name" "$pkg" >&2
}

copy_crds() {
  local dest="$ROOT/crds/$1" dir=$2
  shift 2
  mkdir -p "$dest"
  local f
  for f in "$@"; do
    [ -f "$dir/$f" ] || { echo "kubeflow-tools.sh: no $f in $dir" >&2; exit 1; }
    cp "$dir/$f" "$dest/"
  done
  chmod -R u+w "$dest"
}

step "building JobSet $JOBSET, Trainer $TRAINER, Training Operator $TRAINING_OPERATOR" \
  "(11 minutes on 2 cores with kube-tools.sh's Go caches, 27 with none)"
(build_wrapped jobset sigs.k8s.io/jobset "$JOBSET" sigs.k8s.io/jobset)
step "building the Trainer controller"
(build_wrapped trainer-controller-manager github.com/kubeflow/trainer/v2 "$TRAINER" \
  github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager)
step "building the Training Operator"
(build_wrapped training-operator github.com/kubeflow/training-operator "$TRAINING_OPERATOR" \
  github.com/kubeflow/training-operator/cmd/training-operator.v1)

step "copying the CRDs"
dir=$(module_dir "sigs.k8s.io/jobset@$JOBSET")
copy_crds jobset "$dir/config/components/crd/bases" jobset.x-k8s.io_jobsets.yaml
dir=$(module_dir "github.com/kubeflow/trainer/v2@$TRAINER")
copy_crds trainer "$dir/manifests/base/crds" trainer.kubeflow.org_trainjobs.yaml \
  trainer.kubeflow.org_trainingruntimes.yaml trainer.kubeflow.org_clustertrainingruntimes.yaml
cp "$dir/manifests/base/runtimes/torch_distributed.yaml" "$ROOT/runtimes/"
chmod -R u+w "$ROOT/runtimes"
dir=$(module_dir "github.com/kubeflow/training-operator@$TRAINING_OPERATOR")
copy_crds training-operator "$dir/manifests/base/crds" kubeflow.org_pytorchjobs.yaml \
  kubeflow.org_tfjobs.yaml
dir=$(module_dir "github.com/kserve/kserve@$KSERVE")
copy_crds kserve "$dir/config/crd/full" serving.kserve.io_inferenceservices.yaml

for tool in "${TOOLS[@]}"; do
  [ -x "$BIN/$tool" ] || { echo "kubeflow-tools.sh: $tool was not built" >&2; exit 1; }
done
printf 'jobset %s\ntrainer %s\ntraining-operator %s\nkserve %s\n' \
  "$JOBSET" "$TRAINER" "$TRAINING_OPERATOR" "$KSERVE" >"$STAMP"
step "done"
echo "$ROOT"
