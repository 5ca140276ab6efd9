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
kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" create serviceaccount etl --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create secret generic orders-db --from-literal=password=s3cret --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" run etl-7xk2p --image=busybox --overrides='{"spec":{"serviceAccountName":"etl","nodeName":"kwok-node-0"}}' >/dev/null
can_i() { kubectl -n "$ns" auth can-i get secret/orders-db --as="system:serviceaccount:$ns:etl" 2>/dev/null || true; }
say "Before any request, can etl read orders-db? $(can_i)"

say "The policy (examples/access-policy.yaml)"
sed "s/namespace: batch/namespace: $ns/" examples/access-policy.yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" get accesspolicy

say "The pod asks for access itself, with a service-account token bound to it (requesters.self)"
kubectl -n "$ns" create role request-access --verb=create,get,list,watch,patch --resource=accessrequests.hourglass.dev \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create rolebinding etl-request-access --role=request-access --serviceaccount="$ns:etl" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create token etl --bound-object-kind=Pod --bound-object-name=etl-7xk2p >.cluster/demo-pod-token
# Acting as the pod: kwok pods run no processes, so the in-pod client runs here with the pod's
# bound token and the downward-API variables a real pod would have.
in_pod() { POD_NAME=etl-7xk2p POD_NAMESPACE="$ns" HOURGLASS_TOKEN_FILE="$root/.cluster/demo-pod-token" bin/hourglass "$@"; }
in_pod request etl-read-orders --purpose "OPS-1234 nightly read of the orders table" --ttl 20s \
  --rule 'get secrets/orders-db' --token-audience orders-api --token-action orders:read \
  --token-target postgres://orders-db/orders --wait --token-out .cluster/demo-grant-token
echo "  the grant token is in .cluster/demo-grant-token (mode 0600)"
kubectl -n "$ns" get ar -o wide
say "Granted to $(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.spec.requester.username} (pod {.spec.requester.extra.authentication\.kubernetes\.io/pod-name[0]})')"
say "Can etl read orders-db? $(can_i)   (list all secrets? $(kubectl -n "$ns" auth can-i list secrets --as="system:serviceaccount:$ns:etl" 2>/dev/null || true))"
say "The grant's objects"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass
first=$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id}')

say "The pod asks for a renewal: a fresh grant, the old one revoked"
in_pod renew etl-read-orders --wait --token-out .cluster/demo-grant-token
echo "  grant $first -> $(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id} (renewals: {.status.renewals}, expires {.status.grant.expiresAt})')"
say "Can etl read orders-db? $(can_i)"

say "Waiting for expiry"
while [ "$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.phase}')" = Granted ]; do printf '.'; sleep 1; done
echo
kubectl -n "$ns" get ar -o wide
say "Expired: can etl read orders-db? $(can_i)"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass 2>&1 | sed 's/^/  /'
say "Events"
kubectl -n "$ns" get events.events.k8s.io --field-selector regarding.kind=AccessRequest -o custom-columns=REASON:.reason,NOTE:.note
say "Audit log (grant events)"
grep '"audit":true' .cluster/demo-controller.log | grep "\"namespace\":\"$ns\"" | grep -E '"event":"grant\.' |
  jq -c '{ts, event, reason, grantId, expiresAt}' || echo "  (none in this controller's log: another controller handled the request)"
