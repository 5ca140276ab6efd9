import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics of hourglass. The names of the grant metrics are API contract. */
export function createMetrics(countActiveGrants: () => number = () => 0) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hourglass_' });
  const latencyBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
  return {
    registry,
    grantsActive: new Gauge({
      name: 'hourglass_grants_active',
      help: 'Grants live now.',
      registers: [registry],
      collect() {
        this.set(countActiveGrants());
      },
    }),
    grantsIssued: new Counter({
      name: 'hourglass_grants_issued_total',
      help: 'Grants issued, renewals included.',
      registers: [registry],
    }),
    grantsRevoked: new Counter({
      name: 'hourglass_grants_revoked_total',
      help: 'Grants revoked, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    decisions: new Counter({
      name: 'hourglass_decisions_total',
      help: 'Policy decisions on requests, by outcome.',
      labelNames: ['decision'],
      registers: [registry],
    }),
    grantLatency: new Histogram({
      name: 'hourglass_grant_latency_seconds',
      help: 'From an AccessRequest created to Granted.',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    revocationLag: new Histogram({
      name: 'hourglass_revocation_lag_seconds',
      help: 'From expiry or another revocation trigger to the grant objects deleted.',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    reconciles: new Counter({
      name: 'hourglass_reconcile_total',
      help: 'AccessRequest reconciles, by result.',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'hourglass_reconcile_duration_seconds',
      help: 'How long one AccessRequest reconcile took.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'hourglass_workqueue_depth',
      help: 'Keys waiting to be reconciled.',
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'hourglass_workqueue_wait_seconds',
      help: 'How long a key waited in the queue before its reconcile started.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    queueRetries: new Counter({
      name: 'hourglass_workqueue_retries_total',
      help: 'Keys requeued with backoff after a failed reconcile.',
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: 'hourglass_informer_restarts_total',
      help: 'Informer restarts, by watched path and reason (error or watchdog).',
      labelNames: ['path', 'reason'],
      registers: [registry],
    }),
    watchReconnects: new Counter({
      name: 'hourglass_watch_reconnects_total',
      help: 'Watch requests of the informers that ended, by watched path and how (idle, stalled, closed, expired, failed).',
      labelNames: ['path', 'reason'],
      registers: [registry],
    }),
    watchStalls: new Counter({
      name: 'hourglass_watch_stalls_total',
      help: 'Informer list or watch requests that got no answer in time, or informers silent past their watchdog, by watched path.',
      labelNames: ['path'],
      registers: [registry],
    }),
    apiServerReachable: new Gauge({
      name: 'hourglass_apiserver_reachable',
      help: '0 from a failed readiness probe of the API server until it answers ready again, else 1.',
      registers: [registry],
    }),
    apiServerOutages: new Histogram({
      name: 'hourglass_apiserver_outage_seconds',
      help: 'Outages of the API server as this replica saw them, from the first failed readiness probe to the first ready one.',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
