import type { Registry } from 'prom-client';
import { sendJson, type Handler } from './router.ts';

/** /metrics for Prometheus, /healthz (the process serves) and /readyz (caches synced). */
export function opsRoutes(deps: {
  registry: Registry;
  ready: () => boolean;
}): Record<string, { GET: Handler }> {
  return {
    '/metrics': {
      GET: async (_req, res) => {
        const text = await deps.registry.metrics();
        res.writeHead(200, { 'Content-Type': deps.registry.contentType });
        res.end(text);
      },
    },
    '/healthz': { GET: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    '/readyz': {
      GET: (_req, res) =>
        deps.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready' }),
    },
  };
}
