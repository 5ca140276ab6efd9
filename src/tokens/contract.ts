// The token contract: what a grant token says and how its target glob matches. Both the issuer
// (src/tokens/grant-token.ts) and the verifier shipped to backends (src/verifier) import this file,
// so it imports nothing: the verifier carries no controller code.

/** The JWT `typ` header of grant tokens (RFC 8725 explicit typing). */
export const GRANT_TOKEN_TYPE = 'hourglass-grant+jwt';
/** The private claim that carries what the grant is for. */
export const GRANT_CLAIM = 'hourglass.dev';

export interface GrantClaim {
  request: { namespace: string; name: string; uid: string };
  purpose: string;
  actions: string[];
  target: string;
  pod?: { name: string; uid: string };
  job?: { name: string; uid: string };
  renewal: number;
}

/** The payload of a grant token; times are in seconds since the epoch. */
export interface GrantTokenPayload {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
  [GRANT_CLAIM]: GrantClaim;
}

/**
 * Whether a target glob matches a literal target. "*" matches one or more characters inside one
 * "/"-separated segment and never crosses "/", so it never matches an empty segment:
 * "postgres://orders-db/*" does not cover "postgres://orders-db/". Everything else is literal.
 */
export function matchesTarget(glob: string, target: string): boolean {
  const globSegments = glob.split('/');
  const targetSegments = target.split('/');
  return (
    globSegments.length === targetSegments.length &&
    globSegments.every((segment, index) => matchesSegment(segment, targetSegments[index] ?? ''))
  );
}

// Each "*" takes at least one character. Placing each literal piece between two stars at its
// leftmost possible position (one character past the previous piece) never loses a match, so one
// left-to-right pass decides without backtracking.
function matchesSegment(pattern: string, text: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === text;
  const first = pieces[0] ?? '';
  const last = pieces[pieces.length - 1] ?? '';
  const lastStart = text.length - last.length;
  if (!text.startsWith(first) || !text.endsWith(last)) return false;
  let position = first.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = text.indexOf(piece, position + 1);
    if (found === -1) return false;
    position = found + piece.length;
  }
  return lastStart >= position + 1;
}
