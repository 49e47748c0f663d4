// The operator process minus its command line: campaign for the Lease, and while leading run one
// Reconciler (a fresh one per term, so a new leader starts from a full resync and fresh sidecar reports).

import type { KeyObject } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { KubeCluster } from "./kube/cluster.ts";
import { LeaderElector } from "./kube/leader.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { Reconciler } from "./reconciler.ts";

/** What the operator needs to run. */
export interface OperatorOptions {
  config: KubeConfig;
  /** The Ed25519 key bundles are signed with (the sidecars hold its public half). */
  privateKey: KeyObject;
  /** Where the `airlock-operator` Lease lives (the operator's own namespace). */
  leaseNamespace: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  /** The sidecars' control port (default CONTROL_PORT). */
  controlPort?: number;
  resyncMs?: number;
  leaseSeconds?: number;
  log?: Logger;
  metrics?: OperatorMetrics;
}

/** A running operator replica. */
export interface RunningOperator {
  /** Whether this replica leads (and so reconciles) now. */
  readonly leading: boolean;
  /** Stops reconciling and releases the Lease. */
  stop(): Promise<void>;
}

/** Starts one operator replica: leader election around the reconciler. */
export function runOperator(options: OperatorOptions): RunningOperator {
  const cluster = new KubeCluster(options.config);
  let reconciler: Reconciler | undefined;
  let stopping: Promise<void> = Promise.resolve();
  const elector = new LeaderElector({
    config: options.config,
    namespace: options.leaseNamespace,
    name: "airlock-operator",
    identity: options.identity,
    ...(options.leaseSeconds === undefined ? {} : { leaseSeconds: options.leaseSeconds }),
    onStartedLeading: () => {
      options.log?.info({ identity: options.identity }, "started leading");
      options.metrics?.leading.set(1);
      reconciler = new Reconciler({
        cluster,
        push: {
          privateKey: options.privateKey,
          ...(options.controlPort ? { port: options.controlPort } : {}),
        },
        ...(options.resyncMs === undefined ? {} : { resyncMs: options.resyncMs }),
        ...(options.log ? { log: options.log } : {}),
        ...(options.metrics ? { metrics: options.metrics } : {}),
      });
      reconciler.start();
    },
    onStoppedLeading: () => {
      options.log?.info({ identity: options.identity }, "stopped leading");
      options.metrics?.leading.set(0);
      const current = reconciler;
      reconciler = undefined;
      if (current) stopping = stopping.then(() => current.stop());
    },
  });
  elector.start();
  return {
    get leading() {
      return elector.leading;
    },
    stop: async () => {
      await elector.stop();
      await stopping;
    },
  };
}
