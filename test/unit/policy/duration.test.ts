import { expect } from 'chai';
import { parseDuration } from '../../../src/policy/duration.ts';

describe('parseDuration', () => {
  const valid: [string, string, number][] = [
    ['reads minutes', '15m', 900],
    ['reads hours and minutes together', '1h30m', 5400],
    ['reads a fractional hour', '1.5h', 5400],
    ['reads milliseconds as a fraction of a second', '500ms', 0.5],
    ['reads micro- and nanoseconds', '1µs1000ns', 0.000002],
    ['reads a fraction without a leading digit, as Go does', '.5m', 30],
    ['reads a bare zero without a unit', '0', 0],
    ['reads a negative duration', '-2s', -2],
  ];
  for (const [name, text, seconds] of valid) {
    it(name, () => expect(parseDuration(text)).to.be.closeTo(seconds, 1e-12));
  }

  const invalid: [string, string][] = [
    ['refuses an empty string', ''],
    ['refuses a number without a unit', '15'],
    ['refuses an unknown unit', '2d'],
    ['refuses a dot without digits', '.h'],
    ['refuses whitespace', '1h 30m'],
    ['refuses a sign in the middle', '1h-30m'],
  ];
  for (const [name, text] of invalid) {
    it(name, () => expect(() => parseDuration(text)).to.throw(`invalid duration "${text}"`));
  }
});
