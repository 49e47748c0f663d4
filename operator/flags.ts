// The flags of `airlock operator`, parsed and checked without touching files, sockets or the
// cluster: the command (cli.ts) does the wiring. Every problem is an OperatorUsageError naming
// the flag.
import { parseArgs } from "node:util";
import { PORTS } from "../sidecar/constants.ts";
import { parseCidr } from "../sidecar/net/address.ts";
import { parseListen, type ListenAddress } from "../sidecar/process/listen.ts";
import { UsageError } from "../sidecar/process/usage-error.ts";

/** A flag the operator cannot run with; the message names the flag and what to give instead. */
export class OperatorUsageError extends UsageError {}

/** The operator's settings, every default applied. */
export interface OperatorFlags {
  signingKeyPath: string | undefined;
  kubeconfig: string | undefined;
  leaseNamespace: string;
  identity: string;
  controlPort: number | undefined;
  resyncMs: number;
  leaseSeconds: number;
  metrics: ListenAddress;
  webhook: ListenAddress;
  webhookUrl: string | undefined;
  /** create: the operator makes the webhook configurations when absent; patch: only their caBundle. */
  webhookConfigurations: "create" | "patch";
  /** The image injected into agent pods, and its pull policy. */
  image: string;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never" | undefined;
  /** A PEM file of extra upstream roots injected sidecars trust (and give the agent). */
  upstreamCaPath: string | undefined;
  /** Non-public ranges injected sidecars may dial (`--allow-address` of each sidecar). */
  sidecarAllowAddresses: string[];
  /** Objects the operator creates are owned by ClusterRole airlock-operator (garbage-collected with it). */
  ownedByClusterRole: boolean;
}

const PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;

/**
 * Parses `argv`. `env` supplies the in-pod defaults (POD_NAMESPACE, POD_NAME, AIRLOCK_IMAGE),
 * `host` the identity outside a pod, `version` the default image tag.
 */
export function parseOperatorFlags(
  argv: string[],
  env: Record<string, string | undefined>,
  host: string,
  version: string,
): OperatorFlags {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        "signing-key": { type: "string" },
        webhook: { type: "string", default: "0.0.0.0:9443" },
        "webhook-url": { type: "string" },
        "webhook-configurations": { type: "string", default: "create" },
        image: { type: "string", default: env["AIRLOCK_IMAGE"] ?? `airlock:${version}` },
        "image-pull-policy": { type: "string" },
        "upstream-ca": { type: "string" },
        "sidecar-allow-address": { type: "string", multiple: true, default: [] },
        "owned-by-clusterrole": { type: "boolean", default: false },
        kubeconfig: { type: "string" },
        "lease-namespace": { type: "string", default: env["POD_NAMESPACE"] ?? "airlock-system" },
        identity: { type: "string", default: env["POD_NAME"] ?? host },
        "control-port": { type: "string" },
        resync: { type: "string", default: "30" },
        "lease-seconds": { type: "string", default: "15" },
        metrics: { type: "string", default: `0.0.0.0:${String(PORTS.metrics)}` },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new OperatorUsageError((err as Error).message);
  }
  const resync = Number(values.resync);
  if (!Number.isFinite(resync) || resync <= 0)
    throw new OperatorUsageError("--resync must be a positive number of seconds");
  const leaseSeconds = Number(values["lease-seconds"]);
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 3)
    throw new OperatorUsageError("--lease-seconds must be a whole number of seconds, at least 3");
  const port = values["control-port"] === undefined ? undefined : Number(values["control-port"]);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
    throw new OperatorUsageError("--control-port must be a TCP port");
  const webhookUrl = values["webhook-url"];
  if (webhookUrl !== undefined && !/^https:\/\/[^/]+/.test(webhookUrl))
    throw new OperatorUsageError("--webhook-url must be an https:// URL (https://HOST:PORT)");
  const pull = values["image-pull-policy"];
  if (pull !== undefined && !(PULL_POLICIES as readonly string[]).includes(pull))
    throw new OperatorUsageError(`--image-pull-policy must be one of ${PULL_POLICIES.join(", ")}`);
  if (values.image.trim() === "") throw new OperatorUsageError("--image must name an image");
  const configurations = values["webhook-configurations"];
  if (configurations !== "create" && configurations !== "patch")
    throw new OperatorUsageError("--webhook-configurations must be create or patch");
  for (const cidr of values["sidecar-allow-address"]) {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) throw new OperatorUsageError(`--sidecar-allow-address ${cidr}: ${parsed.message}`);
  }
  return {
    signingKeyPath: values["signing-key"],
    kubeconfig: values.kubeconfig,
    leaseNamespace: values["lease-namespace"],
    identity: values.identity,
    controlPort: port,
    resyncMs: resync * 1000,
    leaseSeconds,
    metrics: listenFlag("metrics", values.metrics),
    webhook: listenFlag("webhook", values.webhook),
    webhookUrl,
    webhookConfigurations: configurations,
    image: values.image,
    imagePullPolicy: pull as OperatorFlags["imagePullPolicy"],
    upstreamCaPath: values["upstream-ca"],
    sidecarAllowAddresses: values["sidecar-allow-address"],
    ownedByClusterRole: values["owned-by-clusterrole"],
  };
}

function listenFlag(flag: string, value: string): ListenAddress {
  try {
    return parseListen(flag, value);
  } catch (err) {
    throw new OperatorUsageError((err as Error).message);
  }
}
