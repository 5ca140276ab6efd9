import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';

/**
 * Whether the API server answers `GET /readyz` with 200 within `timeoutMs`, asked over the same
 * connections as every API call. /readyz is open to every client (system:public-info-viewer) and
 * fails while etcd or the API server's own caches are not ready.
 */
export async function apiServerReady(kc: KubeConfig, timeoutMs: number): Promise<boolean> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) return false;
  const context = new RequestContext(`${server}/readyz`, HttpMethod.GET);
  await kc.applySecurityAuthentication(context);
  const response = await fetch(context.getUrl(), {
    headers: context.getHeaders(),
    dispatcher: context.getDispatcher(),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.arrayBuffer();
  return response.status === 200;
}
