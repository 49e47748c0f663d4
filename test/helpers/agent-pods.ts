// Agent pods without a kubelet, for tests and benchmarks against the control plane: a Pod object
// created with kubectl (injected annotation, status patched to Running at a loopback IP) and a real
// `airlock sidecar` process listening on that IP; and `airlock operator` processes.
import { join } from "node:path";
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

/**
 * Starts `airlock sidecar` on `ip` trusting `bundleKey` (a PEM file), then creates Pod `pod` with
 * `labels` and patches its status to Running at `ip`. Sets `world.controlPort` on first use.
 */
export async function startAgentPod(
  world: AgentPodWorld,
  pod: string,
  ip: string,
  bundleKey: string,
  labels: Record<string, string> = { app: "agent" },
): Promise<SidecarProcess> {
  const caPath = join(world.dir, `${pod}-ca.pem`);
  const command = await startAirlock(
    [
      "sidecar",
      ...["--listen", `${ip}:0`, "--metrics", `${ip}:0`, "--transparent", `${ip}:0`, "--dns", `${ip}:0`],
      ...["--control", `${ip}:${String(world.controlPort)}`, "--bundle-key", bundleKey],
      ...["--kubeconfig", world.kubeconfig, "--allow-address", "127.0.0.1/32"],
      ...["--trust-bundle", join(world.dir, `${pod}-trust.pem`), "--ca-out", caPath],
      ...["--upstream-ca", world.upstreamCa, ...world.resolve.flatMap((r) => ["--resolve", r])],
      ...["--pod", pod, "--namespace", world.namespace, "--service-account", world.serviceAccount],
      ...["--log-level", "warn"],
    ],
    /listening on http:\/\/\S+\n/,
  );
  const proxy = /listening on (http:\/\/\S+)/.exec(command.stderr())?.[1] ?? "";
  if (world.controlPort === 0)
    world.controlPort = Number(/control on https:\/\/\S+:(\d+)/.exec(command.stderr())?.[1]);
  await kubectl(
    world.cp,
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: pod,
        namespace: world.namespace,
        labels,
        annotations: { [INJECTED_ANNOTATION]: "{}" },
      },
      spec: {
        serviceAccountName: world.serviceAccount,
        containers: [{ name: "agent", image: "example.invalid/agent" }],
      },
    }),
  );
  await kubectl(world.cp, [
    ...["-n", world.namespace, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p"],
    JSON.stringify({ status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } }),
  ]);
  return { pod, ip, proxy, caPath, controlPort: world.controlPort, command };
}

/** A running `airlock operator` and its metrics URL. */
export interface OperatorProcess {
  metrics: string;
  command: RunningCommand;
}

/** Starts `airlock operator` with `args` (besides --metrics on a free loopback port). */
export async function startOperatorProcess(args: string[]): Promise<OperatorProcess> {
  const command = await startAirlock(
    ["operator", ...args, "--metrics", "127.0.0.1:0"],
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
 * operator/rbac/clusterrole.yaml (applied from `clusterRolePath`), and returns each one's token.
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
  ])
    await kubectl(cp, args);
  return {
    agentToken: await cp.serviceAccountToken(namespace, "agent"),
    operatorToken: await cp.serviceAccountToken(namespace, "airlock-operator"),
  };
}
