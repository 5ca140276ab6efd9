#!/usr/bin/env bash
# The local Kubernetes control plane for development, tests, the demo and benchmarks.
#   hack/cluster.sh up       build what is missing, start etcd, kube-apiserver, kube-controller-manager,
#                            kube-scheduler and kwok with one fake Node; write .cluster/kubeconfig
#   hack/cluster.sh down     stop what `up` started (by pid) and remove .cluster/
#   hack/cluster.sh status   say what runs and where
#   hack/cluster.sh stop|start|restart COMPONENT [FLAG...]
#                            stop one component (SIGTERM; --kill for SIGKILL) or start it again on the same
#                            ports, data and certificates; extra flags go to that start only (e.g.
#                            `restart kube-apiserver --watch-cache=false`); start waits until it is ready
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
  # Appends: a component restarted by `restart` keeps the log of its earlier runs.
  setsid "$@" >>"$state/logs/$name.log" 2>&1 < /dev/null &
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

endpoint() { sed -n "s/^$1=//p" "$state/endpoints"; }
port_of() { local url; url=$(endpoint "$1"); echo "${url##*:}"; }

start_etcd() { # extra flags...
  local client peer
  client=$(port_of ETCD); peer=$(port_of ETCD_PEER)
  start etcd "$(bin_path etcd)" --name local --data-dir "$state/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "local=http://127.0.0.1:$peer" --listen-metrics-urls "" --log-level warn "$@"
  wait_for "etcd health" etcd 30 sh -c "curl -sf $(endpoint ETCD)/health | grep -q '\"health\":\"true\"'"
  log "etcd ready on $(endpoint ETCD)"
}

start_kube-apiserver() { # extra flags...
  local pki=$state/pki
  start kube-apiserver "$(bin_path kube-apiserver)" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$(port_of APISERVER)" \
    --endpoint-reconciler-type=none --etcd-servers="$(endpoint ETCD)" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/service-account.pub" \
    --service-account-signing-key-file="$pki/service-account.key" \
    --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true --profiling=false \
    --enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultStorageClass,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy,ResourceQuota \
    "$@"
  wait_for "kube-apiserver /readyz" kube-apiserver 60 kubectl_ get --raw /readyz
  log "kube-apiserver ready at $(endpoint APISERVER)"
}

start_kube-controller-manager() { # extra flags...
  local pki=$state/pki
  start kube-controller-manager "$(bin_path kube-controller-manager)" \
    --kubeconfig="$state/controller-manager.kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 \
    --service-account-private-key-file="$pki/service-account.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=true --controllers='*' "$@"
}

start_kube-scheduler() { # extra flags...
  start kube-scheduler "$(bin_path kube-scheduler)" \
    --kubeconfig="$state/scheduler.kubeconfig" --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 "$@"
}

start_kwok() { # extra flags...
  start kwok "$(bin_path kwok)" --kubeconfig="$state/kwok.kubeconfig" --manage-all-nodes=true \
    --node-ip=127.0.0.1 --node-lease-duration-seconds=40 --server-address=127.0.0.1:0 "$@"
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
  printf 'ETCD=http://127.0.0.1:%s\nETCD_PEER=http://127.0.0.1:%s\nAPISERVER=%s\n' \
    "$etcd_port" "$etcd_peer" "$server" >"$state/endpoints"

  kubeconfig admin "$server" >"$state/kubeconfig"
  chmod 600 "$state/kubeconfig"
  kubeconfig controller-manager "$server" >"$state/controller-manager.kubeconfig"
  kubeconfig scheduler "$server" >"$state/scheduler.kubeconfig"
  kubeconfig kwok "$server" >"$state/kwok.kubeconfig"
  start_etcd
  start_kube-apiserver
  start_kube-controller-manager
  start_kube-scheduler
  start_kwok

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

stop_component() { # name [KILL|TERM]
  local c=$1 signal=${2:-TERM} pid
  pid=$(pid_of "$c")
  [ -n "$pid" ] || return 0
  kill -"$signal" "$pid" 2>/dev/null || { rm -f "$state/pids/$c"; return 0; }
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$state/pids/$c"
  log "Stopped $c (pid $pid, SIG$signal)"
}

down() {
  local i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do stop_component "${components[$i]}"; done
  rm -rf "$state"
}

known_component() {
  local c
  for c in "${components[@]}"; do [ "$c" = "$1" ] && return 0; done
  echo "unknown component '$1' (one of: ${components[*]})" >&2
  exit 2
}

one() { # stop|start|restart component [--kill] [flags...]
  local action=$1 c=${2:-}
  known_component "$c"
  shift 2
  [ -f "$state/endpoints" ] || { echo "Cluster is down (no $state/endpoints): run up first" >&2; exit 1; }
  local signal=TERM
  if [ "${1:-}" = --kill ]; then signal=KILL; shift; fi
  case "$action" in
    stop) stop_component "$c" "$signal" ;;
    start) alive "$c" && { log "$c already runs (pid $(pid_of "$c"))"; return 0; }; "start_$c" "$@" ;;
    restart) stop_component "$c" "$signal"; "start_$c" "$@" ;;
  esac
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
  stop|start|restart) one "$@" ;;
  *) echo "usage: $0 up|down|status|stop COMPONENT [--kill]|start COMPONENT [FLAG...]|restart COMPONENT [--kill] [FLAG...]" >&2; exit 2 ;;
esac
