// What hack/admission-flood.ts and the admission tests send and watch: an AccessRequest far over
// the schema's limits that a broad policy would make the controller decide access by access, and
// /healthz latencies while it is sent.
import { Worker } from 'node:worker_threads';
import { GROUP, VERSION } from '../../src/api/types.ts';

/**
 * ~0.6 MB: `apiGroups` entries of a served group x 3 resources x 8 verbs x 64 names, so that no
 * check stops early on an unknown resource.
 */
export function oversizedAccessRequest(namespace: string, name: string, podName: string, apiGroups = 30_000) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'AccessRequest',
    metadata: { name, namespace },
    spec: {
      subject: { podName },
      purpose: 'OPS-1 admission flood',
      ttl: '5m',
      permissions: [
        {
          apiGroups: Array.from({ length: apiGroups }, () => 'networking.k8s.io'),
          resources: ['ingresses', 'ingresses/status', 'networkpolicies'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
          resourceNames: Array.from({ length: 64 }, (_, i) => `orders-${i}`),
        },
      ],
    },
  };
}

/** A policy that allows every access, as broad platform policies do: nothing is refused early. */
export const allowEverything = { permissions: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] };

// Runs in a worker thread: the latencies are the controller's, not those of the event loop that
// serializes the flood.
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads');
const latencies = [];
let failures = 0;
let polling = true;
parentPort.once('message', () => (polling = false));
(async () => {
  // Unrecorded: the first fetch of a thread loads its HTTP client.
  await (await fetch(workerData.url)).arrayBuffer();
  parentPort.postMessage('ready');
  while (polling) {
    const started = performance.now();
    try {
      const response = await fetch(workerData.url, { signal: AbortSignal.timeout(60000) });
      await response.arrayBuffer();
      if (!response.ok) failures++;
    } catch {
      failures++;
    }
    const took = performance.now() - started;
    latencies.push(took);
    await new Promise((r) => setTimeout(r, Math.max(0, workerData.intervalMs - took)));
  }
  parentPort.postMessage({ latencies, failures });
})();
`;

/**
 * Polls `${opsUrl}/healthz` every intervalMs, from a worker thread, until stopped; resolves once
 * polling, and `stop()` to each answer's latency in ms and the number of failed polls.
 */
export async function pollHealthz(opsUrl: string, intervalMs = 20) {
  const worker = new Worker(POLLER, { eval: true, workerData: { url: `${opsUrl}/healthz`, intervalMs } });
  const messages: unknown[] = [];
  let delivered: (() => void) | undefined;
  worker.on('message', (message: unknown) => {
    messages.push(message);
    delivered?.();
  });
  const next = async () => {
    while (messages.length === 0) {
      await new Promise<void>((resolve, reject) => {
        delivered = resolve;
        worker.once('error', reject);
      });
    }
    return messages.shift();
  };
  await next(); // ready
  return {
    async stop(): Promise<{ latencies: number[]; failures: number }> {
      worker.postMessage('stop');
      const polled = (await next()) as { latencies: number[]; failures: number };
      await worker.terminate();
      return polled;
    },
  };
}
