import type { AccessRequest } from '../../api/types.ts';
import { labels } from '../../api/types.ts';
import { isAlreadyExists, isForbidden, statusMessage } from '../../k8s/errors.ts';
import type { V1Secret } from '@kubernetes/client-node';
import type { GrantObject, GrantObjectKind, GrantObjectStore } from '../../k8s/grant-store.ts';
import type { GrantTokenClaims } from '../../tokens/grant-token.ts';
import type { WrittenCache } from './caches.ts';
import {
  grantObjectName,
  grantRole,
  grantRoleBinding,
  grantSecret,
  GRANT_KINDS,
  grantTokenClaims,
  recordedUids,
  secretValue,
  type Issuance,
  type RecordedUids,
} from './grant-objects.ts';

/** An object under one of a grant's names that hourglass did not create. */
export class NameConflict extends Error {}
/** hourglass itself does not hold what a Role would grant. */
export class BeyondCeiling extends Error {}

/**
 * How far the API server's clock may be behind the controller's: an object created this long
 * before an issuance's recorded intent still counts as created after it.
 */
const CLOCK_SKEW_MS = 2_000;

const DELETION_ORDER: readonly GrantObjectKind[] = [...GRANT_KINDS].reverse();

export interface GrantObjectPortDeps {
  store: Pick<GrantObjectStore, 'create' | 'read' | 'patch' | 'delete'>;
  caches: { [K in GrantObjectKind]: WrittenCache<GrantObject> };
  signToken: (claims: Omit<GrantTokenClaims, 'issuer'>) => Promise<string>;
}

/**
 * A request's Secret, Role and RoleBinding. An object belongs to a grant only when status records
 * its UID: labels and owner references are anyone's to write, status is only hourglass's. Objects
 * are never adopted, and revocation deletes what status records, whatever its labels say now.
 * Every write goes into the caches at once.
 */
export class GrantObjectPort {
  readonly #d: GrantObjectPortDeps;

  constructor(deps: GrantObjectPortDeps) {
    this.#d = deps;
  }

  /** The cached objects whose UID status records for this request. */
  own(request: AccessRequest): Partial<Record<GrantObjectKind, GrantObject>> {
    const uids = recordedUids(request.status?.grant);
    const own: Partial<Record<GrantObjectKind, GrantObject>> = {};
    for (const kind of GRANT_KINDS) {
      const cached = this.#cached(kind, request);
      if (cached && uids[kind] && cached.metadata?.uid === uids[kind]) own[kind] = cached;
    }
    return own;
  }

  /**
   * Creates the objects of an issuance whose intent status already records, in order, and returns
   * their UIDs. A first attempt fails on any object in the way. A resumed attempt (a crash came
   * between the intent and the record of the UIDs) replaces what was created since the intent,
   * which is either its own or planted, and fails on anything older.
   */
  async create(issuance: Issuance, { resumed }: { resumed: boolean }): Promise<RecordedUids> {
    const desired = await this.#desired(issuance, true);
    const uids: RecordedUids = {};
    const since = Date.parse(issuance.request.status?.grant?.issuedAt ?? '') - CLOCK_SKEW_MS;
    try {
      for (const kind of GRANT_KINDS) {
        try {
          uids[kind] = await this.#create(kind, desired[kind]);
        } catch (error) {
          if (!isAlreadyExists(error)) throw error;
          if (!resumed) throw this.#conflict(kind, issuance.request);
          const existing = await this.#read(kind, issuance.request);
          const created = Date.parse(String(existing?.metadata?.creationTimestamp ?? ''));
          if (!existing || !(created >= since)) throw this.#conflict(kind, issuance.request);
          await this.#delete(kind, existing);
          uids[kind] = await this.#create(kind, desired[kind]);
        }
      }
    } catch (error) {
      // A grant that cannot be issued whole leaves nothing: what this attempt created goes again.
      if (error instanceof NameConflict || error instanceof BeyondCeiling) {
        for (const kind of DELETION_ORDER) {
          const uid = uids[kind];
          if (uid) await this.#delete(kind, this.#named(kind, issuance.request, uid));
        }
      }
      throw error;
    }
    return uids;
  }

  /**
   * Brings the recorded objects to the issuance (a renewal's new grant id and token, or a repair),
   * patching each with its recorded UID as precondition and re-creating what is gone. Resolves to
   * the UIDs now recorded; throws NameConflict when a recorded name is held by another object.
   */
  async ensure(issuance: Issuance): Promise<RecordedUids> {
    const { request, grantId } = issuance;
    const uids = recordedUids(request.status?.grant);
    const own = this.own(request);
    const secret = own.Secret as V1Secret | undefined;
    const secretCurrent = secret !== undefined && secretValue(secret, 'grantId') === grantId;
    let desired: Record<GrantObjectKind, GrantObject> | undefined;
    for (const kind of GRANT_KINDS) {
      const cached = own[kind];
      if (cached?.metadata?.labels?.[labels.grantId] === grantId && (kind !== 'Secret' || secretCurrent))
        continue;
      desired ??= await this.#desired(issuance, !secretCurrent);
      const uid = uids[kind];
      const live = cached ?? (uid ? await this.#read(kind, request) : undefined);
      if (live && live.metadata?.uid !== uid) throw this.#conflict(kind, request);
      if (live && uid) await this.#patch(kind, live, desired[kind], kind !== 'Secret' || !secretCurrent);
      else
        uids[kind] = await this.#create(kind, desired[kind]).catch((error: unknown) => {
          throw isAlreadyExists(error) ? this.#conflict(kind, request) : error;
        });
    }
    return uids;
  }

  /**
   * Deletes the grant's objects in reverse order: each recorded by name with its recorded UID as
   * precondition, whatever labels it carries now; for an issuance interrupted before its UIDs were
   * recorded, what was created under its names since its intent.
   */
  async delete(request: AccessRequest): Promise<void> {
    const grant = request.status?.grant;
    if (!grant?.id) return;
    const uids = recordedUids(grant);
    const since = Date.parse(grant.issuedAt ?? '') - CLOCK_SKEW_MS;
    for (const kind of DELETION_ORDER) {
      const uid = uids[kind];
      if (uid) {
        await this.#delete(kind, this.#named(kind, request, uid));
        continue;
      }
      const existing = await this.#read(kind, request);
      if (existing && Date.parse(String(existing.metadata?.creationTimestamp ?? '')) >= since)
        await this.#delete(kind, existing);
    }
  }

  /** Deletes the cached objects whose UID status records (what a final request may still have). */
  async deleteCached(request: AccessRequest): Promise<void> {
    const own = this.own(request);
    for (const kind of DELETION_ORDER) {
      const object = own[kind];
      if (object) await this.#delete(kind, object);
    }
  }

  /**
   * Deletes objects under a request name's grant names that are labelled for another request of
   * that name (a deleted one whose cleanup was cut short), or for a request that is gone.
   */
  async deleteLeftovers(namespace: string, requestName: string, keepUid?: string): Promise<void> {
    for (const kind of DELETION_ORDER) {
      const object = this.#d.caches[kind].get(namespace, grantObjectName(kind, requestName));
      const objectLabels = object?.metadata?.labels ?? {};
      if (
        !object ||
        objectLabels[labels.request] !== requestName ||
        objectLabels[labels.requestUid] === keepUid
      )
        continue;
      await this.#delete(kind, object);
    }
  }

  #cached(kind: GrantObjectKind, request: AccessRequest): GrantObject | undefined {
    return this.#d.caches[kind].get(request.metadata.namespace, grantObjectName(kind, request.metadata.name));
  }

  #named(kind: GrantObjectKind, request: AccessRequest, uid: string): GrantObject {
    const { namespace } = request.metadata;
    return { metadata: { name: grantObjectName(kind, request.metadata.name), namespace, uid } };
  }

  #read(kind: GrantObjectKind, request: AccessRequest): Promise<GrantObject | undefined> {
    return this.#d.store.read(kind, request.metadata.namespace, grantObjectName(kind, request.metadata.name));
  }

  async #desired(issuance: Issuance, withToken: boolean): Promise<Record<GrantObjectKind, GrantObject>> {
    const claims = withToken ? grantTokenClaims(issuance) : undefined;
    const token = claims ? await this.#d.signToken(claims) : undefined;
    const withSecret = { ...issuance, ...(token ? { token } : {}) };
    return {
      Secret: grantSecret(withSecret),
      Role: grantRole(issuance),
      RoleBinding: grantRoleBinding(issuance),
    };
  }

  async #create(kind: GrantObjectKind, body: GrantObject): Promise<string> {
    const { namespace = '' } = body.metadata ?? {};
    try {
      const created = await this.#d.store.create(kind, namespace, body);
      this.#d.caches[kind].recordWrite(created);
      return created.metadata?.uid ?? '';
    } catch (error) {
      if (isForbidden(error) && kind !== 'Secret')
        throw new BeyondCeiling(
          `hourglass itself does not hold what the ${kind} would grant: ${statusMessage(error)}`,
        );
      throw error;
    }
  }

  /** A merge patch that carries the object's UID: the API server refuses it if the name has another object now. */
  async #patch(kind: GrantObjectKind, live: GrantObject, desired: GrantObject, withData: boolean) {
    const { namespace = '', name = '', uid } = live.metadata ?? {};
    const body = {
      metadata: { uid, labels: desired.metadata?.labels },
      ...(kind === 'Secret' && withData ? { data: (desired as V1Secret).data } : {}),
    };
    this.#d.caches[kind].recordWrite(await this.#d.store.patch(kind, namespace, name, body));
  }

  async #delete(kind: GrantObjectKind, object: GrantObject): Promise<void> {
    const { namespace = '', name = '', uid = '' } = object.metadata ?? {};
    await this.#d.store.delete(kind, namespace, name, uid);
    this.#d.caches[kind].recordDeletion(object);
  }

  #conflict(kind: GrantObjectKind, request: AccessRequest): NameConflict {
    const name = grantObjectName(kind, request.metadata.name);
    return new NameConflict(
      `${kind} "${request.metadata.namespace}/${name}" exists and hourglass did not create it: it is never adopted.`,
    );
  }
}
