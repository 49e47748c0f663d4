// Many idle CONNECT tunnels through a real `airlock run` process, for the tunnel test and
// `test/bench/tunnels.ts`: the sidecar process (its open-file limit raised for it), a policy with
// one passthrough and one intercepted host, tunnels opened with their TLS handshake done, and
// the process's resident memory and open descriptors read from /proc. Loopback only.
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import net from "node:net";
import tls from "node:tls";
import { AIRLOCK } from "../helpers/cli.ts";
import { credentialYaml, egressPolicyYaml } from "../helpers/policy-yaml.ts";

/** Hosts of the policy: one passed through (TLS with the upstream), one intercepted (inject). */
export const PASS_HOST = "pass.example.test";
export const INTERCEPT_HOST = "inject.example.test";
export const TUNNEL_SECRET = "tunnel-load-secret-7c3a";

/** A running `airlock run` process. */
export interface SidecarUnderLoad {
  child: ChildProcess;
  pid: number;
  proxyPort: number;
  /** `http://127.0.0.1:PORT` of its /metrics, /healthz and /readyz. */
  metricsUrl: string;
  /** The interception CA (PEM), for clients of intercepted tunnels. */
  caPem: string;
  stop(): Promise<void>;
}

/** The soft and hard open-file limits of this process (/proc/self/limits). */
export function openFileLimits(): { soft: number; hard: number } {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const [soft, hard] = (line ?? "").split(/\s+/).slice(3, 5);
  const value = (v: string | undefined): number => (v === "unlimited" ? Infinity : Number(v ?? 0));
  return { soft: value(soft), hard: value(hard) };
}

/** Resident set size of `pid` in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const match = /\nVmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** Open file descriptors of `pid`. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Writes the policy (both hosts on `upstreamPort`) into `dir`; returns its path. */
export function writeTunnelPolicy(dir: string, upstreamPort: number): string {
  const path = join(dir, "tunnels-policy.yaml");
  writeFileSync(
    path,
    egressPolicyYaml("tunnels", [
      `{name: pass, hosts: [${PASS_HOST}], ports: [${upstreamPort}]}`,
      `{name: inject, hosts: [${INTERCEPT_HOST}], ports: [${upstreamPort}], credential: api}`,
    ]) + credentialYaml("api", TUNNEL_SECRET, "{header: {name: X-Api-Key}}"),
  );
  return path;
}

/**
 * Starts `airlock run --policy POLICY` on ephemeral loopback ports with its open-file limit set to
 * `fdLimit` (through the shell's `ulimit -n`, then exec: the PID is the sidecar's own).
 */
export async function startSidecarProcess(options: {
  dir: string;
  policy: string;
  upstreamCaFile: string;
  fdLimit: number;
}): Promise<SidecarUnderLoad> {
  const caOut = join(options.dir, "interception-ca.pem");
  const args = [
    ...["run", "--policy", options.policy, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
    ...["--upstream-ca", options.upstreamCaFile, "--ca-out", caOut, "--allow-address", "127.0.0.1/32"],
    ...["--resolve", `${PASS_HOST}:127.0.0.1`, "--resolve", `${INTERCEPT_HOST}:127.0.0.1`],
  ];
  const quoted = [AIRLOCK, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = spawn("bash", ["-c", `ulimit -n ${options.fdLimit} && exec ${quoted}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stdout.resume(); // the audit log: read and dropped, so the sidecar never blocks on it
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`airlock run did not start within 20 s:\n${stderr}`));
    }, 20_000);
    const check = (): void => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (!match) return;
      clearTimeout(timer);
      resolve(Number(match[1]));
    };
    child.stderr.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`airlock run exited before it was ready:\n${stderr}`));
    });
  });
  const pid = child.pid ?? 0;
  if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("sidecar/cli/main.ts"))
    throw new Error(`process ${pid} is not the sidecar`);
  return {
    child,
    pid,
    proxyPort: port,
    metricsUrl: /metrics on (http:\/\/\S+)/.exec(stderr)?.[1] ?? "",
    caPem: readFileSync(caOut, "utf8"),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** How long one tunnel may take to open before it counts as refused (a full backlog never answers). */
const OPEN_TIMEOUT_MS = 30_000;

/**
 * CONNECTs to `host:port` through the proxy and completes a TLS handshake trusting `ca`; rejects
 * on a refusal, an error, or no handshake within OPEN_TIMEOUT_MS.
 */
export async function openTunnel(
  proxyPort: number,
  host: string,
  port: number,
  ca: string,
): Promise<tls.TLSSocket> {
  const socket = net.connect({ host: "127.0.0.1", port: proxyPort });
  socket.setNoDelay(true);
  const timer = setTimeout(() => {
    socket.destroy(new Error(`tunnel to ${host}:${port} not open within ${OPEN_TIMEOUT_MS / 1000} s`));
  }, OPEN_TIMEOUT_MS);
  try {
    return await handshake(socket, host, port, ca);
  } finally {
    clearTimeout(timer);
  }
}

async function handshake(socket: net.Socket, host: string, port: number, ca: string): Promise<tls.TLSSocket> {
  const secure = await connectTls(socket, host, port, ca);
  // An idle tunnel that the sidecar or upstream closes must not crash the client with an error.
  secure.on("error", () => secure.destroy());
  return secure;
}

/**
 * Sends CONNECT host:port on `socket` (connected to the proxy) and, once it is answered 200, does
 * a TLS handshake for `host` trusting `ca` inside it. Rejects on a refusal or an error; the
 * TLS socket it resolves with has no error listener of this function's left on it.
 */
export async function connectTls(
  socket: net.Socket,
  host: string,
  port: number,
  ca: string,
): Promise<tls.TLSSocket> {
  await new Promise<void>((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer): void => {
      text += chunk.toString("latin1");
      if (!text.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      socket.off("error", reject);
      if (text.startsWith("HTTP/1.1 200")) resolve();
      else reject(new Error(`CONNECT ${host}:${port} refused: ${text.slice(0, 200)}`));
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  });
  const secure = tls.connect({ socket, servername: host, ca });
  await new Promise<void>((resolve, reject) => {
    secure.once("secureConnect", () => {
      secure.off("error", reject);
      resolve();
    });
    secure.once("error", reject);
  });
  return secure;
}

/** Opens `count` tunnels to `host`, `parallel` handshakes at a time; all or an error. */
export async function openTunnels(
  count: number,
  parallel: number,
  open: () => Promise<tls.TLSSocket>,
): Promise<tls.TLSSocket[]> {
  const sockets: tls.TLSSocket[] = [];
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < count && !failed) {
      next++;
      try {
        sockets.push(await open());
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  // Every worker has stopped before anything is closed: none adds a socket after the cleanup.
  const settled = await Promise.allSettled(Array.from({ length: Math.min(parallel, count) }, worker));
  const rejected = settled.find((r) => r.status === "rejected");
  if (rejected) {
    for (const s of sockets) s.destroy();
    throw rejected.reason instanceof Error ? rejected.reason : new Error(String(rejected.reason));
  }
  return sockets;
}

/** Sends one GET on an open tunnel and resolves with the response head and body (Connection: close). */
export function getOnTunnel(
  socket: tls.TLSSocket,
  host: string,
  port: number,
  path: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response on the tunnel to ${host} within 10 s: ${text}`));
    }, 10_000);
    socket.on("data", (c: Buffer) => (text += c.toString("utf8")));
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`);
  });
}

/** Resolves once `probe` holds (polled every 100 ms) or rejects after `ms`, naming `what`. */
export async function until(what: string, probe: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
