// `airlock operator`: one operator replica. Leader election on a Lease; while leading, the
// level-based reconciler pushes signed bundles, writes status and keeps the sidecars' Secret RBAC.
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { PORTS } from "../sidecar/constants.ts";
import { createAdminServer } from "../sidecar/process/admin-server.ts";
import { createLogger } from "../sidecar/process/logger.ts";
import { OperatorUsageError, parseOperatorFlags, type OperatorFlags } from "./flags.ts";
import { createOperatorMetrics, type OperatorMetrics } from "./metrics.ts";
import { webhookNames, WEBHOOK_SERVICE } from "./kube/bootstrap-pki.ts";
import { webhookHandoff } from "./kube/bootstrap-webhook-server.ts";
import { clusterRoleOwner } from "./kube/owner.ts";
import { Health } from "./kube/preflight-health.ts";
import { OPERATOR_CLUSTER_ROLE } from "./kube/preflight.ts";
import { runOperator, type OperatorOptions } from "./run.ts";
import { webhookConfigurations } from "./webhook/configurations.ts";

export const OPERATOR_USAGE = `usage: airlock operator [--kubeconfig PATH] [--lease-namespace NS] [--signing-key PEM]
                        [--webhook HOST:PORT] [--webhook-url URL] [--image IMAGE] [--upstream-ca PEM]
                        [--sidecar-allow-address CIDR]... [--owned-by-clusterrole]
                        [--image-pull-policy P] [--identity NAME] [--control-port N]
                        [--resync SECONDS] [--lease-seconds SECONDS] [--metrics HOST:PORT]

Runs one operator replica (in a pod: in-cluster config; elsewhere: --kubeconfig). The leader keeps
its bundle-signing key (Secret airlock-signing-key) and the webhook's CA and certificate (Secret
airlock-webhook-tls) in its namespace, creating them when absent.
  --signing-key PEM      use this Ed25519 private key instead of Secret airlock-signing-key
  --webhook HOST:PORT    where the admission webhook listens (HTTPS; default 0.0.0.0:9443); it
                         starts once the signing key and serving certificate are known
  --image IMAGE          the Airlock image injected into agent pods (default: env AIRLOCK_IMAGE,
                         else airlock:VERSION, the package version)
  --image-pull-policy P  Always, IfNotPresent or Never for the injected containers
  --upstream-ca PEM      extra roots injected sidecars trust for upstreams (and give the agent)
  --sidecar-allow-address CIDR
                         a non-public range injected sidecars may dial (their --allow-address), e.g.
                         an in-cluster upstream; repeatable; default: none, all are refused
  --webhook-configurations create|patch
                         create: make airlock-injector/airlock-validator when absent (default);
                         patch: someone else (a Helm chart) owns them, only keep their caBundle
  --webhook-url URL      how the API server reaches the webhook from outside the cluster
                         (https://HOST:PORT); the certificate covers HOST and the webhook
                         configurations use this URL (in a cluster: Service airlock-webhook)
  --owned-by-clusterrole every object the operator creates (its Secrets and Lease, the sidecars'
                         Roles and RoleBindings) is owned by ClusterRole airlock-operator, so the
                         garbage collector deletes them with it (the chart sets this)
  --kubeconfig PATH      kubeconfig to use outside a cluster
  --lease-namespace NS   where the airlock-operator Lease lives (default: env POD_NAMESPACE, else airlock-system)
  --identity NAME        this replica's name in the Lease (default: env POD_NAME, else the host name)
  --control-port N       the sidecars' control port (default 15443)
  --resync SECONDS       full resync period (default 30)
  --lease-seconds N      how long a silent leader keeps the Lease before another replica takes it
                         (default 15)
  --metrics HOST:PORT    /metrics, /healthz, /readyz (default 0.0.0.0:${String(PORTS.metrics)}; /readyz
                         answers 503 with what is wrong, e.g. a missing namespace, CRD or RBAC)
Stops on SIGINT/SIGTERM, releasing the Lease so another replica takes over at once.`;

/** The package version: the default Airlock image the webhook injects is airlock:VERSION. */
const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/**
 * What the operator needs to bootstrap the webhook: the certificate's names, and how the webhook
 * configurations it creates reach it — `--webhook-url`, else in a cluster the Service
 * `airlock-webhook` of its namespace, else none (outside a cluster without a URL it creates no
 * configuration; it only keeps the caBundle of existing ones that route to it in step).
 */
function webhookSetup(
  namespace: string,
  url: string | undefined,
  inCluster: boolean,
  mode: OperatorFlags["webhookConfigurations"],
): OperatorOptions["webhook"] {
  const names = webhookNames(namespace, url);
  // Someone else (a Helm chart) owns the configurations: keep their caBundle, never create them.
  if (mode === "patch") return { names };
  if (url !== undefined)
    return {
      names,
      configurations: (caBundle) => webhookConfigurations({ caBundle, url, operatorNamespace: namespace }),
    };
  if (inCluster)
    return {
      names,
      configurations: (caBundle) =>
        webhookConfigurations({ caBundle, service: { namespace, name: WEBHOOK_SERVICE, port: 443 } }),
    };
  return { names };
}

function signingKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path, "utf8"));
  } catch (err) {
    throw new OperatorUsageError(`--signing-key ${path}: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519")
    throw new OperatorUsageError(
      `--signing-key ${path}: expected an Ed25519 private key (openssl genpkey -algorithm ed25519)`,
    );
  return key;
}

/** Reads the PEM file of `flag`, or an OperatorUsageError saying which file could not be read. */
function readPem(flag: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new OperatorUsageError(`--${flag} ${path}: ${(err as Error).message}`);
  }
}

function kubeConfig(path: string | undefined): KubeConfig {
  const config = new KubeConfig();
  try {
    if (path !== undefined) config.loadFromFile(path);
    else config.loadFromCluster();
  } catch (err) {
    throw new OperatorUsageError(`--kubeconfig ${path ?? "(in-cluster)"}: ${(err as Error).message}`);
  }
  return config;
}

/** Starts the admin listener (/metrics, /healthz, /readyz with the health's reasons). */
async function startAdmin(flags: OperatorFlags, metrics: OperatorMetrics, health: Health): Promise<Server> {
  const admin = createAdminServer(
    metrics.registry,
    () => health.ready,
    () => health.reason(),
  );
  const { host, port } = flags.metrics;
  await new Promise<void>((resolve, reject) => {
    admin.once("error", (err) => {
      reject(new OperatorUsageError(`--metrics ${host}:${String(port)}: ${err.message}`));
    });
    admin.listen(port, host, resolve);
  });
  return admin;
}

/** Runs until SIGINT/SIGTERM; exit 2 on bad flags. */
export async function operatorCommand(argv: string[]): Promise<number> {
  try {
    const flags = parseOperatorFlags(argv, process.env, hostname(), VERSION);
    const privateKey = flags.signingKeyPath === undefined ? undefined : signingKey(flags.signingKeyPath);
    const upstreamCa =
      flags.upstreamCaPath === undefined ? undefined : readPem("upstream-ca", flags.upstreamCaPath);
    const config = kubeConfig(flags.kubeconfig);
    const log = createLogger({}, {});
    const metrics = createOperatorMetrics({ defaults: true });
    const health = new Health(log);
    const admin = await startAdmin(flags, metrics, health);
    const webhook = webhookHandoff({
      listen: flags.webhook,
      injection: {
        image: flags.image,
        ...(flags.imagePullPolicy !== undefined ? { imagePullPolicy: flags.imagePullPolicy } : {}),
        ...(upstreamCa !== undefined ? { upstreamCa } : {}),
        ...(flags.sidecarAllowAddresses.length > 0 ? { allowAddresses: flags.sidecarAllowAddresses } : {}),
      },
      log,
    });
    const namespace = flags.leaseNamespace;
    const operator = runOperator({
      config,
      ...(privateKey === undefined ? {} : { privateKey }),
      webhook: webhookSetup(
        namespace,
        flags.webhookUrl,
        flags.kubeconfig === undefined,
        flags.webhookConfigurations,
      ),
      leaseNamespace: namespace,
      ...(flags.ownedByClusterRole ? { owner: clusterRoleOwner(config, OPERATOR_CLUSTER_ROLE) } : {}),
      onBundleKeys: webhook.onBundleKeys.bind(webhook),
      onWebhookTls: webhook.onWebhookTls.bind(webhook),
      health,
      identity: flags.identity,
      resyncMs: flags.resyncMs,
      leaseSeconds: flags.leaseSeconds,
      metrics,
      ...(flags.controlPort !== undefined ? { controlPort: flags.controlPort } : {}),
      log,
    });
    const bound = admin.address() as AddressInfo;
    const host = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
    process.stderr.write(
      `operator ${flags.identity} started (lease ${namespace}/airlock-operator); ` +
        `metrics on http://${host}:${String(bound.port)}\n`,
    );
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await operator.stop();
    await webhook.close();
    await new Promise((resolve) => admin.close(resolve));
    return 0;
  } catch (err) {
    if (!(err instanceof OperatorUsageError)) throw err;
    process.stderr.write(`airlock operator: ${err.message}\n\n${OPERATOR_USAGE}\n`);
    return 2;
  }
}
