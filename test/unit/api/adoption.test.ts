import { expect } from 'chai';
import { adoptedRequestName, parseDeclaration } from '../../../src/api/adoption.ts';

describe('the adoption annotations', () => {
  it('reads several rules, a token, a ttl and a purpose', () => {
    const { declaration } = parseDeclaration(
      {
        'hourglass.dev/access': 'get secrets/orders-db; get,list configmaps',
        'hourglass.dev/token': 'orders-api orders:read,orders:write postgres://orders-db/orders',
        'hourglass.dev/ttl': '30m',
        'hourglass.dev/purpose': 'OPS-1 nightly',
      },
      'job/etl',
    );
    expect(declaration).to.deep.equal({
      purpose: 'OPS-1 nightly',
      permissions: [
        { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['orders-db'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] },
      ],
      token: {
        audience: ['orders-api'],
        actions: ['orders:read', 'orders:write'],
        target: 'postgres://orders-db/orders',
      },
      ttl: '30m',
    });
  });

  it('leaves the ttl to the policy and names the workload in the default purpose', () => {
    const { declaration } = parseDeclaration({ 'hourglass.dev/access': 'get secrets/orders-db' }, 'job/etl');
    expect(declaration?.ttl).to.equal(undefined);
    expect(declaration?.purpose).to.equal('job/etl declared its access by annotation');
  });

  const malformed: [string, Record<string, string>, string][] = [
    ['nothing to grant', {}, 'neither hourglass.dev/access nor hourglass.dev/token says what to grant'],
    [
      'a rule that is not VERBS RESOURCE',
      { 'hourglass.dev/access': 'secrets' },
      'hourglass.dev/access: rule "secrets" must be',
    ],
    ['a wildcard name', { 'hourglass.dev/access': 'get secrets/*' }, 'is not an object name'],
    [
      'a token with two fields',
      { 'hourglass.dev/token': 'orders-api orders:read' },
      'must be AUDIENCE ACTION[,ACTION...] TARGET',
    ],
    ['a wildcard action', { 'hourglass.dev/token': 'orders-api * postgres://x/y' }, 'must be literal'],
    [
      'a target with ..',
      { 'hourglass.dev/token': 'orders-api read postgres://x/../y' },
      'the target must be literal',
    ],
    [
      'a ttl that is no Go duration',
      { 'hourglass.dev/access': 'get pods', 'hourglass.dev/ttl': '15 minutes' },
      'is not a Go duration',
    ],
    [
      'a purpose with a control character',
      { 'hourglass.dev/access': 'get pods', 'hourglass.dev/purpose': 'a\u0007b' },
      '1 to 512 printable',
    ],
  ];
  for (const [what, annotations, message] of malformed) {
    it(`refuses ${what}, naming the annotation`, () => {
      const { errors } = parseDeclaration(annotations, 'pod/p');
      expect(errors?.join('; ')).to.contain(message);
    });
  }

  it('names a request after its subject, and cuts a long name with a hash of the whole', () => {
    expect(adoptedRequestName({ kind: 'Job', name: 'etl' })).to.equal('job-etl');
    const long = 'a'.repeat(60);
    const cut = adoptedRequestName({ kind: 'Pod', name: long });
    expect(cut.length).to.be.at.most(63);
    expect(cut).to.not.equal(adoptedRequestName({ kind: 'Pod', name: `${long}b` }));
    expect(cut).to.equal(adoptedRequestName({ kind: 'Pod', name: long }));
  });
});
