import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { labels, type AccessRequest } from '../../../../src/api/types.ts';
import { issuanceOf, type RecordedUids } from '../../../../src/controllers/accessrequest/grant-objects.ts';
import {
  GrantObjectPort,
  NameConflict,
} from '../../../../src/controllers/accessrequest/grant-object-port.ts';
import type { WrittenCache } from '../../../../src/controllers/accessrequest/caches.ts';
import type { GrantObject, GrantObjectKind } from '../../../../src/k8s/grant-store.ts';
import {
  at,
  GRANT_ID,
  grantedRequest,
  iso,
  MINUTE,
  NAMESPACE,
  pendingRequest,
  REQUEST_NAME,
  SECOND,
  workload,
} from './fixtures.ts';

const NAMES: Record<GrantObjectKind, string> = {
  Secret: `${REQUEST_NAME}-grant`,
  Role: `hourglass-${REQUEST_NAME}`,
  RoleBinding: `hourglass-${REQUEST_NAME}`,
};

/** The API server as these calls see it: UIDs, creation times, AlreadyExists, UID preconditions. */
class FakeStore {
  readonly objects = new Map<string, GrantObject>();
  readonly actions: string[] = [];
  #uids = 0;
  /** The creation time the server stamps on the next object. */
  clock = at(0);

  plant(kind: GrantObjectKind, name: string, object: Partial<GrantObject>, createdAt: Date): string {
    const uid = `planted-${++this.#uids}`;
    this.objects.set(`${kind}/${name}`, {
      ...object,
      metadata: { ...object.metadata, name, namespace: NAMESPACE, uid, creationTimestamp: createdAt },
    } as GrantObject);
    return uid;
  }

  async create(kind: GrantObjectKind, namespace: string, body: GrantObject): Promise<GrantObject> {
    const name = body.metadata?.name ?? '';
    this.actions.push(`create ${kind}`);
    if (this.objects.has(`${kind}/${name}`))
      throw new ApiException(409, 'exists', { reason: 'AlreadyExists' }, {});
    const created = {
      ...body,
      metadata: { ...body.metadata, namespace, uid: `uid-${++this.#uids}`, creationTimestamp: this.clock },
    } as GrantObject;
    this.objects.set(`${kind}/${name}`, created);
    return structuredClone(created);
  }

  async read(kind: GrantObjectKind, _namespace: string, name: string): Promise<GrantObject | undefined> {
    this.actions.push(`read ${kind}`);
    const object = this.objects.get(`${kind}/${name}`);
    return object && structuredClone(object);
  }

  async patch(kind: GrantObjectKind, _namespace: string, name: string, body: object): Promise<GrantObject> {
    this.actions.push(`patch ${kind}`);
    const object = this.objects.get(`${kind}/${name}`);
    const patch = body as { metadata?: { uid?: string; labels?: Record<string, string> }; data?: object };
    if (!object) throw new ApiException(404, 'not found', { reason: 'NotFound' }, {});
    if (patch.metadata?.uid && patch.metadata.uid !== object.metadata?.uid)
      throw new ApiException(409, 'uid', { reason: 'Conflict' }, {});
    const patched = {
      ...object,
      ...(patch.data ? { data: patch.data } : {}),
      metadata: { ...object.metadata, labels: { ...object.metadata?.labels, ...patch.metadata?.labels } },
    } as GrantObject;
    this.objects.set(`${kind}/${name}`, patched);
    return structuredClone(patched);
  }

  async delete(kind: GrantObjectKind, _namespace: string, name: string, uid: string): Promise<void> {
    this.actions.push(`delete ${kind}`);
    const object = this.objects.get(`${kind}/${name}`);
    if (object && object.metadata?.uid === uid) this.objects.delete(`${kind}/${name}`);
  }

  uid(kind: GrantObjectKind): string | undefined {
    return this.objects.get(`${kind}/${NAMES[kind]}`)?.metadata?.uid;
  }
}

/** A cache that holds what this process wrote, and only objects carrying hourglass's label (as the informers select). */
function fakeCache(): WrittenCache<GrantObject> & { objects: Map<string, GrantObject> } {
  const objects = new Map<string, GrantObject>();
  return {
    objects,
    get: (_namespace, name) => objects.get(name),
    list: () => [...objects.values()],
    recordWrite: (object) => {
      if (object.metadata?.labels?.[labels.managedBy]) objects.set(object.metadata.name ?? '', object);
      else objects.delete(object.metadata?.name ?? '');
    },
    recordDeletion: (object) => objects.delete(object.metadata?.name ?? ''),
  };
}

function port(store: FakeStore) {
  const caches = { Secret: fakeCache(), Role: fakeCache(), RoleBinding: fakeCache() };
  const signed: string[] = [];
  const grantObjects = new GrantObjectPort({
    store,
    caches,
    signToken: async (claims) => {
      signed.push(`${claims.grantId}@${claims.expiresAt.toISOString()}`);
      return `token-${claims.grantId}`;
    },
  });
  return { grantObjects, caches, signed };
}

/** A request whose issuance intent (grant id, expiry) status records at NOW. */
function issuingRequest(): AccessRequest {
  return pendingRequest({
    spec: {
      token: { audience: ['orders-api'], actions: ['orders:read'], target: 'postgres://orders-db/orders' },
    },
    status: { grant: { id: GRANT_ID, issuedAt: iso(0), expiresAt: iso(10 * MINUTE) } },
  });
}

function withUids(request: AccessRequest, uids: RecordedUids): AccessRequest {
  const grant = request.status?.grant;
  return {
    ...request,
    status: {
      ...request.status,
      phase: 'Granted',
      grant: { ...grant, secretUID: uids.Secret, roleUID: uids.Role, roleBindingUID: uids.RoleBinding },
    },
  };
}

describe('grant object port', () => {
  it('creates Secret, Role and RoleBinding in that order, with the terms status records, and returns their UIDs', async () => {
    const store = new FakeStore();
    const { grantObjects, signed } = port(store);
    const uids = await grantObjects.create(issuanceOf(issuingRequest(), workload()), { resumed: false });
    expect(store.actions).to.deep.equal(['create Secret', 'create Role', 'create RoleBinding']);
    expect(uids).to.deep.equal({
      Secret: store.uid('Secret'),
      Role: store.uid('Role'),
      RoleBinding: store.uid('RoleBinding'),
    });
    expect(signed).to.deep.equal([`${GRANT_ID}@${iso(10 * MINUTE)}`]);
  });

  it('fails with NameConflict on a planted Secret and leaves it untouched (a tenant with edit cannot set the grant)', async () => {
    const store = new FakeStore();
    const plantedUid = store.plant(
      'Secret',
      NAMES.Secret,
      { metadata: { labels: { [labels.managedBy]: 'hourglass', [labels.grantId]: 'chosen-by-tenant' } } },
      at(-MINUTE),
    );
    const { grantObjects } = port(store);
    const issuance = issuanceOf(issuingRequest(), workload());
    const error = await grantObjects.create(issuance, { resumed: false }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(NameConflict);
    expect((error as Error).message).to.contain(`Secret "${NAMESPACE}/${NAMES.Secret}"`);
    expect(store.uid('Secret')).to.equal(plantedUid);
    expect(store.actions).to.deep.equal(['create Secret']);
  });

  it('deletes what it created when a later object is in the way', async () => {
    const store = new FakeStore();
    store.plant('RoleBinding', NAMES.RoleBinding, {}, at(-MINUTE));
    const { grantObjects } = port(store);
    const error = await grantObjects
      .create(issuanceOf(issuingRequest(), workload()), { resumed: false })
      .catch((e: unknown) => e);
    expect(error).to.be.instanceOf(NameConflict);
    expect(store.actions).to.deep.equal([
      'create Secret',
      'create Role',
      'create RoleBinding',
      'delete Role',
      'delete Secret',
    ]);
    expect(store.uid('Secret')).to.equal(undefined);
    expect(store.uid('Role')).to.equal(undefined);
  });

  it('resuming after a crash replaces what was created since the intent, never adopting it', async () => {
    const store = new FakeStore();
    const { grantObjects } = port(store);
    const request = issuingRequest();
    // The crashed attempt created the Secret; a tenant could equally have planted it since the intent.
    const earlier = store.plant('Secret', NAMES.Secret, {}, at(SECOND));
    const uids = await grantObjects.create(issuanceOf(request, workload()), { resumed: true });
    expect(uids.Secret).to.not.equal(earlier);
    expect(store.actions).to.deep.equal([
      'create Secret',
      'read Secret',
      'delete Secret',
      'create Secret',
      'create Role',
      'create RoleBinding',
    ]);
  });

  it('resuming fails with NameConflict on an object older than the intent', async () => {
    const store = new FakeStore();
    const { grantObjects } = port(store);
    const older = store.plant('Role', NAMES.Role, {}, at(-MINUTE));
    const error = await grantObjects
      .create(issuanceOf(issuingRequest(), workload()), { resumed: true })
      .catch((e: unknown) => e);
    expect(error).to.be.instanceOf(NameConflict);
    expect(store.uid('Role')).to.equal(older);
    expect(store.uid('Secret')).to.equal(undefined);
  });

  it('recognises only objects whose UID status records, whatever their labels', async () => {
    const store = new FakeStore();
    const { grantObjects, caches } = port(store);
    const request = issuingRequest();
    const uids = await grantObjects.create(issuanceOf(request, workload()), { resumed: false });
    expect(Object.keys(grantObjects.own(request))).to.deep.equal([]);
    expect(Object.keys(grantObjects.own(withUids(request, uids)))).to.deep.equal([
      'Secret',
      'Role',
      'RoleBinding',
    ]);
    const planted = {
      ...caches.Role.objects.get(NAMES.Role),
      metadata: { ...caches.Role.objects.get(NAMES.Role)?.metadata, uid: 'other' },
    };
    caches.Role.objects.set(NAMES.Role, planted as GrantObject);
    expect(Object.keys(grantObjects.own(withUids(request, uids)))).to.deep.equal(['Secret', 'RoleBinding']);
  });

  it('revokes by recorded name and UID, whatever labels the objects carry now (a namespace admin relabelled them)', async () => {
    const store = new FakeStore();
    const { grantObjects, caches } = port(store);
    const request = issuingRequest();
    const granted = withUids(
      request,
      await grantObjects.create(issuanceOf(request, workload()), { resumed: false }),
    );
    for (const cache of Object.values(caches)) cache.objects.clear(); // relabelled: out of the label-selected caches
    store.actions.length = 0;
    await grantObjects.delete(granted);
    expect(store.actions).to.deep.equal(['delete RoleBinding', 'delete Role', 'delete Secret']);
    expect(store.objects.size).to.equal(0);
  });

  it('never deletes an object that took a recorded name after the grant object was gone', async () => {
    const store = new FakeStore();
    const { grantObjects } = port(store);
    const request = issuingRequest();
    const granted = withUids(
      request,
      await grantObjects.create(issuanceOf(request, workload()), { resumed: false }),
    );
    store.objects.delete(`Role/${NAMES.Role}`);
    const stranger = store.plant('Role', NAMES.Role, {}, at(MINUTE));
    await grantObjects.delete(granted);
    expect(store.uid('Role')).to.equal(stranger);
    expect(store.uid('Secret')).to.equal(undefined);
  });

  it('repairs a relabelled object in place, re-creates a deleted one, and reports the new UID', async () => {
    const store = new FakeStore();
    const { grantObjects, caches } = port(store);
    const request = issuingRequest();
    const uids = await grantObjects.create(issuanceOf(request, workload()), { resumed: false });
    const granted = withUids(request, uids);
    caches.Role.objects.clear(); // relabelled
    store.objects.delete(`RoleBinding/${NAMES.RoleBinding}`);
    caches.RoleBinding.objects.clear();
    store.actions.length = 0;
    const repaired = await grantObjects.ensure(issuanceOf(granted, workload()));
    expect(store.actions).to.deep.equal([
      'read Role',
      'patch Role',
      'read RoleBinding',
      'create RoleBinding',
    ]);
    expect(repaired.Role).to.equal(uids.Role);
    expect(repaired.RoleBinding).to.not.equal(uids.RoleBinding);
    expect(repaired.RoleBinding).to.equal(store.uid('RoleBinding'));
  });

  it('ends a grant whose recorded name now holds an object hourglass did not create', async () => {
    const store = new FakeStore();
    const { grantObjects, caches } = port(store);
    const request = issuingRequest();
    const granted = withUids(
      request,
      await grantObjects.create(issuanceOf(request, workload()), { resumed: false }),
    );
    store.objects.delete(`Secret/${NAMES.Secret}`);
    caches.Secret.objects.clear();
    store.plant(
      'Secret',
      NAMES.Secret,
      { metadata: { labels: { [labels.managedBy]: 'hourglass' } } },
      at(MINUTE),
    );
    const error = await grantObjects.ensure(issuanceOf(granted, workload())).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(NameConflict);
  });

  it('takes a renewal’s grant id and expiry from status, not from the Secret', async () => {
    const store = new FakeStore();
    const { grantObjects, signed } = port(store);
    const request = issuingRequest();
    const granted = withUids(
      request,
      await grantObjects.create(issuanceOf(request, workload()), { resumed: false }),
    );
    const renewed = grantedRequest({
      status: {
        ...granted.status,
        grant: {
          ...granted.status?.grant,
          id: 'grant-2',
          issuedAt: iso(MINUTE),
          expiresAt: iso(11 * MINUTE),
        },
      },
      spec: request.spec,
    });
    store.actions.length = 0;
    await grantObjects.ensure(issuanceOf(renewed, workload()));
    expect(store.actions).to.deep.equal(['patch Secret', 'patch Role', 'patch RoleBinding']);
    expect(signed.at(-1)).to.equal(`grant-2@${iso(11 * MINUTE)}`);
    const secret = store.objects.get(`Secret/${NAMES.Secret}`) as { data?: Record<string, string> };
    expect(Buffer.from(secret.data?.expiresAt ?? '', 'base64').toString()).to.equal(iso(11 * MINUTE));
  });
});
