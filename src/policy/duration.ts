const NANOSECONDS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

// One "<number><unit>" component; the unit is every character up to the next digit or dot,
// as in Go, so that an unknown unit is reported rather than split.
const COMPONENT = /(\d*)(?:\.(\d*))?([^\d.]*)/y;

/**
 * Parses a Go duration ("15m", "1h30m", "1.5h", "500ms", "-2s", "0") into seconds, accepting
 * exactly what Go's time.ParseDuration accepts. Throws on anything else.
 */
export function parseDuration(goDuration: string): number {
  let rest = goDuration;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalidDuration(goDuration);

  let nanoseconds = 0;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < rest.length) {
    const match = COMPONENT.exec(rest);
    const [, whole = '', fraction, unit = ''] = match ?? [];
    const unitNanoseconds = NANOSECONDS_PER_UNIT[unit];
    if (whole === '' && !fraction) throw invalidDuration(goDuration);
    if (unitNanoseconds === undefined) throw invalidDuration(goDuration);
    nanoseconds += Number(`${whole || '0'}.${fraction || '0'}`) * unitNanoseconds;
  }
  if (!Number.isFinite(nanoseconds)) throw invalidDuration(goDuration);
  return (sign * nanoseconds) / 1e9;
}

function invalidDuration(text: string): Error {
  return new Error(`invalid duration "${text}"`);
}
