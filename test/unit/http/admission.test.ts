import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import { expect } from 'chai';
import { annotations } from '../../../src/api/types.ts';
import {
  ACCESS_REVIEW_CONCURRENCY,
  ADMISSION_BODY_LIMIT,
  MAX_ACCESS_REVIEWS,
  MAX_REQUESTED_ACCESSES,
  admissionRoutes,
  type AdmissionDeps,
  type UserInfo,
} from '../../../src/http/admission.ts';
import { route } from '../../../src/http/router.ts';
import { close, listen, type Listening } from '../../../src/http/servers.ts';

const CONTROLLER = 'system:serviceaccount:hourglass-system:hourglass';
const mallory: UserInfo = { username: 'mallory', uid: 'u-1', groups: ['system:authenticated'] };

interface Response {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patch?: string;
  warnings?: string[];
}

/** A fake of the controller's side of admission that counts what the webhook asked of it. */
function fakeDeps() {
  const calls = { explain: 0, accessReviews: [] as V1SubjectAccessReviewSpec[], inFlight: 0, maxInFlight: 0 };
  const deps: AdmissionDeps = {
    controllerUsername: () => CONTROLLER,
    recordedPolicy: () => undefined,
    subjectUid: () => 'pod-uid-1',
    explain: () => {
      calls.explain++;
      return ['hourglass would allow this request: allowed by AccessPolicy/readers'];
    },
    allowedTo: async (spec) => {
      calls.accessReviews.push(spec);
      calls.inFlight++;
      calls.maxInFlight = Math.max(calls.maxInFlight, calls.inFlight);
      await new Promise((r) => setTimeout(r, 2));
      calls.inFlight--;
      return spec.resourceAttributes?.verb !== 'delete';
    },
    now: () => new Date('2026-01-01T00:00:00Z'),
  };
  return { deps, calls };
}

const accessRequest = (spec: object, metadata: object = {}) => ({
  apiVersion: 'hourglass.dev/v1alpha1',
  kind: 'AccessRequest',
  metadata: { name: 'r', namespace: 'team', ...metadata },
  spec: {
    subject: { podName: 'etl-pod' },
    purpose: 'OPS-1 nightly export',
    permissions: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
    ...spec,
  },
});

const policy = (permissions: object[], audiences?: string[]) => ({
  apiVersion: 'hourglass.dev/v1alpha1',
  kind: 'AccessPolicy',
  metadata: { name: 'p', namespace: 'team' },
  spec: {
    subjects: { serviceAccounts: ['etl'] },
    allow: {
      permissions,
      ...(audiences ? { token: { audiences, actions: ['*'], targets: ['*'] } } : {}),
    },
  },
});

describe('admission webhook', () => {
  let server: Listening;
  let fake: ReturnType<typeof fakeDeps>;
  beforeEach(async () => {
    fake = fakeDeps();
    server = await listen(
      route(admissionRoutes(fake.deps), (error) => {
        throw error;
      }),
      { host: '127.0.0.1', port: 0 },
    );
  });
  afterEach(() => close(server.server, 0));

  const review = async (
    path: '/mutate' | '/validate',
    request: {
      resource: string;
      subResource?: string;
      operation: 'CREATE' | 'UPDATE';
      object: object;
      oldObject?: object;
      userInfo?: UserInfo;
      dryRun?: boolean;
    },
  ): Promise<Response> => {
    const { resource, ...rest } = request;
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'review-1',
          resource: { group: 'hourglass.dev', version: 'v1alpha1', resource },
          userInfo: mallory,
          ...rest,
        },
      }),
    });
    expect(response.status).to.equal(200);
    return ((await response.json()) as { response: Response }).response;
  };
  const patchOf = (response: Response) =>
    JSON.parse(Buffer.from(response.patch ?? 'W10=', 'base64').toString()) as {
      op: string;
      path: string;
      value: unknown;
    }[];

  describe('bounds', () => {
    it('refuses a dry-run request with 30 000 apiGroups by the schema limit, before explaining it', async () => {
      const object = accessRequest({
        permissions: [{ apiGroups: new Array(30_000).fill(''), resources: ['secrets'], verbs: ['get'] }],
      });
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'CREATE',
        object,
        dryRun: true,
      });
      expect(response.allowed).to.equal(false);
      expect(response.status).to.deep.equal({
        code: 422,
        reason: 'Invalid',
        message: 'spec.permissions[0].apiGroups: at most 16 items (got 30000)',
      });
      expect(fake.calls.explain).to.equal(0);
    });

    it('refuses a policy beyond the schema limits before any SubjectAccessReview', async () => {
      const object = policy([{ apiGroups: [''], resources: new Array(33).fill('pods'), verbs: ['get'] }]);
      const response = await review('/validate', { resource: 'accesspolicies', operation: 'CREATE', object });
      expect(response.status?.message).to.equal(
        'spec.allow.permissions[0].resources: at most 32 items (got 33)',
      );
      expect(fake.calls.accessReviews).to.have.length(0);
    });

    it('lets the controller update a request stored under looser limits', async () => {
      const stored = accessRequest({ requester: { username: 'alice', groups: new Array(129).fill('g') } });
      const object = { ...stored, metadata: { ...stored.metadata, finalizers: [] } };
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'UPDATE',
        object,
        oldObject: stored,
        userInfo: { username: CONTROLLER },
      });
      expect(response.allowed).to.equal(true);
    });

    it('refuses a review declared over the limit from its first bytes, before the rest is sent', async () => {
      // The declared body is never completed: an answer proves the server did not wait for it.
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const { port } = server.server.address() as AddressInfo;
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/mutate',
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': 10 * ADMISSION_BODY_LIMIT },
          },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        const head =
          '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"review-9",';
        req.write(head.padEnd(2048, ' '));
      });
      expect(answer.status).to.equal(200);
      expect((JSON.parse(answer.body) as { response: Response }).response).to.deep.equal({
        uid: 'review-9',
        allowed: false,
        status: {
          code: 413,
          reason: 'RequestEntityTooLarge',
          message:
            'hourglass admits AccessRequests and policies whose AdmissionReview (on an update, with the stored object) is at most 256 KiB',
        },
      });
    });

    it('answers 413 to a body streamed past the limit that is no AdmissionReview', async () => {
      const chunks = async function* () {
        yield '{"padding":"';
        for (let sent = 0; sent <= ADMISSION_BODY_LIMIT; sent += 64 * 1024) yield 'x'.repeat(64 * 1024);
        yield '"}';
      };
      const response = await fetch(`${server.url}/mutate`, {
        method: 'POST',
        body: ReadableStream.from(chunks()),
        duplex: 'half',
      } as RequestInit);
      expect(response.status).to.equal(413);
      expect(await response.json()).to.deep.include({ error: 'request_too_large' });
    });
  });

  describe('dry-run explanation', () => {
    it('explains a request of ordinary size', async () => {
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'CREATE',
        object: accessRequest({}),
        dryRun: true,
      });
      expect(response.warnings).to.deep.equal([
        'hourglass would allow this request: allowed by AccessPolicy/readers',
      ]);
      expect(fake.calls.explain).to.equal(1);
    });

    it('refuses a namespace tenant’s request of more accesses than any decision should weigh, before deciding it', async () => {
      const object = accessRequest({
        permissions: [
          {
            apiGroups: Array.from({ length: 16 }, (_, i) => `g${i}`),
            resources: Array.from({ length: 32 }, (_, i) => `r${i}`),
            verbs: Array.from({ length: 16 }, (_, i) => `v${i}`),
          },
        ],
      });
      for (const dryRun of [true, false]) {
        const response = await review('/mutate', {
          resource: 'accessrequests',
          operation: 'CREATE',
          object,
          dryRun,
        });
        expect(response.allowed).to.equal(false);
        expect(response.status?.message).to.equal(
          `spec.permissions: a request may name at most ${MAX_REQUESTED_ACCESSES} accesses (apiGroups x resources x verbs x resourceNames); this one names 8192: split the task into several requests`,
        );
      }
      expect(fake.calls.explain).to.equal(0);
    });
  });

  describe('/validate SubjectAccessReviews', () => {
    const combos = (groups: number, resources: number, verbs: number) => ({
      apiGroups: Array.from({ length: groups }, (_, i) => `g${i}.example`),
      resources: Array.from({ length: resources }, (_, i) => `r${i}`),
      verbs: Array.from({ length: verbs }, (_, i) => (i === 0 ? 'get' : `v${i}`)),
    });

    it(`a caller forging userInfo in an AdmissionReview to /validate gets no more than ${MAX_ACCESS_REVIEWS} SubjectAccessReviews evaluated`, async () => {
      const forged: UserInfo = { username: 'system:admin', groups: ['system:masters'] };
      const object = policy([combos(16, 32, 16)]);
      const response = await review('/validate', {
        resource: 'accesspolicies',
        operation: 'CREATE',
        object,
        userInfo: forged,
      });
      expect(response.allowed).to.equal(false);
      expect(response.status?.message).to.match(
        /this policy needs more than 64 checks; split it into several policies$/,
      );
      expect(fake.calls.accessReviews).to.have.length(0);
    });

    it('counts rules together: many small rules beyond the cap are refused unchecked', async () => {
      const object = policy(
        Array.from({ length: 5 }, (_, i) => ({ ...combos(1, 16, 1), apiGroups: [`g${i}`] })),
      );
      const response = await review('/validate', { resource: 'accesspolicies', operation: 'CREATE', object });
      expect(response.status?.message).to.match(/needs more than 64 checks/);
      expect(fake.calls.accessReviews).to.have.length(0);
    });

    it('checks each distinct access once, at most 8 at a time, and names what the author lacks', async () => {
      const object = policy(
        [
          { ...combos(2, 4, 4), verbs: ['get', 'list', 'watch', 'delete'] },
          { ...combos(2, 4, 1), verbs: ['get'] },
          {
            apiGroups: ['', '', ''],
            resources: ['pods', 'pods'],
            verbs: ['get', 'get'],
            resourceNames: ['a', 'a'],
          },
        ],
        ['orders-api', 'orders-api'],
      );
      const response = await review('/validate', { resource: 'accesspolicies', operation: 'CREATE', object });
      // 2 x 4 x 4 + 1 + 1 audience; the second rule repeats accesses of the first.
      expect(fake.calls.accessReviews).to.have.length(34);
      expect(fake.calls.maxInFlight).to.be.within(2, ACCESS_REVIEW_CONCURRENCY);
      expect(fake.calls.accessReviews[0]).to.deep.include({
        user: 'mallory',
        groups: ['system:authenticated'],
      });
      expect(response.allowed).to.equal(false);
      expect(response.status?.message).to.match(
        /^mallory cannot allow what they do not hold in namespace "team": delete r0.g0.example, delete r1.g0.example/,
      );
    });

    it(`admits a policy needing exactly ${MAX_ACCESS_REVIEWS} checks that its author holds`, async () => {
      const object = policy([{ ...combos(2, 8, 4), verbs: ['get', 'list', 'watch', 'create'] }]);
      const response = await review('/validate', { resource: 'accesspolicies', operation: 'CREATE', object });
      expect(fake.calls.accessReviews).to.have.length(MAX_ACCESS_REVIEWS);
      expect(response.allowed).to.equal(true);
    });
  });

  describe('renew and revoke actors', () => {
    const stored = accessRequest({ requester: { username: 'alice' } }, { uid: 'req-1', finalizers: ['f'] });
    const annotated = (values: Record<string, string>) => ({
      ...stored,
      metadata: { ...stored.metadata, annotations: values },
    });

    it('stamps the authenticated user who set the renew annotation', async () => {
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'UPDATE',
        object: annotated({ [annotations.renew]: 'ticket-1' }),
        oldObject: stored,
      });
      expect(response.allowed).to.equal(true);
      expect(patchOf(response)).to.deep.equal([
        {
          op: 'add',
          path: '/metadata/annotations/hourglass.dev~1renew-requested-by',
          value: 'mallory',
        },
      ]);
    });

    it('stamps whoever changes the revoke annotation, and nothing when it is unchanged', async () => {
      const before = annotated({ [annotations.revoke]: 'yes', [annotations.revokeRequestedBy]: 'alice' });
      const changed = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'UPDATE',
        object: annotated({ [annotations.revoke]: 'now', [annotations.revokeRequestedBy]: 'alice' }),
        oldObject: before,
      });
      expect(patchOf(changed)).to.deep.equal([
        { op: 'add', path: '/metadata/annotations/hourglass.dev~1revoke-requested-by', value: 'mallory' },
      ]);
      const unchanged = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'UPDATE',
        object: { ...before, metadata: { ...before.metadata, labels: { team: 'x' } } },
        oldObject: before,
      });
      expect(unchanged.allowed).to.equal(true);
      expect(unchanged.patch).to.equal(undefined);
    });

    it('refuses a stamp written by anyone but the controller, on create and on update', async () => {
      const forged = { [annotations.renew]: 'ticket-1', [annotations.renewRequestedBy]: 'alice' };
      for (const [operation, oldObject] of [
        ['UPDATE', stored],
        ['CREATE', undefined],
      ] as const) {
        const response = await review('/mutate', {
          resource: 'accessrequests',
          operation,
          object: annotated(forged),
          ...(oldObject ? { oldObject } : {}),
        });
        expect(response.allowed, operation).to.equal(false);
        expect(response.status?.message).to.equal(
          'hourglass.dev/renew-requested-by is set by hourglass from the authenticated caller of hourglass.dev/renew: do not write it',
        );
      }
    });

    it('lets the controller change a stamp', async () => {
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'UPDATE',
        object: stored,
        oldObject: annotated({ [annotations.revokeRequestedBy]: 'alice' }),
        userInfo: { username: CONTROLLER },
      });
      expect(response.allowed).to.equal(true);
    });

    it('stamps a renew annotation present at creation next to the requester', async () => {
      const response = await review('/mutate', {
        resource: 'accessrequests',
        operation: 'CREATE',
        object: accessRequest({}, { annotations: { [annotations.renew]: 'ticket-1' } }),
      });
      const patch = patchOf(response);
      expect(patch).to.deep.include({
        op: 'add',
        path: '/metadata/annotations/hourglass.dev~1renew-requested-by',
        value: 'mallory',
      });
      expect(patch).to.deep.include({
        op: 'add',
        path: '/metadata/annotations/hourglass.dev~1subject-uid',
        value: 'pod-uid-1',
      });
    });
  });
});
