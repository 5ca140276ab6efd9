#!/usr/bin/env bash
# The demo: a local control plane, the hourglass CRDs and controller, a policy, and a pod that
# gets a grant, uses it and loses it at expiry - printed as a timeline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hack/cluster.sh up
export KUBECONFIG=$root/.cluster/kubeconfig
kubectl() { "$root/.cluster/bin/kubectl" "$@"; }
say() { printf '\n\033[1m%s  %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
ns=demo

say "Installing the CRDs"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established -f crds/ --timeout=60s >/dev/null

say "Starting the hourglass controller (log: .cluster/demo-controller.log)"
node src/main.ts >.cluster/demo-controller.log 2>&1 &
controller=$!
cleanup() {
  kill "$controller" 2>/dev/null || true
  wait "$controller" 2>/dev/null || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
until grep -q '"Started controller"' .cluster/demo-controller.log; do
  kill -0 "$controller" 2>/dev/null || { cat .cluster/demo-controller.log; exit 1; }
  sleep 0.3
done

say "A namespace with the service account etl, the Secret orders-db, and a pod of etl"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create serviceaccount etl --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create secret generic orders-db --from-literal=password=s3cret --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" run etl-7xk2p --image=busybox --overrides='{"spec":{"serviceAccountName":"etl","nodeName":"kwok-node-0"}}' >/dev/null
can_i() { kubectl -n "$ns" auth can-i get secret/orders-db --as="system:serviceaccount:$ns:etl" 2>/dev/null || true; }
say "Before any request, can etl read orders-db? $(can_i)"

say "The policy (examples/access-policy.yaml)"
sed "s/namespace: batch/namespace: $ns/" examples/access-policy.yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" get accesspolicy

say "The AccessRequest, with a 20 s ttl (examples/access-request.yaml)"
sed "s/namespace: batch/namespace: $ns/; s/ttl: 15m/ttl: 20s/" examples/access-request.yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Granted ar/etl-read-orders --timeout=60s >/dev/null
kubectl -n "$ns" get ar -o wide
say "Granted: can etl read orders-db? $(can_i)   (list all secrets? $(kubectl -n "$ns" auth can-i list secrets --as="system:serviceaccount:$ns:etl" 2>/dev/null || true))"
say "The grant's objects"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass

say "Waiting for expiry"
while [ "$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.phase}')" = Granted ]; do printf '.'; sleep 1; done
echo
kubectl -n "$ns" get ar -o wide
say "Expired: can etl read orders-db? $(can_i)"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass 2>&1 | sed 's/^/  /'
say "Events"
kubectl -n "$ns" get events --field-selector involvedObject.kind=AccessRequest -o custom-columns=REASON:.reason,MESSAGE:.note,MSG:.message
say "Audit log (grant events)"
grep '"audit":true' .cluster/demo-controller.log | grep -E '"event":"grant\.' | cut -c1-220
