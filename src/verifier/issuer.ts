import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import type { FetchLike } from './introspection.ts';
import { GrantRefused, refuse } from './refusal.ts';

/**
 * Algorithms a verifier may pin. Symmetric ones (HS*) are never accepted, whatever is configured or
 * published: a verifier holds only public keys, and an HMAC "signed" with a public key proves nothing.
 */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
];

/** Used when neither the configuration nor the issuer's discovery document names algorithms. */
export const DEFAULT_ALGORITHMS: readonly string[] = ['ES256'];

/** After a failed discovery, verifications refuse without refetching for this long. */
export const DISCOVERY_RETRY_MS = 5000;

/** Where the verifier's keys come from and which algorithms it pins. */
export interface IssuerKeys {
  keys: JWTVerifyGetKey;
  algorithms: readonly string[];
}

export interface IssuerKeysOptions {
  issuer: string;
  jwks?: string | URL | JSONWebKeySet;
  algorithms?: readonly string[];
  fetch?: FetchLike;
  now: () => number;
}

/**
 * Resolves the verifier's keys and pinned algorithms. With `jwks` given, both are fixed now (the
 * algorithms default to ES256). Without it, they come from the issuer's discovery document, fetched
 * on first use: `jwks_uri`, and `id_token_signing_alg_values_supported` unless `algorithms` is set.
 */
export function issuerKeysResolver(options: IssuerKeysOptions): () => Promise<IssuerKeys> {
  if (options.algorithms !== undefined) checkAlgorithms(options.algorithms);
  if (options.jwks !== undefined) {
    const fixed: IssuerKeys = {
      keys: keySource(options.jwks, options.fetch),
      algorithms: options.algorithms ?? DEFAULT_ALGORITHMS,
    };
    return () => Promise.resolve(fixed);
  }

  let discovered: Promise<IssuerKeys> | undefined;
  let failure: { at: number; error: GrantRefused } | undefined;
  return async () => {
    if (failure && options.now() - failure.at < DISCOVERY_RETRY_MS) throw failure.error;
    discovered ??= discover(options);
    try {
      return await discovered;
    } catch (error) {
      discovered = undefined;
      if (error instanceof GrantRefused) failure = { at: options.now(), error };
      throw error;
    }
  };
}

/** Throws (a configuration error, not a refusal) unless every algorithm is a supported asymmetric one. */
export function checkAlgorithms(algorithms: readonly string[]): void {
  if (algorithms.length === 0) throw new TypeError('algorithms must name at least one algorithm');
  for (const alg of algorithms) {
    if (!ASYMMETRIC_ALGORITHMS.includes(alg)) {
      throw new TypeError(`algorithm ${alg} is not allowed; use one of ${ASYMMETRIC_ALGORITHMS.join(', ')}`);
    }
  }
}

function keySource(jwks: string | URL | JSONWebKeySet, fetchImpl: FetchLike | undefined): JWTVerifyGetKey {
  if (typeof jwks === 'object' && !(jwks instanceof URL)) return createLocalJWKSet(jwks);
  const url = new URL(jwks);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`jwks URL ${url.href} is not http(s)`);
  }
  return createRemoteJWKSet(url, fetchImpl ? { [customFetch]: fetchImpl } : {});
}

export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

async function discover(options: IssuerKeysOptions): Promise<IssuerKeys> {
  const url = discoveryUrl(options.issuer);
  const unavailable: (why: string) => never = (why) =>
    refuse('keys_unavailable', `Issuer discovery at ${url} ${why}`);
  let document: unknown;
  try {
    const response = await (options.fetch ?? fetch)(url, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
    if (response.status !== 200) unavailable(`answered HTTP ${response.status}`);
    document = await response.json();
  } catch (error) {
    if (error instanceof GrantRefused) throw error;
    unavailable(`failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  const {
    issuer,
    jwks_uri: jwksUri,
    id_token_signing_alg_values_supported: published,
  } = (document ?? {}) as Record<string, unknown>;
  // OIDC Discovery 1.0 §4.3: the document's issuer must be exactly the one configured.
  if (issuer !== options.issuer) unavailable(`names issuer ${JSON.stringify(issuer)}, not ${options.issuer}`);
  if (typeof jwksUri !== 'string') unavailable('has no jwks_uri');

  let algorithms = options.algorithms;
  if (algorithms === undefined) {
    if (published === undefined) algorithms = DEFAULT_ALGORITHMS;
    else if (!Array.isArray(published))
      unavailable('has an id_token_signing_alg_values_supported that is not a list');
    else {
      algorithms = published.filter((alg): alg is string => ASYMMETRIC_ALGORITHMS.includes(alg as string));
      if (algorithms.length === 0) unavailable('publishes no asymmetric signing algorithm');
    }
  }
  let keys: JWTVerifyGetKey;
  try {
    keys = keySource(jwksUri as string, options.fetch);
  } catch (error) {
    unavailable(`has an unusable jwks_uri: ${(error as Error).message}`);
  }
  return { keys, algorithms: algorithms as readonly string[] };
}
