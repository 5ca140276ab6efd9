#!/usr/bin/env bash
# The demo: a local control plane, the hourglass CRDs and controller, a policy, and a batch Job
# whose pod asks for access, uses it, renews it, completes and so loses it - printed as a timeline;
# then the same with annotations alone (zero-code adoption), from the gate to the revocation.
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
node --optimize-for-size src/main.ts >.cluster/demo-controller.log 2>&1 &
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

say "A namespace with the service account etl and the Secret orders-db"
kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl -n "$ns" create serviceaccount etl --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create secret generic orders-db --from-literal=password=s3cret --dry-run=client -o yaml | kubectl apply -f - >/dev/null
can_i() { kubectl -n "$ns" auth can-i get secret/orders-db --as="system:serviceaccount:$ns:etl" 2>/dev/null || true; }
say "Before any request, can etl read orders-db? $(can_i)"

say "The policy (examples/access-policy.yaml)"
sed "s/namespace: batch/namespace: $ns/" examples/access-policy.yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" get accesspolicy
kubectl -n "$ns" create role request-access --verb=create,get,list,watch,patch --resource=accessrequests.hourglass.dev \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$ns" create rolebinding etl-request-access --role=request-access --serviceaccount="$ns:etl" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null

# kwok pods run no processes and a Job's pod would complete at once: the scheduling gate holds the
# pod unscheduled while the demo acts as it, and lifting the gate lets kwok run and finish it.
say "The batch Job nightly-orders, its pod held while it works"
kubectl -n "$ns" apply -f - >/dev/null <<JOB
apiVersion: batch/v1
kind: Job
metadata: {name: nightly-orders}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: etl
      restartPolicy: Never
      schedulingGates: [{name: demo.hourglass.dev/working}]
      containers: [{name: report, image: busybox}]
JOB
pod=""
until [ -n "$pod" ]; do
  pod=$(kubectl -n "$ns" get pods -l batch.kubernetes.io/job-name=nightly-orders -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  sleep 0.3
done
kubectl -n "$ns" get job,pod
kubectl -n "$ns" create token etl --bound-object-kind=Pod --bound-object-name="$pod" >.cluster/demo-pod-token
# Acting as the pod: the in-pod client runs here with a token bound to the Job's pod and the
# downward-API variables a real pod would have.
in_pod() { POD_NAME=$pod POD_NAMESPACE="$ns" HOURGLASS_TOKEN_FILE="$root/.cluster/demo-pod-token" bin/hourglass "$@"; }
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
as_pod() {
  kubectl --kubeconfig=/dev/null --server="$server" --certificate-authority="$root/.cluster/pki/ca.crt" \
    --token="$(cat .cluster/demo-pod-token)" -n "$ns" "$@" 2>&1 | head -1
}
say "Before its request, the pod reads orders-db: $(as_pod get secret orders-db -o name)"

say "The Job's pod asks for access for its Job, with its own bound token (requesters.self)"
in_pod request etl-read-orders --job nightly-orders --purpose "OPS-1234 nightly read of the orders table" --ttl 1m \
  --rule 'get secrets/orders-db' --token-audience orders-api --token-action orders:read \
  --token-target postgres://orders-db/orders --wait --token-out .cluster/demo-grant-token
echo "  the grant token is in .cluster/demo-grant-token (mode 0600)"
kubectl -n "$ns" get ar -o wide
say "Granted to $(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.spec.requester.username} (pod {.spec.requester.extra.authentication\.kubernetes\.io/pod-name[0]}), bound to Job UID {.status.subject.jobUID}')"
say "Can etl read orders-db? $(can_i)   (list all secrets? $(kubectl -n "$ns" auth can-i list secrets --as="system:serviceaccount:$ns:etl" 2>/dev/null || true))"
say "The pod uses it: $(as_pod get secret orders-db -o name)"
say "The grant's objects"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass
first=$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id}')

say "The pod asks for a renewal: a fresh grant, the old one revoked"
in_pod renew etl-read-orders --wait --token-out .cluster/demo-grant-token
echo "  grant $first -> $(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.grant.id} (renewals: {.status.renewals}, expires {.status.grant.expiresAt})')"
say "Can etl read orders-db? $(can_i)"

http=$(grep -o '"Listening on http://[^"]*' .cluster/demo-controller.log | head -1 | sed 's/.*on //')
say "The controller's metrics (curl $http/metrics)"
curl -fsS "$http/metrics" | grep -E '^hourglass_(grants_active|grants_issued_total|grants_revoked_total|decisions_total|grant_latency_seconds_(count|sum)|revocation_lag_seconds_(count|sum))' | sed 's/^/  /'

say "The work is done: the gate is lifted, kwok runs the pod to completion"
kubectl -n "$ns" patch pod "$pod" --type=json -p '[{"op":"remove","path":"/spec/schedulingGates"}]' >/dev/null
printf '  waiting for the Job to complete and the grant to be revoked '
while [ "$(kubectl -n "$ns" get ar etl-read-orders -o jsonpath='{.status.phase}')" = Granted ]; do printf '.'; sleep 0.5; done
echo
kubectl -n "$ns" get job,pod
kubectl -n "$ns" get ar -o wide
say "Job finished: can etl read orders-db? $(can_i)   the pod reads it: $(as_pod get secret orders-db -o name)"
kubectl -n "$ns" get secret,role,rolebinding -l app.kubernetes.io/managed-by=hourglass 2>&1 | sed 's/^/  /'
say "Metrics after the revocation"
curl -fsS "$http/metrics" | grep -E '^hourglass_(grants_active|grants_revoked_total|revocation_lag_seconds_(count|sum))' | sed 's/^/  /'
say "Zero-code adoption: the Job of examples/job-annotated.yaml, 5 lines of metadata, no init container"
# The demo's own gate again holds the pod once hourglass has lifted its own, so that kwok does not
# finish it before it is shown.
sed -e "s/namespace: batch/namespace: $ns/" \
  -e 's/^      restartPolicy: Never$/      restartPolicy: Never\n      schedulingGates: [{name: demo.hourglass.dev\/working}]/' \
  examples/job-annotated.yaml | kubectl apply -f - >/dev/null
grep -E '^ +hourglass\.dev/' examples/job-annotated.yaml | sed 's/^ */  /'
job=nightly-orders-annotated
apod=""
until [ -n "$apod" ]; do
  apod=$(kubectl -n "$ns" get pods -l batch.kubernetes.io/job-name=$job -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  sleep 0.3
done
say "Admitted with the gate hourglass.dev/grant and the grant Secret mounted in every container"
kubectl -n "$ns" get pod "$apod" -o jsonpath='  volume: {.spec.volumes[?(@.name=="hourglass-grant")].secret}{"\n"}  mount:  {.spec.containers[0].volumeMounts[?(@.name=="hourglass-grant")]}{"\n"}'
printf '  waiting for hourglass to ask for the Job as its pod and lift the gate '
until [ "$(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.status.phase}' 2>/dev/null)" = Granted ]; do printf '.'; sleep 0.3; done
until ! kubectl -n "$ns" get pod "$apod" -o jsonpath='{.spec.schedulingGates[*].name}' | grep -q hourglass.dev/grant; do printf '.'; sleep 0.3; done
echo
kubectl -n "$ns" get ar "job-$job" -o wide
echo "  requester: $(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.spec.requester.username} (pod {.spec.requester.extra.authentication\.kubernetes\.io/pod-name[0]})')"
echo "  gates left: $(kubectl -n "$ns" get pod "$apod" -o jsonpath='{.spec.schedulingGates[*].name}') (the demo's own)"
echo "  files in /var/run/hourglass: $(kubectl -n "$ns" get secret "job-$job-grant" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')"
say "The Job asks for a renewal on itself: kubectl annotate job/$job hourglass.dev/renew=now"
first=$(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.status.grant.id}')
kubectl -n "$ns" annotate job "$job" hourglass.dev/renew=now >/dev/null
until [ "$(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.status.renewals}')" = 1 ]; do sleep 0.3; done
echo "  grant $first -> $(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.status.grant.id}'), the Secret's grantId: $(kubectl -n "$ns" get secret "job-$job-grant" -o jsonpath='{.data.grantId}' | base64 -d)"
say "The work is done: kwok runs the pod to completion, the grant is revoked"
kubectl -n "$ns" patch pod "$apod" --type=json -p '[{"op":"remove","path":"/spec/schedulingGates"}]' >/dev/null
until [ "$(kubectl -n "$ns" get ar "job-$job" -o jsonpath='{.status.phase}')" = Revoked ]; do sleep 0.3; done
kubectl -n "$ns" get job "$job"
kubectl -n "$ns" get ar "job-$job" -o wide

say "Events"
kubectl -n "$ns" get events.events.k8s.io --field-selector regarding.kind=AccessRequest -o custom-columns=REASON:.reason,NOTE:.note
say "Audit log (grant events)"
grep '"audit":true' .cluster/demo-controller.log | grep "\"namespace\":\"$ns\"" | grep -E '"event":"grant\.' |
  jq -c '{ts, event, reason, grantId, expiresAt}' || echo "  (none in this controller's log: another controller handled the request)"
