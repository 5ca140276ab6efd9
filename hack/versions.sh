# The one place where the versions of the local control plane are pinned.
# Sourced by hack/build.sh and hack/cluster.sh.
KUBERNETES_VERSION=v1.37.2
KUBERNETES_STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.22.0

HOURGLASS_CACHE=${HOURGLASS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hourglass}

# bin_path COMPONENT -> where the built binary of the pinned version lives
bin_path() {
  local version
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl) version=$KUBERNETES_VERSION ;;
    etcd) version=$ETCD_VERSION ;;
    kwok) version=$KWOK_VERSION ;;
    helm) version=$HELM_VERSION ;;
    *) echo "unknown component $1" >&2; return 1 ;;
  esac
  echo "$HOURGLASS_CACHE/$1-$version/$1"
}
