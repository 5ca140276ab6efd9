/**
 * Whether a target glob matches a literal target. "*" matches any run of characters, the empty
 * one included, inside one "/"-separated segment and never crosses "/"; everything else is literal.
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

// Placing each literal piece between two stars at its leftmost possible position never loses a
// match, so one left-to-right pass decides without backtracking.
function matchesSegment(pattern: string, text: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === text;
  const first = pieces[0] ?? '';
  const last = pieces[pieces.length - 1] ?? '';
  const end = text.length - last.length;
  if (end < first.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let position = first.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = text.indexOf(piece, position);
    if (found === -1 || found + piece.length > end) return false;
    position = found + piece.length;
  }
  return true;
}
