// The verifier (src/verifier, shipped to backends) imports this file: it must stay free of imports,
// so that the verifier shares the policy engine's target rule without pulling in controller code.

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

/** Whether every requested action is allowed: literally, or by a "*" that allows any action. */
export function coversActions(allowed: readonly string[], requested: readonly string[]): boolean {
  return allowed.includes('*') || requested.every((action) => allowed.includes(action));
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
