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
kubectl -n "$ns" create role request-access --verb=create,get,patch --resource=accessrequests.hourglass.dev \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create rolebinding etl-request-access --role=request-access --serviceaccount="$ns:etl" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
token=$(kubectl -n "$ns" create token etl --bound-object-kind=Pod --bound-object-name=etl-7xk2p)
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
as_pod() { "$root/.cluster/bin/kubectl" --kubeconfig=/dev/null --server="$server" \
  --certificate-authority="$root/.cluster/pki/ca.crt" --token="$token" "$@"; }
sed "s/namespace: batch/namespace: $ns/; s/ttl: 15m/ttl: 20s/" examples/access-request.yaml | as_pod apply -f - >/dev/null
kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Granted ar/etl-read-orders --timeout=60s >/dev/null
kubectl -n "$ns" get ar -o wide
say "Granted to $(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.spec.requester.username} (pod {.spec.requester.extra.authentication\.kubernetes\.io/pod-name[0]})')"
say "Can etl read orders-db? $(can_i)   (list all secrets? $(kubectl -n "$ns" auth can-i list secrets --as="system:serviceaccount:$ns:etl" 2>/dev/null || true))"
say "The grant's objects"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass
first=$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id}')

say "The pod asks for a renewal: a fresh grant, the old one revoked"
as_pod -n "$ns" annotate ar etl-read-orders hourglass.dev/renew="$(date +%s)" --overwrite >/dev/null
until [ "$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id}')" != "$first" ]; do sleep 0.3; done
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
grep '"audit":true' .cluster/demo-controller.log | grep "\"namespace\":\"$ns\"" | grep -E '"event":"grant\.' | jq -c '{ts, event, reason, grantId, expiresAt}'
