import { expect } from 'chai';
import { firstBoundsViolation } from '../../../src/api/bounds.ts';
import { kinds, objectSchema, type JSONSchema } from '../../../src/api/schema.ts';

const schemaOf = (kind: string) => objectSchema(kinds.find((k) => k.kind === kind)!);
const requestSchema = schemaOf('AccessRequest');
const policySchema = schemaOf('AccessPolicy');

const request = (spec: object, status?: object) => ({
  apiVersion: 'hourglass.dev/v1alpha1',
  kind: 'AccessRequest',
  metadata: { name: 'r', namespace: 'n' },
  spec: {
    subject: { podName: 'etl-pod' },
    purpose: 'OPS-1 nightly export',
    permissions: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['orders-db'] }],
    ...spec,
  },
  ...(status ? { status } : {}),
});
const rule = (extra: object) => ({ apiGroups: [''], resources: ['secrets'], verbs: ['get'], ...extra });

/** A list whose entries throw when read: proof that the check never looks at them. */
function untouchable(length: number): unknown[] {
  return new Proxy(new Array<unknown>(length).fill('x'), {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) throw new Error(`entry ${key} was read`);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

describe('schema bounds', () => {
  it('admits a request within every limit', () => {
    expect(firstBoundsViolation(requestSchema, request({}))).to.equal(undefined);
  });

  const refusals: [string, object, string][] = [
    [
      'a list longer than its maxItems, naming the field, the limit and the length',
      request({ permissions: [rule({ apiGroups: new Array(30_000).fill('') })] }),
      'spec.permissions[0].apiGroups: at most 16 items (got 30000)',
    ],
    [
      'more permissions than the schema allows',
      request({ permissions: new Array(33).fill(rule({})) }),
      'spec.permissions: at most 32 items (got 33)',
    ],
    [
      'a string longer than its maxLength',
      request({ purpose: 'x'.repeat(513) }),
      'spec.purpose: at most 512 characters (got 513)',
    ],
    [
      'a list entry longer than its maxLength',
      request({ permissions: [rule({}), rule({ resourceNames: ['a', 'b'.repeat(254)] })] }),
      'spec.permissions[1].resourceNames[1]: at most 253 characters (got 254)',
    ],
    [
      'a map with more entries than its maxProperties',
      request({
        requester: { extra: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, ['v']])) },
      }),
      'spec.requester.extra: at most 32 entries (got more)',
    ],
    [
      'a map value breaking its limit, naming the key',
      request({ requester: { extra: { 'example.com/team': new Array(17).fill('v') } } }),
      'spec.requester.extra[example.com/team]: at most 16 items (got 17)',
    ],
    ['a missing required field', request({ purpose: undefined }), 'spec.purpose: required'],
    [
      'a value of the wrong type',
      request({ permissions: { apiGroups: [''] } }),
      'spec.permissions: must be a list (got object)',
    ],
    ['a number where a string belongs', request({ ttl: 300 }), 'spec.ttl: must be a string (got number)'],
    [
      'a status with more conditions than the schema allows',
      request(
        {},
        {
          conditions: Array.from({ length: 17 }, (_, i) => ({
            type: `T${i}`,
            status: 'True',
            lastTransitionTime: '2026-01-01T00:00:00Z',
            reason: 'R',
            message: '',
          })),
        },
      ),
      'status.conditions: at most 16 items (got 17)',
    ],
    [
      'an object without spec',
      { apiVersion: 'hourglass.dev/v1alpha1', kind: 'AccessRequest' },
      'spec: required',
    ],
  ];
  for (const [what, object, message] of refusals) {
    it(`refuses ${what}`, () => {
      expect(firstBoundsViolation(requestSchema, object)).to.equal(message);
    });
  }

  it('counts characters, not UTF-16 units, as the API server does', () => {
    expect(firstBoundsViolation(requestSchema, request({ purpose: '🔑'.repeat(512) }))).to.equal(undefined);
    expect(firstBoundsViolation(requestSchema, request({ purpose: '🔑'.repeat(513) }))).to.equal(
      'spec.purpose: at most 512 characters (got 513)',
    );
  });

  it('refuses an overlong list without reading any of its entries', () => {
    const object = request({ permissions: [rule({ apiGroups: untouchable(30_000) })] });
    expect(firstBoundsViolation(requestSchema, object)).to.equal(
      'spec.permissions[0].apiGroups: at most 16 items (got 30000)',
    );
  });

  it('stops at the first violation', () => {
    const object = request({
      purpose: 'x'.repeat(600),
      permissions: [rule({ apiGroups: untouchable(100) })],
    });
    expect(firstBoundsViolation(requestSchema, object)).to.equal(
      'spec.purpose: at most 512 characters (got 600)',
    );
  });

  it('checks policies against their own schema', () => {
    const policy = {
      metadata: { name: 'p', namespace: 'n' },
      spec: {
        subjects: {
          serviceAccounts: ['etl'],
          podSelector: {
            matchLabels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, 'v'])),
          },
        },
        allow: { permissions: [rule({})] },
      },
    };
    expect(firstBoundsViolation(policySchema, policy)).to.equal(
      'spec.subjects.podSelector.matchLabels: at most 64 entries (got more)',
    );
  });

  it('lets an update through when the value breaking a limit is the one already stored', () => {
    const stored = request({ requester: { groups: new Array(129).fill('g') } });
    const annotated = {
      ...stored,
      metadata: { ...stored.metadata, annotations: { 'hourglass.dev/renew': '1' } },
    };
    expect(firstBoundsViolation(requestSchema, annotated)).to.equal(
      'spec.requester.groups: at most 128 items (got 129)',
    );
    expect(firstBoundsViolation(requestSchema, annotated, stored)).to.equal(undefined);
  });

  it('refuses an update that changes a value beyond its limit', () => {
    const stored = request({});
    const grown = request({ purpose: 'x'.repeat(513) });
    expect(firstBoundsViolation(requestSchema, grown, stored)).to.equal(
      'spec.purpose: at most 512 characters (got 513)',
    );
  });

  it('every list and map in the schema has a limit, so that no walk is unbounded', () => {
    const unbounded: string[] = [];
    const walk = (schema: JSONSchema, path: string) => {
      if (schema.type === 'array' && schema.maxItems === undefined) unbounded.push(path);
      if (typeof schema.additionalProperties === 'object' && schema.maxProperties === undefined)
        unbounded.push(path);
      for (const [name, property] of Object.entries(schema.properties ?? {}))
        walk(property, `${path}.${name}`);
      if (schema.items) walk(schema.items, `${path}[]`);
      if (typeof schema.additionalProperties === 'object') walk(schema.additionalProperties, `${path}{}`);
    };
    for (const kind of kinds) walk(objectSchema(kind), kind.kind);
    expect(unbounded).to.deep.equal([]);
  });
});
