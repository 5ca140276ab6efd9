#!/usr/bin/env bash
# Every test: typecheck, lint, then unit and integration tests in one mocha run against the local
# cluster, which this script starts (building what is missing) and stops again, unless it was
# already running. Run through `npm test` so that npm scripts use Node 24.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

npm run -s typecheck
npm run -s lint

hack/build.sh   # everything the tests use, helm included; cached after the first run

started=0
if ! hack/cluster.sh status >/dev/null 2>&1; then
  hack/cluster.sh up
  started=1
fi
stop() { if [ "$started" = 1 ]; then hack/cluster.sh down; fi; }
trap stop EXIT
export KUBECONFIG=$root/.cluster/kubeconfig
# The CRDs first: every controller a test starts needs them to sync its caches.
.cluster/bin/kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
.cluster/bin/kubectl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

node test/run.ts 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'
