// The level-based reconciler (DESIGN.md §4): watch events and a periodic resync only add namespace
// keys to the WorkQueue; a worker reads the whole namespace through the Cluster seam, computes
// desiredState, writes RBAC that differs, pushes bundles, and writes each .status that differs. It
// never branches on add/update/delete. Sidecar reports live in memory, keyed by pod uid: after a
// restart the first reconcile reads every sidecar's status again (a push of an applied hash is a
// GET only).

import type { Logger } from "pino";
import { jsonEqual, statusOf, statusUpdate, type DesiredStatus } from "./core/conditions.ts";
import { desiredState, type DesiredState } from "./core/desired.ts";
import { WorkQueue } from "./core/queue.ts";
import { grantsFromRoles } from "./core/rbac.ts";
import { rawMeta, type SidecarReport, type Snapshot } from "./core/snapshot.ts";
import type { Cluster, NamespaceObjects, StatusKind } from "./kube/cluster.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { pushAll, type PushOptions } from "./push.ts";

/** How the reconciler runs. */
export interface ReconcilerOptions {
  cluster: Cluster;
  push: PushOptions;
  /** Every namespace is enqueued this often, besides watch events (default 30 s). */
  resyncMs?: number;
  /** Namespaces reconciled at once (default 2; one namespace is never reconciled twice at once). */
  workers?: number;
  log?: Logger;
  metrics?: OperatorMetrics;
  /** RFC 3339 time for condition transitions (injectable for tests). */
  now?: () => string;
}

/** What one reconcile did, for logs and tests. */
export interface ReconcileResult {
  desired: DesiredState;
  /** Pushes that did not end in an ACK of the desired hash. */
  failedPushes: number;
  statusWrites: number;
  rbacWrites: number;
}

function nameOf(obj: unknown): string | undefined {
  return rawMeta(obj)?.name;
}

function sameRbac(existing: unknown, desired: object, fields: readonly string[]): boolean {
  const e = existing as Record<string, unknown>;
  const d = desired as Record<string, unknown>;
  const meta = (o: Record<string, unknown>) => {
    const m = (o.metadata ?? {}) as { labels?: unknown; annotations?: unknown };
    return { labels: m.labels, annotations: m.annotations };
  };
  return jsonEqual(meta(e), meta(d)) && fields.every((f) => jsonEqual(e[f] ?? null, d[f] ?? null));
}

/** Reconciles namespaces until stopped. Create, `start()`, and `stop()` on shutdown. */
export class Reconciler {
  readonly #options: ReconcilerOptions;
  readonly #queue = new WorkQueue();
  /** Sidecar reports by pod uid, and which uids belong to which namespace (to forget gone pods). */
  readonly #reports = new Map<string, SidecarReport>();
  readonly #podsByNamespace = new Map<string, Set<string>>();
  #stopWatch: (() => void) | undefined;
  #resync: ReturnType<typeof setInterval> | undefined;
  #workers: Promise<void>[] = [];
  /** Per namespace: when a watch event first arrived since the last reconcile began. */
  readonly #changedAt = new Map<string, number>();
  /** Per namespace: since when pushes have been in flight (some sidecar has not ACKed yet). */
  readonly #pendingSince = new Map<string, number>();

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** Starts watching, resyncing and the workers; every known namespace is enqueued at once. */
  start(): void {
    this.#stopWatch = this.#options.cluster.watch(
      (ns) => {
        if (!this.#changedAt.has(ns)) this.#changedAt.set(ns, Date.now());
        this.#queue.add(ns);
      },
      (path, err) =>
        this.#options.log?.warn({ path, err: err.message }, "watch failed; retrying every second"),
    );
    this.#resync = setInterval(() => void this.resync(), this.#options.resyncMs ?? 30_000);
    void this.resync();
    const workers = this.#options.workers ?? 2;
    this.#workers = Array.from({ length: workers }, () => this.#work());
  }

  /** Enqueues every namespace the cluster reports as holding operator objects. */
  async resync(): Promise<void> {
    try {
      for (const ns of await this.#options.cluster.namespaces()) this.#queue.add(ns);
    } catch (err) {
      this.#options.log?.warn({ err }, "resync failed");
    }
  }

  /** Stops watching and the workers; waits for reconciles in flight. */
  async stop(): Promise<void> {
    this.#stopWatch?.();
    if (this.#resync !== undefined) clearInterval(this.#resync);
    this.#queue.shutDown();
    await Promise.all(this.#workers);
  }

  /** The last report of the sidecar of pod `uid`, if any. */
  report(uid: string): SidecarReport | undefined {
    return this.#reports.get(uid);
  }

  async #work(): Promise<void> {
    for (;;) {
      const ns = await this.#queue.get();
      if (ns === undefined) return;
      try {
        const result = await this.reconcile(ns);
        if (result.failedPushes > 0) this.#queue.addRateLimited(ns);
        else this.#queue.forget(ns);
      } catch (err) {
        this.#options.log?.warn({ err, namespace: ns }, "reconcile failed");
        this.#options.metrics?.reconciles.inc({ kind: "Namespace", result: "Error" });
        this.#queue.addRateLimited(ns);
      } finally {
        this.#queue.done(ns);
      }
    }
  }

  #snapshot(ns: string, objects: NamespaceObjects): Snapshot {
    const uids = new Set(objects.pods.map((p) => p.uid));
    for (const uid of this.#podsByNamespace.get(ns) ?? []) if (!uids.has(uid)) this.#reports.delete(uid);
    this.#podsByNamespace.set(ns, uids);
    return {
      namespace: ns,
      policies: objects.policies,
      credentials: objects.credentials,
      secrets: objects.secrets,
      pods: objects.pods,
      sidecars: new Map(this.#reports),
      grants: grantsFromRoles(objects.roles),
    };
  }

  /**
   * One level-based pass over `ns`: RBAC first (a Secret is readable before the bundle naming it
   * arrives), then pushes, then statuses computed with the fresh sidecar reports. Throws on API errors.
   */
  async reconcile(ns: string): Promise<ReconcileResult> {
    const seen = this.#changedAt.get(ns);
    this.#changedAt.delete(ns);
    try {
      // A change a resync found before its watch event arrived counts from this pass.
      return await this.#reconcile(ns, seen ?? Date.now());
    } catch (err) {
      // Not reconciled after all: the change still waits, from when it was first seen (any event
      // recorded meanwhile is later).
      if (seen !== undefined) this.#changedAt.set(ns, seen);
      throw err;
    }
  }

  async #reconcile(ns: string, seen: number): Promise<ReconcileResult> {
    const { cluster, metrics } = this.#options;
    const objects = await cluster.read(ns);
    const first = desiredState(this.#snapshot(ns, objects));
    const rbacWrites = await this.#reconcileRbac(ns, objects, first);

    let posted = false;
    const pushOptions: PushOptions = {
      ...this.#options.push,
      onResult: (result) => {
        metrics?.pushes.inc({ result });
        if (result === "ack") posted = true;
      },
    };
    const pushed = await pushAll(first.pushes, pushOptions, this.#reports);
    let failedPushes = 0;
    for (const target of first.pushes) {
      const report = pushed.get(target.uid);
      if (report === undefined) continue;
      this.#reports.set(target.uid, report);
      if (report.hash !== target.hash) failedPushes++;
    }
    const desired = pushed.size === 0 ? first : desiredState(this.#snapshot(ns, objects));
    this.#observeConvergence(ns, first, seen, failedPushes === 0, posted);

    const now = (this.#options.now ?? (() => new Date().toISOString()))();
    let statusWrites = 0;
    const write = async (
      kind: StatusKind,
      items: unknown[],
      statuses: DesiredState["policies" | "credentials"],
    ) => {
      for (const { name, status } of statuses) {
        const current = items.find((o) => nameOf(o) === name);
        const next = statusUpdate(statusOf(current), status, now);
        if (next === undefined) continue;
        await cluster.patchStatus(kind, ns, name, next);
        statusWrites++;
      }
    };
    await write("EgressPolicy", objects.policies, desired.policies);
    await write("Credential", objects.credentials, desired.credentials);
    if (metrics) {
      const ready = (s: DesiredStatus) => s.conditions[0]?.reason ?? "Unknown"; // Ready is the only condition
      for (const { status } of desired.policies)
        metrics.reconciles.inc({ kind: "EgressPolicy", result: ready(status) });
      for (const { status } of desired.credentials)
        metrics.reconciles.inc({ kind: "Credential", result: ready(status) });
    }
    // Converged pushes can shrink RBAC (make-before-break ends): look again with the new reports.
    if (pushed.size > 0 && failedPushes === 0) this.#queue.add(ns);
    this.#options.log?.debug({ namespace: ns, statusWrites, rbacWrites, failedPushes }, "reconciled");
    return { desired, failedPushes, statusWrites, rbacWrites };
  }

  /**
   * airlock_operator_convergence_seconds. `desired.pushes` holds only sidecars that do not run their
   * bundle yet, so a non-empty list is a change in flight: timed from when the operator first saw it
   * (the watch event, or the pass that found it) until a pass ends with every push ACKed. Passes
   * with nothing to push (status echoes, resyncs) and a new leader finding sidecars already current
   * (every push `unchanged`, nothing posted) are not observed.
   */
  #observeConvergence(
    ns: string,
    desired: DesiredState,
    seen: number,
    allAcked: boolean,
    posted: boolean,
  ): void {
    if (desired.pushes.length === 0) {
      this.#pendingSince.delete(ns); // nothing in flight (e.g. a pod that never ACKed left)
      return;
    }
    const since = this.#pendingSince.get(ns) ?? seen;
    if (!allAcked) {
      this.#pendingSince.set(ns, since);
      return;
    }
    if (posted) this.#options.metrics?.convergence.observe((Date.now() - since) / 1000);
    this.#pendingSince.delete(ns);
  }

  async #reconcileRbac(ns: string, objects: NamespaceObjects, desired: DesiredState): Promise<number> {
    const { cluster } = this.#options;
    let writes = 0;
    const roles = new Map(objects.roles.map((r) => [nameOf(r), r]));
    const bindings = new Map(objects.roleBindings.map((b) => [nameOf(b), b]));
    for (const role of desired.roles) {
      const existing = roles.get(role.metadata.name);
      if (existing !== undefined && sameRbac(existing, role, ["rules"])) continue;
      await cluster.putRole(role);
      writes++;
    }
    for (const binding of desired.roleBindings) {
      const existing = bindings.get(binding.metadata.name);
      if (existing !== undefined && sameRbac(existing, binding, ["roleRef", "subjects"])) continue;
      await cluster.putRoleBinding(binding);
      writes++;
    }
    const wantBindings = new Set(desired.roleBindings.map((b) => b.metadata.name));
    const wantRoles = new Set(desired.roles.map((r) => r.metadata.name));
    for (const name of bindings.keys()) {
      if (name === undefined || wantBindings.has(name)) continue;
      await cluster.deleteRbac("RoleBinding", ns, name);
      writes++;
    }
    for (const name of roles.keys()) {
      if (name === undefined || wantRoles.has(name)) continue;
      await cluster.deleteRbac("Role", ns, name);
      writes++;
    }
    return writes;
  }
}
