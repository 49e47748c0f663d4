// What `airlock run` and `airlock sidecar` share: the flags that read policies from files and
// shape dialling, and the loop that serves until a signal (SIGHUP reloads the files).
import type { KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import type { ParseArgsOptionsConfig } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { createAuditLog, type Identity } from "../observe/audit.ts";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { KubeSecrets } from "../proxy/kube-secrets.ts";
import { StaticSecrets } from "../proxy/secrets.ts";
import { startSidecar, type ListenAddress, type RunningSidecar } from "../runtime.ts";
import { readPublicKey } from "../control/bundle.ts";
import { parseAllowAddresses, parseListen, parseResolve, readPemFiles, UsageError } from "./flags.ts";

/** parseArgs options common to run and sidecar. */
export const FILE_SIDECAR_OPTIONS = {
  policy: { type: "string", multiple: true, default: [] as string[] },
  "upstream-ca": { type: "string", multiple: true, default: [] as string[] },
  "ca-out": { type: "string" },
  resolve: { type: "string", multiple: true, default: [] as string[] },
  "allow-address": { type: "string", multiple: true, default: [] as string[] },
  "log-level": { type: "string", default: "info" },
} satisfies ParseArgsOptionsConfig;

/** The parsed common flags plus the listeners a command wants. */
export interface ServeFlags {
  policy: string[];
  "upstream-ca": string[];
  "ca-out"?: string | undefined;
  resolve: string[];
  "allow-address": string[];
  "log-level": string;
  listen: string;
  metrics: string;
  transparent?: string | undefined;
  dns?: string | undefined;
  control?: string | undefined;
  bundleKey?: string | undefined;
  kubeconfig?: string | undefined;
  /** Use the in-cluster service-account config when running in a pod (airlock sidecar only). */
  inCluster?: boolean;
  trustBundle?: string | undefined;
  identity?: Identity;
}

const url = ({ host, port }: ListenAddress): string =>
  `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

/**
 * Loads the policy files (when given), starts the sidecar, and serves until SIGINT/SIGTERM.
 * Exit 2 on invalid input, every error located; without --policy everything blocks
 * (NoPolicyLoaded) until a policy arrives.
 */
export async function serveFromFiles(flags: ServeFlags): Promise<number> {
  const loaded = flags.policy.length > 0 ? loadManifestFiles(flags.policy) : undefined;
  if (loaded && !loaded.ok) {
    process.stderr.write(formatFileErrors(loaded.errors) + "\n");
    return 2;
  }
  // In a cluster (or with --kubeconfig) credentials come from the API, never from files.
  const log = createAuditLog(flags.identity ?? {}, { level: flags["log-level"] });
  const apiSecrets = kubeSecretsFrom(flags.kubeconfig, flags.inCluster === true, log);
  const sidecar: RunningSidecar = await startSidecar({
    listen: parseListen("listen", flags.listen),
    metrics: parseListen("metrics", flags.metrics),
    ...(flags.transparent !== undefined
      ? { transparent: parseListen("transparent", flags.transparent) }
      : {}),
    ...(flags.control !== undefined && flags.bundleKey !== undefined
      ? {
          control: {
            listen: parseListen("control", flags.control),
            publicKey: readBundleKey(flags.bundleKey),
          },
        }
      : {}),
    ...(flags.dns !== undefined ? { dns: parseListen("dns", flags.dns) } : {}),
    secrets: apiSecrets ?? new StaticSecrets(loaded?.value.secrets ?? []),
    log,
    allowAddresses: parseAllowAddresses(flags["allow-address"]),
    pins: parseResolve(flags.resolve),
    upstreamCa: readPemFiles(flags["upstream-ca"]),
    processMetrics: true,
  });
  let generation = 0;
  if (loaded) {
    generation = 1;
    sidecar.gate.apply(loaded.value.compiled, generation);
    for (const conflict of loaded.value.compiled.conflicts)
      process.stderr.write(`warning: ${conflict.message}\n`);
  }
  if (flags["ca-out"] !== undefined) writeFileSync(flags["ca-out"], sidecar.ca.certificatePem);
  // The agent's trust bundle: the system roots (passthrough hosts) plus this sidecar's CA.
  if (flags.trustBundle !== undefined)
    writeFileSync(flags.trustBundle, [...rootCertificates, sidecar.ca.certificatePem].join("\n"), {
      mode: 0o644,
    });
  process.on("SIGHUP", () => {
    if (flags.policy.length === 0) return;
    const again = loadManifestFiles(flags.policy);
    if (!again.ok) {
      process.stderr.write(
        `reload refused; keeping generation ${generation}:\n${formatFileErrors(again.errors)}\n`,
      );
      return;
    }
    generation++;
    sidecar.gate.apply(again.value.compiled, generation);
    if (!apiSecrets) sidecar.gate.setSecrets(new StaticSecrets(again.value.secrets));
    process.stderr.write(`reloaded policy generation ${generation} (${again.value.compiled.hash})\n`);
  });
  process.stderr.write(`metrics on ${url(sidecar.metricsAddress)}\n`);
  if (sidecar.transparentAddress) process.stderr.write(`transparent on ${url(sidecar.transparentAddress)}\n`);
  if (sidecar.controlAddress)
    process.stderr.write(`control on ${url(sidecar.controlAddress).replace(/^http:/, "https:")}\n`);
  if (sidecar.dnsAddress) {
    const { host, port } = sidecar.dnsAddress;
    process.stderr.write(`dns on ${host.includes(":") ? `[${host}]` : host}:${port} (udp, tcp)\n`);
  }
  process.stderr.write(`listening on ${url(sidecar.proxyAddress)}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  apiSecrets?.close();
  await sidecar.close();
  return 0;
}

function readBundleKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch {
    throw new UsageError(`--bundle-key ${path}: cannot read the file`);
  }
  try {
    return readPublicKey(pem);
  } catch (err) {
    throw new UsageError(`--bundle-key ${path}: ${(err as Error).message}`);
  }
}

/** A Secret source over the API: from --kubeconfig, or in-cluster when running in a pod. */
function kubeSecretsFrom(
  kubeconfig: string | undefined,
  inCluster: boolean,
  log: Logger,
): KubeSecrets | undefined {
  if (kubeconfig === undefined && (!inCluster || process.env.KUBERNETES_SERVICE_HOST === undefined))
    return undefined;
  const config = new KubeConfig();
  try {
    if (kubeconfig !== undefined) config.loadFromFile(kubeconfig);
    else config.loadFromCluster();
  } catch (err) {
    throw new UsageError(`--kubeconfig ${kubeconfig ?? "(in-cluster)"}: ${(err as Error).message}`);
  }
  return new KubeSecrets(config, log);
}
