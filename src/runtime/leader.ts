import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { isAlreadyExists, isConflict, isNotFound } from '../k8s/errors.ts';
import type { Logger } from '../log.ts';

export interface LeaderElectionOptions {
  coordination: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down (before another can take over). */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
  onStartedLeading: () => void;
  /** Called at once when leadership is lost or given up: the caller must stop reconciling. */
  onStoppedLeading: () => void | Promise<void>;
}

const microTime = (date: Date) => date.toISOString().replace(/Z$/, '000Z') as unknown as Date;

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: acquire when the lease
 * is free or expired, renew every retry period, step down when renewals fail past the deadline.
 */
export class LeaderElector {
  readonly #o: Required<
    Omit<LeaderElectionOptions, 'log' | 'onStartedLeading' | 'onStoppedLeading' | 'coordination'>
  > &
    LeaderElectionOptions;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastRenew = 0;

  constructor(options: LeaderElectionOptions) {
    this.#o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...options };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    void this.#tick();
  }

  /** Gives the lease up (so another replica need not wait for it to expire) and stops. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#leading) return;
    await this.#lose('Released leadership');
    try {
      const lease = await this.#read();
      if (lease?.spec?.holderIdentity === this.#o.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.leaseDurationSeconds = 1;
        await this.#o.coordination.replaceNamespacedLease({
          namespace: this.#o.namespace,
          name: this.#o.name,
          body: lease,
        });
      }
    } catch (error) {
      this.#o.log.warn('Failed to release the lease', { error: String(error) });
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      const acquired = await this.#tryAcquireOrRenew();
      if (acquired) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          this.#o.log.info('Became leader', {
            lease: `${this.#o.namespace}/${this.#o.name}`,
            identity: this.#o.identity,
          });
          this.#o.onStartedLeading();
        }
      } else if (this.#leading) {
        await this.#lose('Lost leadership to another replica');
      }
    } catch (error) {
      this.#o.log.debug('Failed to acquire or renew the lease', { error: String(error) });
      if (this.#leading && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) {
        await this.#lose('Lost leadership: could not renew the lease in time');
      }
    }
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
  }

  async #lose(message: string): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    this.#o.log.info(message, { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity });
    await this.#o.onStoppedLeading();
  }

  #read(): Promise<V1Lease | undefined> {
    return this.#o.coordination
      .readNamespacedLease({ namespace: this.#o.namespace, name: this.#o.name })
      .catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity } = this.#o;
    const now = new Date();
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    const lease = await this.#read();
    if (!lease) {
      try {
        await coordination.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (error) {
        if (isAlreadyExists(error)) return false;
        throw error;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
    if (holder && holder !== identity && !expired) return false;
    const takingOver = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
      ...(takingOver
        ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {}),
    };
    try {
      await coordination.replaceNamespacedLease({ namespace, name, body: lease });
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }
}
