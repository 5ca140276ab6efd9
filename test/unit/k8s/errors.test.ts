import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import { isTimeout, mayBeUnavailable } from '../../../src/k8s/errors.ts';

const fetchFailed = (code: string) =>
  new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
const status = (code: number) => new ApiException(code, 'failed', '{}', {});

describe('API error classification', () => {
  const cases: [string, unknown, { unavailable: boolean; timeout: boolean }][] = [
    ['a refused connection', fetchFailed('ECONNREFUSED'), { unavailable: true, timeout: false }],
    ['a reset connection', fetchFailed('ECONNRESET'), { unavailable: true, timeout: false }],
    [
      'response headers that never came',
      fetchFailed('UND_ERR_HEADERS_TIMEOUT'),
      { unavailable: true, timeout: true },
    ],
    ['a body that went silent', fetchFailed('UND_ERR_BODY_TIMEOUT'), { unavailable: true, timeout: true }],
    [
      'an abort on timeout',
      new DOMException('timed out', 'TimeoutError'),
      { unavailable: true, timeout: true },
    ],
    ['503 Service Unavailable', status(503), { unavailable: true, timeout: false }],
    ['504 Gateway Timeout', status(504), { unavailable: true, timeout: false }],
    ['500 from etcd', status(500), { unavailable: true, timeout: false }],
    [
      'a watch answered 503',
      Object.assign(new Error('Service Unavailable'), { statusCode: 503 }),
      { unavailable: true, timeout: false },
    ],
    ['403 Forbidden', status(403), { unavailable: false, timeout: false }],
    ['409 Conflict', status(409), { unavailable: false, timeout: false }],
    ['429 Too Many Requests', status(429), { unavailable: false, timeout: false }],
    ['a plain error of the controller', new Error('not cached yet'), { unavailable: false, timeout: false }],
  ];
  for (const [what, error, expected] of cases) {
    it(`classifies ${what}: ${expected.unavailable ? 'may be an outage' : 'no outage'}${expected.timeout ? ', a timeout' : ''}`, () => {
      expect({ unavailable: mayBeUnavailable(error), timeout: isTimeout(error) }).to.deep.equal(expected);
    });
  }
});
