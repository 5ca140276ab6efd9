// Signing key rotation against the real controller and API server. The controller runs with a
// 20 s rotation period and an 8 s publish lead, in a controller namespace of its own: its key
// Secret is this suite's alone, so the drill never makes another suite's tokens inactive, and the
// shared hourglass-system/hourglass-signing-keys is left as it was.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, fetch } from 'undici';
import {
  ensureCrds,
  eventually,
  kubeconfigPath,
  kubectlOk,
  repoRoot,
  useNamespace,
} from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import { keySetFromSecretData, type KeySet } from '../../src/tokens/keys.ts';
import {
  api,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
} from '../support/hourglass.ts';

const ROTATION_PERIOD_MS = 20_000;
const PUBLISH_LEAD_MS = 8_000;

interface Issued {
  name: string;
  token: string;
  kid: string;
}

/** One key's turn: a token it signed, and one its predecessor signed while it was already published. */
interface Epoch {
  kid: string;
  token: Issued;
  previousWhilePublished?: Issued;
}

describe('signing key rotation and the compromised-key drill', function () {
  this.timeout(180_000);
  let controller: ControllerProcess | undefined;
  // Registered first so that it runs before the namespaces are deleted.
  after(async () => {
    await controller?.stop();
  });
  const keysNamespace = useNamespace('hourglass-keys');
  const namespace = useNamespace('key-rotation');
  const dispatcher = new Agent({
    connect: { ca: readFileSync(path.join(repoRoot, '.cluster', 'pki', 'ca.crt')) },
  });
  let issuer = '';
  let introspectionToken = '';
  /** Every key seen in the JWKS, in the order it was published. */
  const seen: string[] = [];
  /** The keys whose turn was observed: the first key, and one per rotation. */
  const epochs: Epoch[] = [];
  const allTokens = () =>
    epochs.flatMap((e) => (e.previousWhilePublished ? [e.token, e.previousWhilePublished] : [e.token]));

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createServiceAccount(namespace(), 'orders-api');
    await createPolicy(namespace(), 'batch-readers');
    introspectionToken = (await kubectlOk(['-n', namespace(), 'create', 'token', 'orders-api'])).trim();
    controller = await ControllerProcess.start('key-rotation', [
      '--namespace',
      keysNamespace(),
      '--key-rotation-period',
      `${ROTATION_PERIOD_MS / 1000}s`,
      '--key-publish-lead',
      `${PUBLISH_LEAD_MS / 1000}s`,
    ]);
    issuer = controller.url('https');
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && controller) {
      console.log(`--- controller log tail (${controller.logFile}):\n${controller.tail(40)}`);
    }
  });
  after(() => dispatcher.close());

  async function jwks(): Promise<JSONWebKeySet> {
    const response = await fetch(`${issuer}/.well-known/jwks.json`, { dispatcher });
    expect(response.status).to.equal(200);
    return (await response.json()) as JSONWebKeySet;
  }
  const publishedKids = async () => (await jwks()).keys.map((jwk) => jwk.kid ?? '');

  async function introspect(token: string): Promise<{ active: boolean; jti?: string }> {
    const response = await fetch(`${issuer}/introspect`, {
      method: 'POST',
      body: new URLSearchParams({ token }),
      headers: { authorization: `Bearer ${introspectionToken}` },
      dispatcher,
    });
    expect(response.status).to.equal(200);
    return (await response.json()) as { active: boolean; jti?: string };
  }

  /** Whether the token verifies with jose against the JWKS the controller serves now. */
  async function verifiesAgainstJwks(token: string): Promise<boolean> {
    return jwtVerify(token, createLocalJWKSet(await jwks()), {
      issuer,
      audience: 'orders-api',
      algorithms: ['ES256'],
      typ: 'hourglass-grant+jwt',
    }).then(
      () => true,
      () => false,
    );
  }

  /** The keys in this suite's controller's Secret. */
  async function secretKeys(): Promise<KeySet> {
    const secret = await api().core.readNamespacedSecret({
      namespace: keysNamespace(),
      name: 'hourglass-signing-keys',
    });
    return keySetFromSecretData(secret.data ?? {});
  }

  /** When the key starts signing, as its Secret says. */
  async function signsFrom(kid: string): Promise<number> {
    const set = await secretKeys();
    const key = set.keys.find((candidate) => candidate.kid === kid);
    expect(key, `key ${kid} in the Secret`).to.not.equal(undefined);
    return set.signingPeriod(key!).from.getTime();
  }

  /**
   * A grant for a new pod whose token this suite's controller signed. The cluster may be shared
   * with other controllers: they reconcile the same requests and sign with their own keys, and
   * their webhook registrations come and go. A grant signed by none of this controller's keys
   * (whoever signed it, it says nothing here) is asked for again under a new name.
   */
  async function issue(base: string): Promise<Issued> {
    const outcomes: string[] = [];
    for (let attempt = 1; attempt <= 20; attempt++) {
      const name = `${base}-${attempt}`;
      await createPod(namespace(), name, 'etl');
      await createRequest(namespace(), name, { subject: { podName: name } });
      const request = await eventually(
        async () => {
          const current = await getRequest(namespace(), name);
          expect(current?.status?.phase).to.be.oneOf(['Granted', 'Denied', 'Failed']);
          return current!;
        },
        { what: `AccessRequest ${name} to be decided` },
      );
      if (request.status?.phase !== 'Granted') {
        outcomes.push(`${name}: ${request.status?.phase} (${request.status?.decision ?? ''})`);
        continue;
      }
      const token = await eventually(async () => {
        const { secret } = await grantObjectsPresent(namespace(), name);
        const value = Buffer.from(secret?.data?.token ?? '', 'base64').toString();
        expect(decodeJwt(value).jti, 'the token of the live grant').to.equal(request.status?.grant?.id);
        return value;
      });
      const kid = decodeProtectedHeader(token).kid ?? '';
      if ((await secretKeys()).keys.some((key) => key.kid === kid)) return { name, token, kid };
      outcomes.push(`${name}: signed by key ${kid} of another controller`);
    }
    throw new Error(`no grant signed by this controller: ${outcomes.join('; ')}`);
  }

  /**
   * Polls the JWKS until a key not seen before is in it. `publishedBy` is when the answer that
   * first held it arrived: the key was published by then. It is exact to within a poll only
   * when an earlier answer did not hold the key and this one came back quickly.
   */
  async function nextPublishedKey(): Promise<{ kid: string; publishedBy: number; exact: boolean }> {
    let polls = 0;
    return eventually(
      async () => {
        const sentAt = Date.now();
        const fresh = (await publishedKids()).filter((kid) => !seen.includes(kid));
        polls++;
        expect(fresh, 'keys published that were not seen before').to.have.length(1);
        seen.push(fresh[0]!);
        const publishedBy = Date.now();
        return { kid: fresh[0]!, publishedBy, exact: polls > 1 && publishedBy - sentAt < 1_000 };
      },
      { timeout: 40_000, interval: 100, what: 'the next key to be published' },
    );
  }

  const sleepUntil = (at: number) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

  /**
   * Watches one rotation: the next key is published a lead before it signs; a grant issued in
   * between is signed by the key before it, and one issued after the switch by the new key. When
   * the cluster was too slow to issue inside a window (it is shared), the rotation proves nothing
   * either way and the next one is watched instead.
   */
  async function observeRotation(label: string): Promise<Epoch> {
    const tooSlow: string[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      const previous = seen.at(-1);
      const { kid, publishedBy, exact } = await nextPublishedKey();
      const from = await signsFrom(kid);
      if (!exact) {
        tooSlow.push('the JWKS did not answer quickly before and after the next key came');
        continue;
      }
      expect(from - publishedBy, 'ms the next key is published before it signs').to.be.above(
        PUBLISH_LEAD_MS - 1_000,
      );
      const previousWhilePublished = await issue(`${label}-${attempt}-before-switch`);
      if (Date.now() >= from) {
        tooSlow.push(`a grant before the switch took until ${Date.now() - from} ms after it`);
        continue;
      }
      expect(previousWhilePublished.kid, 'kid of a token issued while the next key waits').to.equal(previous);
      await sleepUntil(from + 200);
      const token = await issue(`${label}-${attempt}-after-switch`);
      // A key after this one starts signing a full period after it, at the earliest.
      if (Date.now() >= from + ROTATION_PERIOD_MS) {
        tooSlow.push(`a grant after the switch took until ${Date.now() - from} ms after it`);
        continue;
      }
      expect(token.kid, 'kid of a token issued after the switch').to.equal(kid);
      return { kid, token, previousWhilePublished };
    }
    throw new Error(`the cluster was too slow to watch a rotation: ${tooSlow.join('; ')}`);
  }

  it('signs the first grant with the key it publishes', async () => {
    const token = await issue('first-key');
    const published = await publishedKids();
    expect(published).to.include(token.kid);
    // Should the next key be published already, it comes after this one.
    seen.push(token.kid, ...published.filter((kid) => kid !== token.kid));
    epochs.push({ kid: token.kid, token });
  });

  for (const rotation of ['first', 'second']) {
    it(`publishes the next key before it signs, then signs with it (${rotation} rotation)`, async () => {
      epochs.push(await observeRotation(`${rotation}-rotation`));
      // Every older key stays published while tokens it signed are unexpired (5 minute grants).
      expect(await publishedKids()).to.include.members(epochs.map((e) => e.kid));
    });
  }

  it('verifies each key’s tokens against the JWKS, and reports them active at /introspect', async () => {
    expect(new Set(epochs.map((e) => e.kid)).size, 'distinct signing keys').to.equal(3);
    for (const issued of allTokens()) {
      expect(await verifiesAgainstJwks(issued.token), `${issued.name} verifies`).to.equal(true);
      expect((await introspect(issued.token)).active, `${issued.name} is active`).to.equal(true);
    }
  });

  it('refuses a token whose signature no key in the JWKS verifies', async () => {
    const [header, payload] = epochs[1]!.token.token.split('.');
    const forged = `${header}.${payload}.${epochs[2]!.token.token.split('.')[2]}`;
    expect(await verifiesAgainstJwks(forged)).to.equal(false);
    expect((await introspect(forged)).active).to.equal(false);
  });

  async function drill(kid: string): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        // A kid may begin with '-': it goes after '--'.
        [path.join(repoRoot, 'hack', 'retire-key.ts'), '--namespace', keysNamespace(), '--', kid],
        { cwd: repoRoot, env: { ...process.env, KUBECONFIG: kubeconfigPath } },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      );
    });
  }

  it('the drill on a key that no longer signs makes its tokens inactive at once, and no others', async () => {
    // The key of the first rotation: the third key signs now or has signed after it.
    const compromised = epochs[1]!.kid;
    expect(await drill(compromised)).to.include(`Retired signing key ${compromised}`);
    const [ofRetired, ofOthers] = [
      allTokens().filter((t) => t.kid === compromised),
      allTokens().filter((t) => t.kid !== compromised),
    ];
    expect(ofRetired.length, 'tokens of the retired key').to.be.at.least(1);
    await eventually(
      async () => {
        expect(await publishedKids()).to.not.include(compromised);
        expect((await introspect(epochs[1]!.token.token)).active, 'token of the retired key').to.equal(false);
      },
      { timeout: 10_000, what: 'the retired key to leave the JWKS and its token to be inactive' },
    );
    for (const issued of ofRetired) {
      expect(await verifiesAgainstJwks(issued.token), `${issued.name} verifies`).to.equal(false);
      expect((await introspect(issued.token)).active, `${issued.name} is active`).to.equal(false);
    }
    for (const issued of ofOthers) {
      expect(await verifiesAgainstJwks(issued.token), `${issued.name} verifies`).to.equal(true);
      expect((await introspect(issued.token)).active, `${issued.name} is active`).to.equal(true);
    }
    expect(await publishedKids()).to.include.members([epochs[0]!.kid, epochs[2]!.kid]);
  });

  it('the drill on the signing key makes new grants be signed by another key at once', async () => {
    const before = await issue('before-drill');
    const compromised = before.kid;
    expect(await drill(compromised)).to.include(`Retired signing key ${compromised}`);
    await eventually(
      async () => {
        expect(await publishedKids()).to.not.include(compromised);
        expect((await introspect(before.token)).active).to.equal(false);
      },
      { timeout: 10_000, what: 'the retired signing key to leave the JWKS' },
    );
    const replacement = await issue('after-drill');
    expect(replacement.kid).to.not.equal(compromised);
    expect(
      epochs.map((e) => e.kid),
      'keys that signed before',
    ).to.not.include(replacement.kid);
    expect(await verifiesAgainstJwks(replacement.token)).to.equal(true);
    expect((await introspect(replacement.token)).active).to.equal(true);
    expect((await introspect(epochs[0]!.token.token)).active, 'a token of the first key').to.equal(true);
  });
});
