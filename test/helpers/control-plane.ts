// The test Kubernetes control plane (DESIGN.md §8): etcd and kube-apiserver on loopback, started
// like controller-runtime's envtest, RBAC on, an admin kubeconfig. No controller-manager runs:
// namespaces never finish deleting, so tests use fresh names. Every process is stopped by its PID.
// Secrets created through kubectl and minted tokens are registered with the canary scan, and stop()
// first records the cluster's statuses and Events for it (canary.ts, canary-kube.ts).
import { execFile, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { kubeconfigFromFile, type KubeApiConfig } from "../../sidecar/proxy/kube-api.ts";
import { canary } from "./canary.ts";
import { recordClusterState, registerKubectlSecrets } from "./canary-kube.ts";
import { ROOT, type CommandResult } from "./cli.ts";
import { adminKubeconfig, makeControlPlanePki } from "./control-plane-pki.ts";
import {
  alive,
  ensureBinaries,
  freeLoopbackPort,
  stopPid,
  trackDir,
  trackPid,
  untrackDir,
} from "./control-plane-processes.ts";

/** Time for a before() hook that starts the control plane: a cold build takes many minutes. */
export const CONTROL_PLANE_TIMEOUT_MS = 60 * 60_000;

/** A running control plane and the means to drive it. */
export interface ControlPlane {
  /** Path of the admin kubeconfig (user in `system:masters`). */
  kubeconfig: string;
  /** `https://127.0.0.1:PORT` of kube-apiserver. */
  server: string;
  /** CA that signed the serving certificate (and the admin client certificate). */
  caPem: string;
  /** The admin client certificate and key, for clients that do not read kubeconfigs. */
  adminCertPem: string;
  adminKeyPem: string;
  /** The Kubernetes version kube-apiserver reports, e.g. `v1.35.4`. */
  version: string;
  kubectlPath: string;
  helmPath: string;
  /** PIDs of etcd and kube-apiserver. */
  pids: { etcd: number; kubeApiserver: number };
  /** Runs kubectl as admin, or as the bearer of `token` (no client certificate then). */
  kubectl(args: string[], options?: { input?: string; token?: string }): Promise<CommandResult>;
  /** Runs helm against the admin kubeconfig with HOME in a private folder. */
  helm(args: string[]): Promise<CommandResult>;
  /** Mints a token for ServiceAccount `namespace/name` (which must exist) via the TokenRequest API. */
  serviceAccountToken(namespace: string, name: string): Promise<string>;
  /** The last `lines` lines of each component's log, labelled. */
  logs(lines?: number): string;
  /**
   * Records EgressPolicy/Credential statuses and Events for the canary scan, then stops both
   * processes by PID (SIGTERM, then SIGKILL) and removes the state folder if it made it.
   */
  stop(): Promise<void>;
}

/** Where and how to run: `dir` keeps the state (else a temp folder, removed by stop()). */
export interface StartOptions {
  dir?: string;
  /** Lets the processes outlive this Node process (`make cluster`). */
  detached?: boolean;
}

// Set by every sharedControlPlane() call and every kubectl/helm run, for root-hooks.ts to know
// whether a failed test touched the control plane.
let usedSinceMark = false;

function tail(file: string, lines: number): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return "(no log)";
  }
  return text
    .split("\n")
    .slice(-lines - 1)
    .join("\n");
}

/** Resolves with the HTTP status of GET `url`, or 0 when nothing answers yet. */
function httpsStatus(url: string, tls: { ca: string; cert: string; key: string }): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { ...tls, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => {
      resolve(0);
    });
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
  timeoutMs = 120_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env, timeout: timeoutMs, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: err && code === 1 && !stderr ? err.message : stderr });
      },
    );
    child.stdin?.end(input ?? "");
  });
}

/** Builds (first time) and starts etcd and kube-apiserver; resolves once /readyz answers 200. */
export async function startControlPlane(options: StartOptions = {}): Promise<ControlPlane> {
  const bin = await ensureBinaries();
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? trackDir(mkdtempSync(join(tmpdir(), "airlock-k8s-")));
  for (const sub of ["pki", "etcd-data", "cert-dir", "logs", "home"])
    mkdirSync(join(dir, sub), { recursive: true });
  const logFile = { etcd: join(dir, "logs/etcd.log"), kubeApiserver: join(dir, "logs/kube-apiserver.log") };
  const logs = (lines = 100): string =>
    [
      `--- etcd (last ${lines} lines of ${logFile.etcd}) ---`,
      tail(logFile.etcd, lines),
      `--- kube-apiserver (last ${lines} lines of ${logFile.kubeApiserver}) ---`,
      tail(logFile.kubeApiserver, lines),
    ].join("\n");
  const started: number[] = [];
  const cleanup = async (): Promise<void> => {
    // kube-apiserver first: stopped while etcd is gone, it waits out the whole grace period.
    for (const pid of started.splice(0).reverse()) await stopPid(pid);
    if (ownDir) {
      rmSync(dir, { recursive: true, force: true });
      untrackDir(dir);
    }
  };
  const launch = (name: keyof typeof logFile, file: string, args: string[]): number => {
    const fd = openSync(logFile[name], "a");
    const child = spawn(file, args, { stdio: ["ignore", fd, fd], detached: options.detached === true });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${file}`);
    // Unreferenced, so a run without root-hooks.ts still ends; the exit handler then kills it.
    child.unref();
    if (options.detached !== true) trackPid(child.pid);
    started.push(child.pid);
    return child.pid;
  };
  try {
    const pki = makeControlPlanePki(join(dir, "pki"));
    const [client, peer, secure] = [
      await freeLoopbackPort(),
      await freeLoopbackPort(),
      await freeLoopbackPort(),
    ];
    const etcdUrl = `http://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    const etcd = launch("etcd", bin.etcd, [
      `--data-dir=${join(dir, "etcd-data")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      // Test data is thrown away: skipping fsync makes every write far cheaper on a busy machine.
      "--unsafe-no-fsync",
    ]);
    await waitFor("etcd", async () => (await fetch(`${etcdUrl}/health`)).ok, 60_000, [etcd]);
    const server = `https://127.0.0.1:${secure}`;
    const kubeApiserver = launch("kubeApiserver", bin.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${secure}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--cert-dir=${join(dir, "cert-dir")}`,
      `--tls-cert-file=${pki.servingCertFile}`,
      `--tls-private-key-file=${pki.servingKeyFile}`,
      `--client-ca-file=${pki.caFile}`,
      "--authorization-mode=RBAC",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${pki.serviceAccountPublicFile}`,
      `--service-account-signing-key-file=${pki.serviceAccountPrivateFile}`,
      "--disable-admission-plugins=ServiceAccount",
      // Nothing can reach a loopback endpoint from a pod: don't publish one for the `kubernetes` Service.
      "--endpoint-reconciler-type=none",
    ]);
    const tls = { ca: pki.caPem, cert: pki.adminCertPem, key: pki.adminKeyPem };
    const readyz = async (): Promise<boolean> => (await httpsStatus(`${server}/readyz`, tls)) === 200;
    await waitFor("kube-apiserver", readyz, 180_000, [etcd, kubeApiserver]);
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, adminKubeconfig(server, pki), { mode: 0o600 });
    writeFileSync(join(dir, "ca.crt"), pki.caPem);
    const env = { ...process.env, HOME: join(dir, "home"), KUBECONFIG: kubeconfig };
    const kubectl: ControlPlane["kubectl"] = (args, opts = {}) => {
      // A token user gets no client certificate: x509 would otherwise authenticate it as admin.
      const auth =
        opts.token === undefined
          ? [`--kubeconfig=${kubeconfig}`]
          : [
              `--kubeconfig=${join(dir, "home/empty-kubeconfig")}`,
              `--server=${server}`,
              `--certificate-authority=${join(dir, "ca.crt")}`,
              `--token=${opts.token}`,
            ];
      usedSinceMark = true;
      registerKubectlSecrets(args, opts.input);
      return run(bin.kubectl, [...auth, ...args], env, opts.input);
    };
    writeFileSync(join(dir, "home/empty-kubeconfig"), "apiVersion: v1\nkind: Config\n");
    return {
      kubeconfig,
      server,
      caPem: pki.caPem,
      adminCertPem: pki.adminCertPem,
      adminKeyPem: pki.adminKeyPem,
      version: bin.version,
      kubectlPath: bin.kubectl,
      helmPath: bin.helm,
      pids: { etcd, kubeApiserver },
      kubectl,
      helm: (args) => {
        usedSinceMark = true;
        return run(bin.helm, args, env);
      },
      serviceAccountToken: async (namespace, name) => {
        const made = await kubectl(["create", "token", name, "-n", namespace, "--duration=1h"]);
        if (made.code !== 0)
          throw new Error(`kubectl create token ${namespace}/${name} failed: ${made.stderr}`);
        return canary.secret(made.stdout.trim(), `ServiceAccount token ${namespace}/${name}`);
      },
      logs,
      stop: async () => {
        await recordClusterState(kubectl, server);
        await cleanup();
      },
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const logText = logs(60);
    await cleanup();
    throw new Error(`${message}\n${logText}`, { cause: err });
  }
}

/** Polls `ready` until it holds; fails (naming `what`) on timeout or when a watched PID has exited. */
async function waitFor(
  what: string,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  watched: number[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready().catch(() => false)) return;
    const exited = watched.find((pid) => !alive(pid));
    if (exited !== undefined)
      throw new Error(`${what} did not become ready: process ${exited} exited (logs below)`);
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

let shared: Promise<ControlPlane> | undefined;
let sharedStarted: ControlPlane | undefined;

/** The one control plane of this test run, started on first call; root-hooks.ts stops it. */
export function sharedControlPlane(): Promise<ControlPlane> {
  usedSinceMark = true;
  shared ??= startControlPlane().then((controlPlane) => (sharedStarted = controlPlane));
  return shared;
}

/** The shared control plane if it has started successfully, else undefined (never waits). */
export function runningSharedControlPlane(): ControlPlane | undefined {
  return sharedStarted;
}

/** Reports whether the control plane was asked for or driven since the last call; resets the mark. */
export function takeUsedMark(): boolean {
  const used = usedSinceMark;
  usedSinceMark = false;
  return used;
}

/** Stops the shared control plane, if any; a later sharedControlPlane() starts a new one. */
export async function stopSharedControlPlane(): Promise<void> {
  const running = await shared?.catch(() => undefined);
  shared = undefined;
  sharedStarted = undefined;
  await running?.stop();
}

/** Applies crds/ and waits until both CRDs are Established; throws with kubectl's stderr otherwise. */
export async function installAirlockCrds(cp: ControlPlane): Promise<void> {
  for (const args of [
    ["apply", "-f", join(ROOT, "crds")],
    [
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/egresspolicies.airlock.dev",
      "crd/credentials.airlock.dev",
    ],
  ]) {
    const res = await cp.kubectl(args);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${res.stderr}`);
  }
}

/** A client-node KubeConfig that talks to `cp` with a bearer `token`, e.g. a ServiceAccount's. */
export function tokenKubeConfig(cp: ControlPlane, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "test", server: cp.server, caData: Buffer.from(cp.caPem).toString("base64") }],
    users: [{ name: "token", token }],
    contexts: [{ name: "test", cluster: "test", user: "token" }],
    currentContext: "test",
  });
  return config;
}

/** Writes tokenKubeConfig(cp, token) to `path` (mode 0600), for processes' --kubeconfig. */
export function writeTokenKubeconfig(cp: ControlPlane, path: string, token: string): string {
  writeFileSync(path, tokenKubeConfig(cp, token).exportConfig(), { mode: 0o600 });
  return path;
}

/**
 * The sidecar's API config for `cp` with a bearer `token`: tokenKubeConfig written to a kubeconfig
 * file and read back the way `airlock sidecar --kubeconfig` reads it.
 */
export function tokenKubeApiConfig(cp: ControlPlane, token: string): KubeApiConfig {
  const dir = mkdtempSync(join(tmpdir(), "airlock-kubeconfig-"));
  try {
    return kubeconfigFromFile(writeTokenKubeconfig(cp, join(dir, "kubeconfig"), token));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `kubectl auth can-i ARGS --as=system:serviceaccount:NS:SA` as admin: "yes" or "no". */
export async function serviceAccountCan(
  cp: ControlPlane,
  namespace: string,
  serviceAccount: string,
  ...args: string[]
): Promise<string> {
  const as = `--as=system:serviceaccount:${namespace}:${serviceAccount}`;
  return (await cp.kubectl(["auth", "can-i", as, ...args])).stdout.trim();
}
