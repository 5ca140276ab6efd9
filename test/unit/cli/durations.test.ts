import { expect } from 'chai';
import { formatDuration, parseTimeout, parseTtl } from '../../../src/cli/durations.ts';
import { UsageError } from '../../../src/cli/errors.ts';

describe('duration options', () => {
  it('accepts a TTL from 10s to 24h as a Go duration, unchanged', () => {
    for (const ttl of ['10s', '15m', '1h30m', '1.5h', '24h', '86400s']) expect(parseTtl(ttl)).to.equal(ttl);
  });

  it('refuses a TTL that is not a Go duration, naming the flag and the value', () => {
    for (const ttl of ['15', '15 minutes', '1d', '', 'm', '15M']) {
      expect(() => parseTtl(ttl)).to.throw(UsageError, `--ttl "${ttl}" is not a duration`);
    }
  });

  it('refuses a TTL outside 10s..24h', () => {
    for (const ttl of ['9s', '0', '-1m', '24h1s', '25h']) {
      expect(() => parseTtl(ttl)).to.throw(UsageError, `--ttl "${ttl}" must be between 10s and 24h`);
    }
  });

  it('reads a timeout as milliseconds and refuses zero, negative and non-durations', () => {
    expect(parseTimeout('2m')).to.equal(120_000);
    expect(parseTimeout('1.5s')).to.equal(1500);
    expect(() => parseTimeout('0s')).to.throw(UsageError, '--timeout "0s" must be longer than 0s');
    expect(() => parseTimeout('-5s')).to.throw(UsageError, 'must be longer than 0s');
    expect(() => parseTimeout('30')).to.throw(UsageError, '--timeout "30" is not a duration');
  });

  it('prints durations as kubectl prints ages', () => {
    expect(formatDuration(0)).to.equal('0s');
    expect(formatDuration(45_000)).to.equal('45s');
    expect(formatDuration(272_000)).to.equal('4m32s');
    expect(formatDuration(15 * 60_000 + 5_000)).to.equal('15m');
    expect(formatDuration(2 * 3600_000 + 5 * 60_000)).to.equal('2h5m');
    expect(formatDuration(3 * 86400_000 + 4 * 3600_000)).to.equal('3d4h');
  });
});
