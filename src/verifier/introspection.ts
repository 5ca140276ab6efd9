import { BoundedTtlCache } from './cache.ts';
import { refuse } from './refusal.ts';

/** The part of `fetch` the verifier uses; tests and proxies may inject their own. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** The longest an introspection answer is reused: a revoked grant is refused within this. */
export const MAX_INTROSPECTION_CACHE_TTL_MS = 1000;

export interface IntrospectionOptions {
  /** The issuer's RFC 7662 endpoint, its discovery document's `introspection_endpoint`. */
  url: string | URL;
  /**
   * The caller's Kubernetes token, sent as `Authorization: Bearer`. Called for every request so a
   * projected, rotating token file is re-read.
   */
  bearerToken: () => Promise<string> | string;
  /** How long an answer, active or not, is reused. At most 1000 ms; 0 disables the cache. Default 1000. */
  cacheTtlMs?: number;
  /** Cached answers kept at most; the least recently used go first. Default 10000. */
  maxEntries?: number;
  /**
   * Accept the token when introspection cannot answer (network error, timeout, non-200, bad body).
   * Default false: such tokens are refused with `introspection_unavailable`. An answer of
   * `active: false` always refuses.
   */
  failOpen?: boolean;
  /** Abort a request after this long. Default 2000 ms. */
  timeoutMs?: number;
  fetch?: FetchLike;
}

/** How introspection went for an accepted token. */
export type IntrospectionOutcome = 'active' | 'unavailable' | 'not_configured';

type Answer = { active: boolean } | { unavailable: string };

/**
 * Asks the issuer whether a verified token is still active. Resolves `active`, or `unavailable`
 * when failing open; refuses `inactive`, or `introspection_unavailable` when failing closed.
 */
export type Introspect = (
  token: string,
  grantId: string,
) => Promise<Exclude<IntrospectionOutcome, 'not_configured'>>;

export function createIntrospector(options: IntrospectionOptions, now: () => number): Introspect {
  const url = new URL(options.url).href;
  const ttlMs = options.cacheTtlMs ?? MAX_INTROSPECTION_CACHE_TTL_MS;
  if (!(ttlMs >= 0 && ttlMs <= MAX_INTROSPECTION_CACHE_TTL_MS)) {
    throw new RangeError(`introspection.cacheTtlMs must be between 0 and ${MAX_INTROSPECTION_CACHE_TTL_MS}`);
  }
  const maxEntries = options.maxEntries ?? 10_000;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError('introspection.maxEntries must be a positive integer');
  }
  const timeoutMs = options.timeoutMs ?? 2000;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new RangeError('introspection.timeoutMs must be a positive integer');
  }
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  // Keyed by grant id, not token: the signature is verified first, so a jti names one token.
  const cache = new BoundedTtlCache<boolean>({ ttlMs, maxEntries, now });
  const inFlight = new Map<string, Promise<Answer>>();

  async function ask(token: string): Promise<Answer> {
    let response: Response;
    try {
      const bearer = await options.bearerToken();
      response = await fetchImpl(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token }).toString(),
        // A redirect would carry the bearer token somewhere unplanned.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      return { unavailable: describe(error) };
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      return { unavailable: `it answered HTTP ${response.status}` };
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      return { unavailable: 'its answer is not JSON' };
    }
    const active = (body as { active?: unknown } | null)?.active;
    if (typeof active !== 'boolean') return { unavailable: 'its answer has no boolean "active"' };
    return { active };
  }

  function answerFor(token: string, grantId: string): Promise<Answer> {
    const cached = cache.get(grantId);
    if (cached !== undefined) return Promise.resolve({ active: cached });
    let pending = inFlight.get(grantId);
    if (pending === undefined) {
      pending = ask(token).then((answer) => {
        if ('active' in answer) cache.set(grantId, answer.active);
        return answer;
      });
      const settled = pending.finally(() => inFlight.delete(grantId));
      inFlight.set(grantId, settled);
      pending = settled;
    }
    return pending;
  }

  return async (token, grantId) => {
    const answer = await answerFor(token, grantId);
    if ('active' in answer) {
      if (!answer.active) refuse('inactive', `Introspection says grant ${grantId} is no longer active`);
      return 'active';
    }
    if (options.failOpen) return 'unavailable';
    return refuse(
      'introspection_unavailable',
      `Introspection at ${url} could not answer: ${answer.unavailable}`,
    );
  };
}

function describe(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'it timed out';
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return error instanceof Error ? `${error.message}${cause}` : String(error);
}
