import type { IncomingMessage } from 'node:http';
import type { KeySet } from '../tokens/keys.ts';
import { SIGNING_ALG } from '../tokens/keys.ts';
import type { Introspection } from '../tokens/introspection.ts';
import { readBody, sendJson, type Handler } from './router.ts';

export interface IssuerEndpointsDeps {
  issuer: () => string;
  keys: () => KeySet;
  introspect: (token: string) => Promise<Introspection>;
  /** The caller's identity from its bearer token (TokenReview), or undefined when it is not authenticated. */
  authenticate: (bearerToken: string) => Promise<string | undefined>;
  now: () => Date;
}

const bearer = (req: IncomingMessage) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];

/** OIDC discovery, JWKS and RFC 7662 introspection, as standard clients expect them. */
export function issuerRoutes(deps: IssuerEndpointsDeps): Record<string, { GET?: Handler; POST?: Handler }> {
  const cacheable = { 'Cache-Control': 'public, max-age=60' };
  return {
    '/.well-known/openid-configuration': {
      GET: (_req, res) => {
        const issuer = deps.issuer();
        sendJson(
          res,
          200,
          {
            issuer,
            jwks_uri: `${issuer}/.well-known/jwks.json`,
            introspection_endpoint: `${issuer}/introspect`,
            id_token_signing_alg_values_supported: [SIGNING_ALG],
            response_types_supported: ['id_token'],
            subject_types_supported: ['public'],
            introspection_endpoint_auth_methods_supported: ['bearer'],
          },
          cacheable,
        );
      },
    },
    '/.well-known/jwks.json': {
      GET: (_req, res) => sendJson(res, 200, deps.keys().publicJwks(deps.now()), cacheable),
    },
    '/introspect': {
      POST: async (req, res) => {
        const callerToken = bearer(req);
        const caller = callerToken ? await deps.authenticate(callerToken) : undefined;
        if (!caller) {
          return sendJson(res, 401, { error: 'invalid_client' }, { 'WWW-Authenticate': 'Bearer' });
        }
        const type = req.headers['content-type'] ?? '';
        const body = await readBody(req, 64 * 1024);
        const token = type.startsWith('application/json')
          ? (JSON.parse(body) as { token?: string }).token
          : new URLSearchParams(body).get('token');
        if (!token)
          return sendJson(res, 400, { error: 'invalid_request', error_description: 'token is required' });
        sendJson(res, 200, await deps.introspect(token), { 'Cache-Control': 'no-store' });
      },
    },
  };
}
