// `airlock operator`: one operator replica. Leader election on a Lease; while leading, the
// level-based reconciler pushes signed bundles, writes status and keeps the sidecars' Secret RBAC.
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import type { AddressInfo } from "node:net";
import { parseListen } from "../sidecar/cli/flags.ts";
import { PORTS } from "../sidecar/constants.ts";
import { createAdminServer } from "../sidecar/observe/admin-server.ts";
import { createAuditLog } from "../sidecar/observe/audit.ts";
import type { ListenAddress } from "../sidecar/runtime.ts";
import { createOperatorMetrics } from "./metrics.ts";
import { webhookNames, WEBHOOK_SERVICE } from "./kube/bootstrap-pki.ts";
import { webhookHandoff } from "./kube/bootstrap-webhook-server.ts";
import { Health } from "./kube/preflight-health.ts";
import { runOperator, type OperatorOptions } from "./run.ts";
import { webhookConfigurations } from "./webhook/configurations.ts";

export const OPERATOR_USAGE = `usage: airlock operator [--kubeconfig PATH] [--lease-namespace NS] [--signing-key PEM]
                        [--webhook HOST:PORT] [--webhook-url URL] [--identity NAME] [--control-port N]
                        [--resync SECONDS] [--lease-seconds SECONDS] [--metrics HOST:PORT]

Runs one operator replica (in a pod: in-cluster config; elsewhere: --kubeconfig). The leader keeps
its bundle-signing key (Secret airlock-signing-key) and the webhook's CA and certificate (Secret
airlock-webhook-tls) in its namespace, creating them when absent.
  --signing-key PEM      use this Ed25519 private key instead of Secret airlock-signing-key
  --webhook HOST:PORT    where the admission webhook listens (HTTPS; default 0.0.0.0:9443); it
                         starts once the signing key and serving certificate are known and
                         injects the image in env AIRLOCK_IMAGE (default airlock:VERSION)
  --webhook-url URL      how the API server reaches the webhook from outside the cluster
                         (https://HOST:PORT); the certificate covers HOST and the webhook
                         configurations use this URL (in a cluster: Service airlock-webhook)
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

class OperatorUsageError extends Error {}

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
): OperatorOptions["webhook"] {
  const names = webhookNames(namespace, url);
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

/** `--FLAG HOST:PORT` parsed, or an OperatorUsageError. */
function listenFlag(flag: string, value: string): ListenAddress {
  try {
    return parseListen(flag, value);
  } catch (err) {
    throw new OperatorUsageError((err as Error).message);
  }
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

/** Runs until SIGINT/SIGTERM; exit 2 on bad flags. */
export async function operatorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      "signing-key": { type: "string" },
      webhook: { type: "string", default: "0.0.0.0:9443" },
      "webhook-url": { type: "string" },
      kubeconfig: { type: "string" },
      "lease-namespace": { type: "string", default: process.env.POD_NAMESPACE ?? "airlock-system" },
      identity: { type: "string", default: process.env.POD_NAME ?? hostname() },
      "control-port": { type: "string" },
      resync: { type: "string", default: "30" },
      "lease-seconds": { type: "string", default: "15" },
      metrics: { type: "string", default: `0.0.0.0:${String(PORTS.metrics)}` },
    },
    strict: true,
  });
  try {
    const privateKey = values["signing-key"] === undefined ? undefined : signingKey(values["signing-key"]);
    const webhookUrl = values["webhook-url"];
    if (webhookUrl !== undefined && !/^https:\/\/[^/]+/.test(webhookUrl))
      throw new OperatorUsageError("--webhook-url must be an https:// URL (https://HOST:PORT)");
    const config = new KubeConfig();
    try {
      if (values.kubeconfig !== undefined) config.loadFromFile(values.kubeconfig);
      else config.loadFromCluster();
    } catch (err) {
      throw new OperatorUsageError(
        `--kubeconfig ${values.kubeconfig ?? "(in-cluster)"}: ${(err as Error).message}`,
      );
    }
    const resync = Number(values.resync);
    const port = values["control-port"] === undefined ? undefined : Number(values["control-port"]);
    if (!Number.isFinite(resync) || resync <= 0)
      throw new OperatorUsageError("--resync must be a positive number of seconds");
    const leaseSeconds = Number(values["lease-seconds"]);
    if (!Number.isInteger(leaseSeconds) || leaseSeconds < 3)
      throw new OperatorUsageError("--lease-seconds must be a whole number of seconds, at least 3");
    const metricsAt = listenFlag("metrics", values.metrics);
    const webhookAt = listenFlag("webhook", values.webhook);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
      throw new OperatorUsageError("--control-port must be a TCP port");
    const log = createAuditLog({}, {});
    const metrics = createOperatorMetrics({ defaults: true });
    const health = new Health(log);
    const admin = createAdminServer(
      metrics.registry,
      () => health.ready,
      () => health.reason(),
    );
    await new Promise<void>((resolve, reject) => {
      admin.once("error", (err) => {
        reject(new OperatorUsageError(`--metrics ${values.metrics}: ${err.message}`));
      });
      admin.listen(metricsAt.port, metricsAt.host, resolve);
    });
    const bound = admin.address() as AddressInfo;
    const namespace = values["lease-namespace"];
    const webhook = webhookHandoff({
      listen: webhookAt,
      injection: { image: process.env.AIRLOCK_IMAGE ?? `airlock:${VERSION}` },
      log,
    });
    const operator = runOperator({
      config,
      ...(privateKey === undefined ? {} : { privateKey }),
      webhook: webhookSetup(namespace, webhookUrl, values.kubeconfig === undefined),
      leaseNamespace: namespace,
      onBundleKeys: webhook.onBundleKeys.bind(webhook),
      onWebhookTls: webhook.onWebhookTls.bind(webhook),
      health,
      identity: values.identity,
      resyncMs: resync * 1000,
      leaseSeconds,
      metrics,
      ...(port !== undefined ? { controlPort: port } : {}),
      log,
    });
    const host = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
    process.stderr.write(
      `operator ${values.identity} started (lease ${values["lease-namespace"]}/airlock-operator); ` +
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
