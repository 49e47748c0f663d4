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
import { runOperator } from "./run.ts";

export const OPERATOR_USAGE = `usage: airlock operator --signing-key PEM [--kubeconfig PATH] [--lease-namespace NS]
                        [--identity NAME] [--control-port N] [--resync SECONDS]
                        [--lease-seconds SECONDS] [--metrics HOST:PORT]

Runs one operator replica (in a pod: in-cluster config; elsewhere: --kubeconfig).
  --signing-key PEM      the Ed25519 private key bundles are signed with (sidecars hold the public half)
  --kubeconfig PATH      kubeconfig to use outside a cluster
  --lease-namespace NS   where the airlock-operator Lease lives (default: env POD_NAMESPACE, else airlock-system)
  --identity NAME        this replica's name in the Lease (default: env POD_NAME, else the host name)
  --control-port N       the sidecars' control port (default 15443)
  --resync SECONDS       full resync period (default 30)
  --lease-seconds N      how long a silent leader keeps the Lease before another replica takes it
                         (default 15)
  --metrics HOST:PORT    /metrics, /healthz, /readyz (default 0.0.0.0:${String(PORTS.metrics)})
Stops on SIGINT/SIGTERM, releasing the Lease so another replica takes over at once.`;

class OperatorUsageError extends Error {}

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
    if (values["signing-key"] === undefined) throw new OperatorUsageError("--signing-key is required");
    const privateKey = signingKey(values["signing-key"]);
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
    let metricsAt: ListenAddress;
    try {
      metricsAt = parseListen("metrics", values.metrics);
    } catch (err) {
      throw new OperatorUsageError((err as Error).message);
    }
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
      throw new OperatorUsageError("--control-port must be a TCP port");
    const log = createAuditLog({}, {});
    const metrics = createOperatorMetrics({ defaults: true });
    const admin = createAdminServer(metrics.registry, () => true);
    await new Promise<void>((resolve, reject) => {
      admin.once("error", (err) => {
        reject(new OperatorUsageError(`--metrics ${values.metrics}: ${err.message}`));
      });
      admin.listen(metricsAt.port, metricsAt.host, resolve);
    });
    const bound = admin.address() as AddressInfo;
    const operator = runOperator({
      config,
      privateKey,
      leaseNamespace: values["lease-namespace"],
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
    await new Promise((resolve) => admin.close(resolve));
    return 0;
  } catch (err) {
    if (!(err instanceof OperatorUsageError)) throw err;
    process.stderr.write(`airlock operator: ${err.message}\n\n${OPERATOR_USAGE}\n`);
    return 2;
  }
}
