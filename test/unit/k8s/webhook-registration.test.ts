import type { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { LocalWebhookRegistration } from '../../../src/k8s/webhook-registration.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.ts';

/**
 * The admission-registration API as the registration sees it: objects by "Kind/name", and every
 * call recorded. A read may be held (`holdReads`) to play a stalled connection.
 */
function fakeApi() {
  const objects = new Map<string, unknown>();
  const calls: string[] = [];
  let release: (() => void) | undefined;
  const held = { reads: false };
  const notFound = () => new ApiException(404, 'not found', { reason: 'NotFound' }, {});
  const kinds = [
    'MutatingWebhookConfiguration',
    'ValidatingWebhookConfiguration',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
  ];
  const api: Record<
    string,
    (args: { name?: string; body?: { metadata?: { name?: string } } }) => Promise<unknown>
  > = {};
  for (const kind of kinds) {
    api[`read${kind}`] = async ({ name }) => {
      calls.push(`read ${kind}`);
      if (held.reads) await new Promise<void>((resolve) => (release = resolve));
      const found = objects.get(`${kind}/${name}`);
      if (!found) throw notFound();
      return found;
    };
    api[`create${kind}`] = async ({ body }) => {
      calls.push(`create ${kind}`);
      objects.set(`${kind}/${body?.metadata?.name}`, body);
      return body;
    };
    api[`replace${kind}`] = async ({ body }) => {
      calls.push(`replace ${kind}`);
      objects.set(`${kind}/${body?.metadata?.name}`, body);
      return body;
    };
    api[`delete${kind}`] = async ({ name }) => {
      calls.push(`delete ${kind}`);
      objects.delete(`${kind}/${name}`);
      return {};
    };
  }
  return {
    api: api as unknown as AdmissionregistrationV1Api,
    objects,
    calls,
    held,
    release: () => release?.(),
  };
}

const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => done() }));

const registrationOn = (api: AdmissionregistrationV1Api) =>
  new LocalWebhookRegistration(api, 'https://127.0.0.1:9443', 'ca', 'controller', silent);

describe('LocalWebhookRegistration', () => {
  it('registers the webhooks and the status policy, and removes all of them', async () => {
    const fake = fakeApi();
    const registration = registrationOn(fake.api);
    await registration.ensure();
    expect(fake.objects.size).to.equal(4);
    await registration.remove();
    expect(fake.objects.size).to.equal(0);
  });

  it('writes nothing, once removed, from a registration that was stalled in flight', async () => {
    const fake = fakeApi();
    const registration = registrationOn(fake.api);
    fake.held.reads = true;
    const inFlight = registration.ensure();
    await new Promise((resolve) => setImmediate(resolve));
    fake.held.reads = false;
    await registration.remove();
    fake.release();
    await inFlight;
    await registration.ensure();
    expect(fake.objects.size).to.equal(0);
    expect(fake.calls.filter((call) => call.startsWith('create'))).to.deep.equal([]);
  });

  it('stops waiting for a registration stalled longer than the bound', async () => {
    const fake = fakeApi();
    const registration = registrationOn(fake.api);
    fake.held.reads = true;
    void registration.ensure();
    await new Promise((resolve) => setImmediate(resolve));
    const started = Date.now();
    await registration.stop(50);
    expect(Date.now() - started).to.be.lessThan(1_000);
    fake.release();
  });
});
