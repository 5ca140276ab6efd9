#!/usr/bin/env bash
# Builds the local Kubernetes control plane from the Go module proxy into a cache outside git,
# skipping every component whose pinned version is already built.
#   hack/build.sh [component...]   (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.sh"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
all=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
components=("${@:-${all[@]}}")

kube_ldflags() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local folders,
# so it only builds inside a wrapper module that replaces each of them with its published version.
prepare_kubernetes_module() {
  local dir=$here/tools/kubernetes
  [ -f "$dir/go.mod" ] && return 0
  echo "Generating the wrapper module $dir/go.mod"
  local upstream; upstream=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | jq -r .GoMod)
  (
    cd "$dir"
    go mod init hourglass.dev/hack/tools/kubernetes >/dev/null 2>&1
    go mod edit -go="$(go mod edit -json "$upstream" | jq -r .Go)"
    go mod edit -json "$upstream" | jq -r '.Godebug // [] | .[] | "\(.Key)=\(.Value)"' |
      while read -r kv; do go mod edit -godebug="$kv"; done
    go mod edit -json "$upstream" | jq -r '.Replace[] | select(.New.Path | startswith("./staging/")) | .Old.Path' |
      while read -r staging; do go mod edit -replace="$staging=$staging@$KUBERNETES_STAGING_VERSION"; done
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
  )
}

build_in_module() { # module-dir output package [ldflags]
  (cd "$1" && go build -trimpath -tags selinux,notest -ldflags "${4:--s -w}" -o "$2" "$3")
}

build() {
  local name=$1 out; out=$(bin_path "$name")
  if [ -x "$out" ]; then echo "Cached $name at $out"; return 0; fi
  mkdir -p "$(dirname "$out")"
  local start=$SECONDS
  echo "Building $name ..."
  case "$name" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl)
      prepare_kubernetes_module
      build_in_module "$here/tools/kubernetes" "$out.tmp" "k8s.io/kubernetes/cmd/$name" "$(kube_ldflags)" ;;
    etcd)
      [ -f "$here/tools/etcd/go.mod" ] || (cd "$here/tools/etcd" && go mod init hourglass.dev/hack/tools/etcd >/dev/null 2>&1 &&
        go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION")
      build_in_module "$here/tools/etcd" "$out.tmp" go.etcd.io/etcd/server/v3 ;;
    kwok)
      [ -f "$here/tools/kwok/go.mod" ] || (cd "$here/tools/kwok" && go mod init hourglass.dev/hack/tools/kwok >/dev/null 2>&1 &&
        go mod edit -require="sigs.k8s.io/kwok@$KWOK_VERSION")
      build_in_module "$here/tools/kwok" "$out.tmp" sigs.k8s.io/kwok/cmd/kwok \
        "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" ;;
    helm)
      [ -f "$here/tools/helm/go.mod" ] || (cd "$here/tools/helm" && go mod init hourglass.dev/hack/tools/helm >/dev/null 2>&1 &&
        go mod edit -require="helm.sh/helm/v3@$HELM_VERSION")
      build_in_module "$here/tools/helm" "$out.tmp" helm.sh/helm/v3/cmd/helm \
        "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    *) echo "unknown component $name" >&2; return 1 ;;
  esac
  mv "$out.tmp" "$out"
  echo "Built $name in $((SECONDS - start)) s"
}

total=$SECONDS
for c in "${components[@]}"; do build "$c"; done
echo "Control plane binaries ready in $((SECONDS - total)) s (cache: $HOURGLASS_CACHE)"
