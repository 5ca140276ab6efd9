import { decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import { GRANT_TOKEN_TYPE } from '../tokens/contract.ts';
import { refuse } from './refusal.ts';

/** Grant tokens are a few hundred bytes; anything far larger is refused before it is parsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * Header parameters that make a verifier fetch or trust keys the token names itself, or demand
 * extensions it does not implement. Hourglass never sets them, so their presence alone refuses.
 */
export const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The header of a grant token that passed the checks made before any key is looked up. */
export interface GrantHeader {
  alg: string;
  kid: string;
}

/**
 * Checks what can be checked without a key: shape, forbidden parameters, `alg` against the pinned
 * list, `typ` and the presence of `kid`. Refusing before the signature check is safe: only
 * acceptance needs a verified signature.
 */
export function checkHeader(token: unknown, algorithms: readonly string[]): GrantHeader {
  if (typeof token !== 'string' || token.length === 0) refuse('malformed', 'The token is empty');
  if (token.length > MAX_TOKEN_LENGTH) {
    refuse('malformed', `The token is longer than ${MAX_TOKEN_LENGTH} characters`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) {
    refuse('malformed', `The token has ${parts.length} dot-separated parts; a compact JWS has 3`);
  }
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    refuse('malformed', 'The token header is not base64url-encoded JSON');
  }

  const forbidden = FORBIDDEN_HEADERS.filter((name) => Object.hasOwn(header, name));
  if (forbidden.length > 0) {
    refuse(
      'forbidden_header',
      `The token header carries ${forbidden.join(', ')}; keys and extensions a token names are never honoured`,
    );
  }
  const { alg, kid, typ } = header;
  if (typeof alg !== 'string') refuse('malformed', 'The token header has no alg');
  if (!algorithms.includes(alg)) {
    refuse(
      'alg_not_allowed',
      `The token is signed with alg ${quote(alg)}; the issuer signs with ${algorithms.join(', ')}`,
    );
  }
  if (typ !== GRANT_TOKEN_TYPE) {
    refuse('bad_typ', `The token has typ ${quote(typ)}; grant tokens have typ ${GRANT_TOKEN_TYPE}`);
  }
  if (typeof kid !== 'string' || kid.length === 0) refuse('unknown_kid', 'The token header names no kid');
  if (!BASE64URL.test(parts[1] ?? '') || !BASE64URL.test(parts[2] ?? '')) {
    refuse('malformed', 'The token payload or signature is empty or not base64url');
  }
  return { alg, kid };
}

/** A token-supplied value made safe to put in a message: JSON-quoted, so no newlines, and short. */
export function quote(value: unknown): string {
  if (value === undefined) return 'undefined';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
