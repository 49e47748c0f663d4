// What `airlock run` and `airlock sidecar` share: the flags that read policies from files and
// shape dialling, and the loop that serves until a signal (SIGHUP reloads the files).
import type { KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { ParseArgsOptionsConfig } from "node:util";
import { formatFileErrors, loadManifestFiles } from "../config/manifest-files.ts";
import { createAuditLog, type Identity } from "../observe/audit.ts";
import type { Logger } from "pino";
import type { KubeSecrets } from "../proxy/kube-secrets.ts";
import { StaticSecrets } from "../proxy/secrets.ts";
import { parseListen, type ListenAddress } from "../process/listen.ts";
import { loadNativeMemory, startQuietRelease, type QuietRelease } from "../process/memory.ts";
import { UsageError } from "../process/usage-error.ts";
import { startSidecar, type RunningSidecar } from "../runtime.ts";
import { readPublicKeys } from "../control/bundle.ts";
import { parseAllowAddresses, parseResolve, readPemFiles } from "./flags.ts";
import { trustBundlePem, writeTrustBundle } from "./trust-bundle.ts";

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
  /** --bundle-key: a file holding the operator's public key(s). */
  bundleKey?: string | undefined;
  /** --bundle-key-env: the name of an environment variable holding them (exclusive with bundleKey). */
  bundleKeyEnv?: string | undefined;
  /** --upstream-ca-env: the name of an environment variable holding more upstream roots (PEM). */
  upstreamCaEnv?: string | undefined;
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
  const apiSecrets = await kubeSecretsFrom(flags.kubeconfig, flags.inCluster === true, log);
  const publicKeys = readBundleKeys(flags.bundleKey, flags.bundleKeyEnv);
  const upstreamCa = [...readPemFiles(flags["upstream-ca"]), ...pemFromEnv(flags.upstreamCaEnv)];
  const sidecar: RunningSidecar = await startSidecar({
    listen: parseListen("listen", flags.listen),
    metrics: parseListen("metrics", flags.metrics),
    ...(flags.transparent !== undefined
      ? { transparent: parseListen("transparent", flags.transparent) }
      : {}),
    ...(flags.control !== undefined && publicKeys !== undefined
      ? { control: { listen: parseListen("control", flags.control), publicKey: publicKeys } }
      : {}),
    ...(flags.dns !== undefined ? { dns: parseListen("dns", flags.dns) } : {}),
    secrets: apiSecrets ?? new StaticSecrets(loaded?.value.secrets ?? []),
    log,
    allowAddresses: parseAllowAddresses(flags["allow-address"]),
    pins: parseResolve(flags.resolve),
    upstreamCa,
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
  // The agent's trust bundle: the roots the sidecar trusts upstream (passthrough hosts) plus its CA.
  if (flags.trustBundle !== undefined)
    writeTrustBundle(flags.trustBundle, trustBundlePem(upstreamCa, sidecar.ca.certificatePem));
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
  // Loaded before the "listening" line, so a process that has said it listens has its addon mapped.
  const quietRelease = releaseWhenQuiet(log);
  process.stderr.write(`listening on ${url(sidecar.proxyAddress)}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  quietRelease?.stop();
  apiSecrets?.close();
  await sidecar.close();
  return 0;
}

/**
 * Gives memory back when the data path falls quiet (sidecar/process/memory.ts), where the addon is
 * built; without it the sidecar runs as before and says why at debug level.
 * AIRLOCK_QUIET_RELEASE=off turns it off.
 */
function releaseWhenQuiet(log: Logger): QuietRelease | undefined {
  if (process.env["AIRLOCK_QUIET_RELEASE"] === "off") return undefined;
  const loaded = loadNativeMemory();
  if (!loaded.ok) {
    log.debug({ reason: loaded.reason }, "not releasing memory when quiet");
    return undefined;
  }
  return startQuietRelease(loaded.native, log);
}

/** The PEM in environment variable `name` (--upstream-ca-env), as one entry; none without the flag. */
function pemFromEnv(name: string | undefined): string[] {
  if (name === undefined) return [];
  const pem = process.env[name] ?? "";
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new UsageError(
      `--upstream-ca-env ${name}: the variable holds no PEM certificate; set it or drop the flag`,
    );
  return [pem];
}

/** The operator's public key(s) from --bundle-key PATH or --bundle-key-env NAME (one of them). */
function readBundleKeys(path: string | undefined, envName: string | undefined): KeyObject[] | undefined {
  if (path !== undefined && envName !== undefined)
    throw new UsageError("--bundle-key and --bundle-key-env: give one of them, not both");
  let pem: string;
  let source: string;
  if (path !== undefined) {
    source = `--bundle-key ${path}`;
    try {
      pem = readFileSync(path, "utf8");
    } catch {
      throw new UsageError(`${source}: cannot read the file`);
    }
  } else if (envName !== undefined) {
    source = `--bundle-key-env ${envName}`;
    const value = process.env[envName];
    if (value === undefined || value.trim() === "")
      throw new UsageError(`${source}: the environment variable ${envName} is not set or empty`);
    pem = value;
  } else return undefined;
  try {
    return readPublicKeys(pem);
  } catch (err) {
    throw new UsageError(`${source}: ${(err as Error).message}`);
  }
}

/** A Secret source over the API: from --kubeconfig, or in-cluster when running in a pod. */
async function kubeSecretsFrom(
  kubeconfig: string | undefined,
  inCluster: boolean,
  log: Logger,
): Promise<KubeSecrets | undefined> {
  if (kubeconfig === undefined && (!inCluster || process.env.KUBERNETES_SERVICE_HOST === undefined))
    return undefined;
  const { KubeSecrets: Secrets } = await import("../proxy/kube-secrets.ts");
  const { inClusterConfig, kubeconfigFromFile } = await import("../proxy/kube-api.ts");
  let config;
  try {
    config = kubeconfig !== undefined ? kubeconfigFromFile(kubeconfig) : inClusterConfig();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return new Secrets(config, log);
}
