// Leader election on a coordination.k8s.io Lease, in the manner of client-go's leaderelection: one
// replica reconciles, the others wait. Expiry is judged by how long the Lease went unchanged as
// this process observed it (its own clock), never by comparing timestamps written by another host.

import {
  ApiException,
  CoordinationV1Api,
  V1Lease,
  V1LeaseSpec,
  V1MicroTime,
  type KubeConfig,
} from "@kubernetes/client-node";
import { NO_OWNER, owned, type Owner } from "./owner.ts";

/** Where the Lease lives, who we are, and what to do on gaining or losing leadership. */
export interface LeaderOptions {
  config: KubeConfig;
  namespace: string;
  name: string;
  /** Unique per replica (e.g. the pod name). */
  identity: string;
  /** How long a silent leader keeps the Lease (default 15 s). */
  leaseSeconds?: number;
  /** How often to try to acquire or renew (default 2 s; keep well under leaseSeconds). */
  retryMs?: number;
  /** The owner of the Lease when this replica creates it (default none). */
  owner?: Owner;
  onStartedLeading(): void;
  /** Called once leadership is lost or released; the caller must stop reconciling. */
  onStoppedLeading(): void;
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/** Campaigns for the Lease until stopped. `start()`, then `stop()` (which releases a held Lease). */
export class LeaderElector {
  readonly #options: LeaderOptions;
  readonly #api: CoordinationV1Api;
  readonly #leaseMs: number;
  #leading = false;
  #lastRenew = 0;
  #observed: { version: string; at: number } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #tick: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: LeaderOptions) {
    this.#options = options;
    this.#api = options.config.makeApiClient(CoordinationV1Api);
    this.#leaseMs = (options.leaseSeconds ?? 15) * 1000;
  }

  /** Whether this replica holds the Lease now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Starts campaigning. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops campaigning; a held Lease is released (holder cleared) so another replica takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#tick;
    if (!this.#leading) return;
    this.#setLeading(false);
    const { namespace, name } = this.#options;
    try {
      const lease = await this.#api.readNamespacedLease({ namespace, name });
      if (lease.spec?.holderIdentity !== this.#options.identity) return;
      lease.spec.holderIdentity = "";
      lease.spec.leaseDurationSeconds = 1;
      await this.#api.replaceNamespacedLease({ namespace, name, body: lease });
    } catch {
      // The Lease expires on its own.
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.#attempt().finally(() => {
        this.#schedule(this.#options.retryMs ?? 2000);
      });
    }, ms);
  }

  #setLeading(value: boolean): void {
    if (this.#leading === value) return;
    this.#leading = value;
    if (value) this.#options.onStartedLeading();
    else this.#options.onStoppedLeading();
  }

  async #attempt(): Promise<void> {
    const ok = await this.#tryAcquireOrRenew().catch(() => false);
    const now = performance.now();
    if (ok) {
      this.#lastRenew = now;
      if (!this.#stopped) this.#setLeading(true);
    } else if (this.#leading && now - this.#lastRenew >= this.#leaseMs) {
      this.#setLeading(false);
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.#options;
    const now = new V1MicroTime();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: this.#leaseMs / 1000,
      renewTime: now,
    };
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ namespace, name });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      const body = Object.assign(new V1Lease(), {
        metadata: owned({ name, namespace }, await (this.#options.owner ?? NO_OWNER)()),
        spec: { ...spec, acquireTime: now, leaseTransitions: 0 },
      });
      await this.#api.createNamespacedLease({ namespace, body });
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const version = lease.metadata?.resourceVersion ?? "";
    const seenAt = performance.now();
    if (this.#observed?.version !== version) this.#observed = { version, at: seenAt };
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const expired = holder === "" || seenAt - this.#observed.at >= duration;
    if (holder !== identity && !expired) return false;
    const transitions = lease.spec?.leaseTransitions ?? 0;
    lease.spec = Object.assign(lease.spec ?? new V1LeaseSpec(), spec);
    if (holder !== identity)
      Object.assign(lease.spec, { acquireTime: now, leaseTransitions: transitions + 1 });
    try {
      await this.#api.replaceNamespacedLease({ namespace, name, body: lease });
      return true;
    } catch (err) {
      if (isStatus(err, 409)) return false; // someone else wrote first: read again next time
      throw err;
    }
  }
}
