import { expect } from 'chai';
import { RevokedGrants } from '../../../src/tokens/revocations.ts';

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds));

describe('RevokedGrants', () => {
  it('reports a revoked grant id until its token would have expired, and not after', () => {
    const revoked = new RevokedGrants();
    revoked.add('g1', at(30), at(0));
    expect(revoked.has('g1', at(29))).to.equal(true);
    expect(revoked.has('g1', at(30))).to.equal(false);
    expect(revoked.has('g2', at(1))).to.equal(false);
  });

  it('does not keep an id whose token has already expired', () => {
    const revoked = new RevokedGrants();
    revoked.add('g1', at(10), at(10));
    expect(revoked.size).to.equal(0);
  });

  it('drops the soonest-expiring ids first when over capacity', () => {
    const revoked = new RevokedGrants(2);
    revoked.add('late', at(50), at(0));
    revoked.add('soon', at(20), at(0));
    revoked.add('middle', at(30), at(0));
    expect(revoked.size).to.equal(2);
    expect(revoked.has('soon', at(1))).to.equal(false);
    expect(revoked.has('middle', at(1))).to.equal(true);
    expect(revoked.has('late', at(1))).to.equal(true);
  });

  it('prunes expired ids', () => {
    const revoked = new RevokedGrants();
    revoked.add('a', at(5), at(0));
    revoked.add('b', at(50), at(0));
    revoked.prune(at(10));
    expect(revoked.size).to.equal(1);
  });

  it('drops expired ids as it grows, so steady revocations keep it at the ids still unexpired', () => {
    const revoked = new RevokedGrants();
    // One revocation a second, each token valid 60 s more: at most 60 ids are unexpired at once.
    for (let second = 0; second < 10_000; second++) revoked.add(`g${second}`, at(second + 60), at(second));
    expect(revoked.size).to.be.at.most(1024);
    expect(revoked.has('g9999', at(9999))).to.equal(true);
    expect(revoked.has('g9940', at(9999))).to.equal(true);
  });
});
