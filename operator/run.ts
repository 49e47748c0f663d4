// The operator process minus its command line. Start-up checks first (namespace, CRDs, RBAC: each
// gap logged once with its fix, shown on /readyz, re-checked until it clears); then campaign for
// the Lease, and while leading run one Reconciler (a fresh one per term, or when the signing key
// changes, so it starts from a full resync). The Bootstrapper keeps the signing key and the
// webhook's certificate present (leader) and known (every replica).

import type { KeyObject } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { WebhookNames, WebhookTlsPem } from "./kube/bootstrap-pki.ts";
import type { SigningKeys } from "./kube/bootstrap-secrets.ts";
import type { WebhookConfigurationsBuilder } from "./kube/bootstrap-webhooks.ts";
import { Bootstrapper } from "./kube/bootstrap.ts";
import { KubeCluster } from "./kube/cluster.ts";
import { LeaderElector } from "./kube/leader.ts";
import type { Owner } from "./kube/owner.ts";
import { Health, PREFLIGHT } from "./kube/preflight-health.ts";
import { preflight } from "./kube/preflight.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { Reconciler } from "./reconciler.ts";

/** What the operator needs to run. */
export interface OperatorOptions {
  config: KubeConfig;
  /**
   * The Ed25519 key bundles are signed with (--signing-key). Absent: the key lives in Secret
   * `airlock-signing-key` of the operator's namespace, created by the leader when missing.
   */
  privateKey?: KeyObject;
  /** Where the `airlock-operator` Lease and the Secrets live (the operator's own namespace). */
  leaseNamespace: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  /** The sidecars' control port (default PORTS.control). */
  controlPort?: number;
  resyncMs?: number;
  leaseSeconds?: number;
  log?: Logger;
  metrics?: OperatorMetrics;
  /** Where problems are reported (default: a new Health logging to `log`). */
  health?: Health;
  /**
   * Set when this replica serves the admission webhook: the names its certificate must cover, and
   * how to build the webhook configurations (absent: the operator creates none, only keeps the
   * caBundle of existing ones in step).
   */
  webhook?: { names: WebhookNames; configurations?: WebhookConfigurationsBuilder };
  /** Called with the PEM public key(s) sidecars must accept, on start and on every change. */
  onBundleKeys?(publicKeysPem: string): void;
  /** Called with the webhook's TLS material, on start and on every change. */
  onWebhookTls?(tls: WebhookTlsPem): void;
  /** The owner of every object the operator creates (default none; see kube/owner.ts). */
  owner?: Owner;
  /** Re-check delay while something is wrong (default 2 s), and while all is well (default 60 s). */
  preflightRetryMs?: number;
  preflightRecheckMs?: number;
  /** Time between bootstrap passes (default 10 s; Secret changes also trigger one). */
  bootstrapIntervalMs?: number;
}

/** A running operator replica. */
export interface RunningOperator {
  /** Whether this replica leads (and so reconciles) now. */
  readonly leading: boolean;
  /** What is wrong now (drives /readyz). */
  readonly health: Health;
  /** Stops reconciling and releases the Lease. */
  stop(): Promise<void>;
}

/** Starts one operator replica: start-up checks, then leader election around the reconciler. */
export function runOperator(options: OperatorOptions): RunningOperator {
  const { log, metrics } = options;
  const health = options.health ?? new Health(log);
  let keys: SigningKeys | undefined;
  let leading = false;
  let stopped = false;
  const converge = reconcilerSwitch(options, () => (leading && !stopped ? keys?.privateKey : undefined));
  const bootstrapper = new Bootstrapper({
    config: options.config,
    namespace: options.leaseNamespace,
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.privateKey ? { signingKey: options.privateKey } : {}),
    ...(options.webhook ? { webhook: options.webhook } : {}),
    leading: () => leading,
    health,
    ...(log ? { log } : {}),
    ...(options.bootstrapIntervalMs === undefined ? {} : { intervalMs: options.bootstrapIntervalMs }),
    onSigningKeys: (next) => {
      keys = next;
      options.onBundleKeys?.(next.publicKeysPem);
      void converge();
    },
    onWebhookTls: (tls) => options.onWebhookTls?.(tls),
  });
  const elector = new LeaderElector({
    config: options.config,
    namespace: options.leaseNamespace,
    name: "airlock-operator",
    identity: options.identity,
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.leaseSeconds === undefined ? {} : { leaseSeconds: options.leaseSeconds }),
    onStartedLeading: () => {
      log?.info({ identity: options.identity }, "started leading");
      metrics?.leading.set(1);
      leading = true;
      bootstrapper.kick(); // create what is missing now, then the reconciler starts with the key
      void converge();
    },
    onStoppedLeading: () => {
      log?.info({ identity: options.identity }, "stopped leading");
      metrics?.leading.set(0);
      leading = false;
      void converge();
    },
  });
  const checks = startPreflight(options, health, () => {
    bootstrapper.start();
    elector.start();
  });
  return {
    get leading() {
      return elector.leading;
    },
    health,
    stop: async () => {
      stopped = true;
      checks.stop();
      await elector.stop();
      await bootstrapper.stop();
      await converge();
    },
  };
}

/**
 * Keeps at most one Reconciler running, signing with `wanted()` (none when undefined): each call
 * compares and, on a change, stops the old one before starting the new (strictly one after another).
 * Resolves when that switch is done.
 */
function reconcilerSwitch(
  options: OperatorOptions,
  wanted: () => KeyObject | undefined,
): () => Promise<void> {
  const cluster = new KubeCluster(options.config, options.owner);
  const { log, metrics } = options;
  let reconciler: Reconciler | undefined;
  let reconcilerKey: KeyObject | undefined;
  let chain: Promise<void> = Promise.resolve();
  return () => {
    chain = chain.then(async () => {
      const want = wanted();
      if (reconciler !== undefined && reconcilerKey === want) return;
      await reconciler?.stop();
      reconciler = undefined;
      reconcilerKey = want;
      if (want === undefined) return;
      reconciler = new Reconciler({
        cluster,
        push: { privateKey: want, ...(options.controlPort ? { port: options.controlPort } : {}) },
        ...(options.resyncMs === undefined ? {} : { resyncMs: options.resyncMs }),
        ...(log ? { log } : {}),
        ...(metrics ? { metrics } : {}),
      });
      reconciler.start();
    });
    return chain;
  };
}

/** Runs the start-up checks until no blocking problem is left (then `begin()`), and re-checks after. */
function startPreflight(options: OperatorOptions, health: Health, begin: () => void): { stop(): void } {
  const needs = {
    signingSecret: options.privateKey === undefined,
    webhookTls: options.webhook !== undefined,
    owner: options.owner !== undefined,
  };
  let begun = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async (): Promise<void> => {
    const problems = await preflight(options.config, options.leaseNamespace, needs);
    if (stopped) return;
    health.report(PREFLIGHT, problems);
    if (!begun && !problems.some((p) => p.blocking)) {
      begun = true;
      options.log?.info(
        { namespace: options.leaseNamespace },
        "start-up checks passed: campaigning for the Lease",
      );
      begin();
    }
    const delay =
      problems.length > 0 ? (options.preflightRetryMs ?? 2000) : (options.preflightRecheckMs ?? 60_000);
    timer = setTimeout(() => void check(), delay);
  };
  void check();
  return {
    stop: () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
