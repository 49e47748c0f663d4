// Agent pods without a kubelet, for tests and benchmarks against the control plane: a Pod object
// created with kubectl (injected annotation, status patched to Running at a loopback IP) and a real
// `airlock sidecar` process listening on that IP; and `airlock operator` processes.
import { join } from "node:path";
import { BUNDLE_KEYS_ENV } from "../../operator/inject/injected.ts";
import { INJECTED_ANNOTATION } from "../../operator/kube/cluster.ts";
import { recordMetricsScrape } from "./canary.ts";
import { startAirlock, type RunningCommand } from "./cli.ts";
import type { ControlPlane } from "./control-plane.ts";

/** A pod's sidecar process and how to reach it. */
export interface SidecarProcess {
  pod: string;
  ip: string;
  /** `http://IP:PORT` of its explicit proxy. */
  proxy: string;
  /** Its interception CA (PEM file), for clients' --cacert. */
  caPath: string;
  /** Its control port (the same for every pod, as in a cluster). */
  controlPort: number;
  command: RunningCommand;
}

/** What every agent pod of a test shares. */
export interface AgentPodWorld {
  cp: ControlPlane;
  namespace: string;
  /** Where the sidecars' CA and trust files go. */
  dir: string;
  /** The ServiceAccount the pods run as, and a kubeconfig holding its token (the sidecar's). */
  serviceAccount: string;
  kubeconfig: string;
  /** The upstreams' CA (PEM file) the sidecars trust. */
  upstreamCa: string;
  /** `--resolve HOST:IP` pins. */
  resolve: string[];
  /** The control port; 0 lets the first sidecar pick one. */
  controlPort: number;
}

async function kubectl(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  return res.stdout;
}

/** A Pod object for an agent as a user writes it: one container, running as `serviceAccount`. */
export function agentPodManifest(
  pod: string,
  namespace: string,
  serviceAccount: string,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: pod, namespace, labels, annotations },
    spec: {
      serviceAccountName: serviceAccount,
      containers: [{ name: "agent", image: "example.invalid/agent" }],
    },
  };
}

/**
 * The operator's bundle key(s) a sidecar trusts: a PEM file (`--bundle-key`), or PEM text handed
 * in environment variable AIRLOCK_BUNDLE_KEYS (`--bundle-key-env`, as an injected sidecar gets it).
 */
export type BundleKeySource = { file: string } | { env: string };

/** Starts `airlock sidecar` for `pod` on `ip`. Sets `world.controlPort` on first use. */
export async function startSidecarProcess(
  world: AgentPodWorld,
  pod: string,
  ip: string,
  key: BundleKeySource,
): Promise<SidecarProcess> {
  const caPath = join(world.dir, `${pod}-ca.pem`);
  const keyArgs = "file" in key ? ["--bundle-key", key.file] : ["--bundle-key-env", BUNDLE_KEYS_ENV];
  // startAirlock spawns (with this process's environment) before it first awaits: the variable is
  // set for exactly that spawn and restored at once.
  const previous = process.env[BUNDLE_KEYS_ENV];
  if ("env" in key) process.env[BUNDLE_KEYS_ENV] = key.env;
  const starting = startAirlock(
    [
      "sidecar",
      ...["--listen", `${ip}:0`, "--metrics", `${ip}:0`, "--transparent", `${ip}:0`, "--dns", `${ip}:0`],
      ...["--control", `${ip}:${String(world.controlPort)}`, ...keyArgs],
      ...["--kubeconfig", world.kubeconfig, "--allow-address", "127.0.0.1/32"],
      ...["--trust-bundle", join(world.dir, `${pod}-trust.pem`), "--ca-out", caPath],
      ...["--upstream-ca", world.upstreamCa, ...world.resolve.flatMap((r) => ["--resolve", r])],
      ...["--pod", pod, "--namespace", world.namespace, "--service-account", world.serviceAccount],
      ...["--log-level", "warn"],
    ],
    /listening on http:\/\/\S+\n/,
  );
  if (previous === undefined) Reflect.deleteProperty(process.env, BUNDLE_KEYS_ENV);
  else process.env[BUNDLE_KEYS_ENV] = previous;
  const command = await starting;
  const proxy = /listening on (http:\/\/\S+)/.exec(command.stderr())?.[1] ?? "";
  if (world.controlPort === 0)
    world.controlPort = Number(/control on https:\/\/\S+:(\d+)/.exec(command.stderr())?.[1]);
  return { pod, ip, proxy, caPath, controlPort: world.controlPort, command };
}

/** Patches stored Pod `pod`'s status to Running at `ip` (what a kubelet would report). */
export async function markPodRunning(world: AgentPodWorld, pod: string, ip: string): Promise<void> {
  await kubectl(world.cp, [
    ...["-n", world.namespace, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p"],
    JSON.stringify({ status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } }),
  ]);
}

/**
 * Starts `airlock sidecar` on `ip` trusting `bundleKey` (a PEM file), then creates Pod `pod` with
 * `labels` (marked injected without the webhook) and patches its status to Running at `ip`. Sets
 * `world.controlPort` on first use.
 */
export async function startAgentPod(
  world: AgentPodWorld,
  pod: string,
  ip: string,
  bundleKey: string,
  labels: Record<string, string> = { app: "agent" },
): Promise<SidecarProcess> {
  const sidecar = await startSidecarProcess(world, pod, ip, { file: bundleKey });
  const manifest = agentPodManifest(pod, world.namespace, world.serviceAccount, labels, {
    [INJECTED_ANNOTATION]: "{}",
  });
  await kubectl(world.cp, ["apply", "-f", "-"], JSON.stringify(manifest));
  await markPodRunning(world, pod, ip);
  return sidecar;
}

/** A running `airlock operator` and its metrics URL. */
export interface OperatorProcess {
  metrics: string;
  command: RunningCommand;
}

/**
 * Starts `airlock operator` with `args`, besides --metrics on a free loopback port and, unless
 * `args` names one, --webhook on another (the default 0.0.0.0:9443 would clash between replicas).
 */
export async function startOperatorProcess(args: string[]): Promise<OperatorProcess> {
  const webhook = args.includes("--webhook") ? [] : ["--webhook", "127.0.0.1:0"];
  const command = await startAirlock(
    ["operator", ...args, ...webhook, "--metrics", "127.0.0.1:0"],
    /metrics on http:\/\/\S+\n/,
  );
  return { metrics: /metrics on (http:\/\/\S+)/.exec(command.stderr())?.[1] ?? "", command };
}

/**
 * Signals a process (SIGTERM unless told) and waits for it to exit; nothing if it already has. A
 * running process's /metrics (the URL it printed) is first scraped once for the canary scan.
 */
export async function stopProcess(
  command: RunningCommand,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (command.child.exitCode !== null || command.child.signalCode !== null) return;
  const metrics = /metrics on (http:\/\/\S+)/.exec(command.stderr())?.[1];
  if (metrics !== undefined) await recordMetricsScrape(`${metrics}/metrics`, `${metrics}/metrics`);
  command.child.kill(signal);
  await command.exited;
}

/**
 * Creates `namespace` with ServiceAccounts `agent` and `airlock-operator`, binds the latter to
 * operator/rbac/clusterrole.yaml (applied from `clusterRolePath`): `airlock-operator` cluster-wide,
 * `airlock-operator-namespace` (its own Secrets) in `namespace` only, where it runs with
 * --lease-namespace. Returns each one's token.
 */
export async function createAgentNamespace(
  cp: ControlPlane,
  namespace: string,
  clusterRolePath: string,
): Promise<{ agentToken: string; operatorToken: string }> {
  for (const args of [
    ["create", "namespace", namespace],
    ["-n", namespace, "create", "serviceaccount", "agent"],
    ["-n", namespace, "create", "serviceaccount", "airlock-operator"],
    ["apply", "-f", clusterRolePath],
    [
      ...["create", "clusterrolebinding", namespace, "--clusterrole=airlock-operator"],
      `--serviceaccount=${namespace}:airlock-operator`,
    ],
    [
      ...["-n", namespace, "create", "rolebinding", "airlock-operator"],
      ...["--clusterrole=airlock-operator-namespace", `--serviceaccount=${namespace}:airlock-operator`],
    ],
  ])
    await kubectl(cp, args);
  return {
    agentToken: await cp.serviceAccountToken(namespace, "agent"),
    operatorToken: await cp.serviceAccountToken(namespace, "airlock-operator"),
  };
}
