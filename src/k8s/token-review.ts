import { createHash } from 'node:crypto';
import type { AuthenticationV1Api } from '@kubernetes/client-node';

/**
 * Authenticates bearer tokens with TokenReview. Results are cached for a few seconds by the
 * token's hash (never the token itself), as the API server itself does.
 */
export function tokenAuthenticator(authn: AuthenticationV1Api, ttlMs = 10_000, maxEntries = 10_000) {
  const cache = new Map<string, { user: string | undefined; until: number }>();
  return async (token: string): Promise<string | undefined> => {
    const key = createHash('sha256').update(token).digest('hex');
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.user;
    const review = await authn.createTokenReview({ body: { spec: { token } } });
    const user = review.status?.authenticated ? review.status.user?.username : undefined;
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(key, { user, until: now + ttlMs });
    return user;
  };
}
