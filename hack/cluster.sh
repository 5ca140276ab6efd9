#!/usr/bin/env bash
# The local Kubernetes control plane for development, tests, the demo and benchmarks.
#   hack/cluster.sh up       build what is missing, start etcd, kube-apiserver, kube-controller-manager,
#                            kube-scheduler and kwok with one fake Node; write .cluster/kubeconfig
#   hack/cluster.sh down     stop what `up` started (by pid) and remove .cluster/
#   hack/cluster.sh status   say what runs and where
# Everything listens on 127.0.0.1 only. State lives in .cluster/ (git-ignored); .cluster/bin holds the
# matching kubectl and helm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/versions.sh"
state=${HOURGLASS_CLUSTER_DIR:-$root/.cluster}
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pid_of() { cat "$state/pids/$1" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! ss -Htln "sport = :$port" | grep -q .; then echo "$port"; return; fi
  done
}

start() { # name command...
  local name=$1; shift
  setsid "$@" >"$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$state/pids/$name"
}

fail() {
  log "ERROR: $*"
  local c
  for c in "${components[@]}"; do
    [ -f "$state/logs/$c.log" ] && { echo "--- last lines of $state/logs/$c.log" >&2; tail -n 15 "$state/logs/$c.log" >&2; }
  done
  exit 1
}

wait_for() { # description component seconds command...
  local what=$1 component=$2 deadline=$((SECONDS + $3)); shift 3
  until "$@" >/dev/null 2>&1; do
    alive "$component" || fail "$component exited while waiting for $what"
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
    sleep 0.2
  done
}

pki() {
  local dir=$state/pki
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=hourglass-local-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  cert() { # name subject [subjectAltName]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$dir/$1.key" -out "$dir/$1.csr" 2>/dev/null
    local ext=$dir/$1.ext
    if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$3" >"$ext"
    else printf 'extendedKeyUsage=clientAuth\n' >"$ext"; fi
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
      -extfile "$ext" -out "$dir/$1.crt" 2>/dev/null
    rm -f "$dir/$1.csr" "$ext"
  }
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=kubernetes-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kwok "/O=system:masters/CN=kwok"
  # The serving certificate of a locally running hourglass controller (webhook, JWKS, introspection).
  cert hourglass "/CN=hourglass" "IP:127.0.0.1,DNS:localhost"
  openssl genrsa -out "$dir/service-account.key" 2048 2>/dev/null
  openssl rsa -in "$dir/service-account.key" -pubout -out "$dir/service-account.pub" 2>/dev/null
}

kubeconfig() { # identity server-url
  local dir=$state/pki
  cat <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: hourglass-local
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 "$dir/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$dir/$1.crt")
    client-key-data: $(base64 -w0 "$dir/$1.key")
contexts:
- name: hourglass-local
  context: {cluster: hourglass-local, user: $1}
current-context: hourglass-local
KUBECONFIG
}

kubectl_() { "$(bin_path kubectl)" --kubeconfig "$state/kubeconfig" "$@"; }

up() {
  if [ -f "$state/kubeconfig" ] && all_alive && kubectl_ get --raw /readyz >/dev/null 2>&1; then
    log "Cluster already up: KUBECONFIG=$state/kubeconfig"
    return 0
  fi
  [ -d "$state" ] && down
  "$here/build.sh" "${components[@]}" kubectl
  local t0=$SECONDS
  mkdir -p "$state/pids" "$state/logs" "$state/bin"
  local tool
  for tool in kubectl helm; do ln -sf "$(bin_path "$tool")" "$state/bin/$tool"; done
  pki
  local etcd_port etcd_peer api_port
  etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)
  local server=https://127.0.0.1:$api_port
  printf 'ETCD=http://127.0.0.1:%s\nAPISERVER=%s\n' "$etcd_port" "$server" >"$state/endpoints"

  start etcd "$(bin_path etcd)" --name local --data-dir "$state/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "local=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "" --log-level warn
  wait_for "etcd health" etcd 30 sh -c "curl -sf http://127.0.0.1:$etcd_port/health | grep -q '\"health\":\"true\"'"
  log "etcd ready on 127.0.0.1:$etcd_port"

  local pki=$state/pki
  start kube-apiserver "$(bin_path kube-apiserver)" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --endpoint-reconciler-type=none --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/service-account.pub" \
    --service-account-signing-key-file="$pki/service-account.key" \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --profiling=false \
    --enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultStorageClass,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy,ResourceQuota
  kubeconfig admin "$server" >"$state/kubeconfig"
  chmod 600 "$state/kubeconfig"
  wait_for "kube-apiserver /readyz" kube-apiserver 60 kubectl_ get --raw /readyz
  log "kube-apiserver ready at $server"

  kubeconfig controller-manager "$server" >"$state/controller-manager.kubeconfig"
  kubeconfig scheduler "$server" >"$state/scheduler.kubeconfig"
  kubeconfig kwok "$server" >"$state/kwok.kubeconfig"
  start kube-controller-manager "$(bin_path kube-controller-manager)" \
    --kubeconfig="$state/controller-manager.kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 \
    --service-account-private-key-file="$pki/service-account.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=true --controllers='*'
  start kube-scheduler "$(bin_path kube-scheduler)" \
    --kubeconfig="$state/scheduler.kubeconfig" --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0
  start kwok "$(bin_path kwok)" --kubeconfig="$state/kwok.kubeconfig" --manage-all-nodes=true \
    --node-ip=127.0.0.1 --node-lease-duration-seconds=40 --server-address=127.0.0.1:0

  kubectl_ apply -f - >/dev/null <<'NODE'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "5000"}
  capacity: {cpu: "32", memory: 256Gi, pods: "5000"}
NODE
  wait_for "Node kwok-node-0 Ready" kwok 30 sh -c \
    "'$(bin_path kubectl)' --kubeconfig '$state/kubeconfig' get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -q True"
  wait_for "ServiceAccount default/default" kube-controller-manager 30 kubectl_ -n default get serviceaccount default
  log "Cluster up in $((SECONDS - t0)) s: export KUBECONFIG=$state/kubeconfig"
}

all_alive() { local c; for c in "${components[@]}"; do alive "$c" || return 1; done; }

down() {
  local c pid i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    c=${components[$i]}
    pid=$(pid_of "$c")
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    log "Stopped $c (pid $pid)"
  done
  rm -rf "$state"
}

status() {
  if [ ! -d "$state" ]; then echo "Cluster is down (no $state)"; return 1; fi
  cat "$state/endpoints" 2>/dev/null || true
  local c up=0
  for c in "${components[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"; else echo "$c: NOT running"; up=1; fi
  done
  echo "KUBECONFIG=$state/kubeconfig"
  return $up
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
