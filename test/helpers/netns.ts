// A pod and its world, as network namespaces (DESIGN.md §8). The "world" namespace holds real
// upstream servers on addresses of its own and a real DNS server (dnsmasq) that names them; the
// "pod" namespace is joined to it by a veth pair, gets `airlock init`, runs the sidecar as UID
// 15000 and agent commands as another UID. Everything is torn down by the tests, every process
// stopped by its PID. No address outside these namespaces is ever used. Background processes'
// output and scratch files' Secret manifests feed the canary scan (canary.ts).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { canary, type Exposure } from "./canary.ts";
import { registerManifestSecrets } from "./canary-kube.ts";
import { ROOT } from "./cli.ts";

/** The pinned Node that runs the project's TypeScript. */
export const NODE = join(ROOT, "node_modules/.bin/node");

/**
 * The sidecar and agent run as other UIDs and must reach the checkout (bin/airlock, the pinned
 * Node): give every folder above it the search bit for others, as a checkout in a private temp
 * folder would otherwise deny them.
 */
export function ensureTraversable(path: string): void {
  for (let dir = path; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
  }
}

/** Fails, saying what is missing, unless this test can create namespaces and find its tools. */
export function requireNetnsPrerequisites(tools: string[]): void {
  if (process.getuid?.() !== 0)
    throw new Error("this test needs root (network namespaces, iptables); run as root");
  const missing = tools.filter((tool) => {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0)
    throw new Error(
      `missing prerequisites: ${missing.join(", ")} (apt-get install iproute2 iptables dnsmasq-base …)`,
    );
  ensureTraversable(ROOT);
}

function sh(args: string[]): string {
  return execFileSync(args[0] ?? "", args.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

// Commands built by PodWorld.inWorld: they run in the world namespace, outside the boundary, where
// the upstreams log what they RECEIVED (the injected credential, by design).
const worldCommands = new WeakSet<string[]>();

/** A started background process with its output so far. */
export interface Background {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `args` in the background; `ready` waits for a pattern in its output. The output is
 * recorded for the canary scan with `exposure`: by default "upstream-side" for a command built by
 * PodWorld.inWorld (the world is the far side of the boundary), "exposed" for any other.
 */
export async function background(
  args: string[],
  ready?: RegExp,
  timeoutMs = 15_000,
  exposure: Exposure = worldCommands.has(args) ? "upstream-side" : "exposed",
): Promise<Background> {
  const child = spawn(args[0] ?? "", args.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")));
  canary.recordLive("process-output", `background ${args.join(" ")}`, () => out, exposure);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
  };
  if (ready) {
    const deadline = Date.now() + timeoutMs;
    while (!ready.test(out)) {
      if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited early:\n${out}`);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${args.join(" ")} did not print ${String(ready)}:\n${out}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return { child, output: () => out, stop };
}

/** The two namespaces and their addresses. */
export interface PodWorld {
  pod: string;
  world: string;
  podIp: string;
  worldIp: string;
  podIp6: string;
  worldIp6: string;
  /** Addresses on the world side that upstreams listen on. */
  upstreamIps: string[];
  /** A scratch folder readable by every UID of the test. */
  dir: string;
  /** `ip netns exec POD` + setpriv as uid/gid (plus supplementary groups), for agent commands. */
  asUser(uid: number, command: string[], groups?: number[]): string[];
  inPod(command: string[]): string[];
  /** `ip netns exec WORLD` + command; background() records its output as upstream-side. */
  inWorld(command: string[]): string[];
  destroy(): void;
}

/** Creates the pod and world namespaces, joined by a veth pair, with a resolv.conf for the pod. */
export function createPodWorld(upstreamIps: string[]): PodWorld {
  const id = randomBytes(3).toString("hex");
  const pod = `airlock-pod-${id}`;
  const world = `airlock-world-${id}`;
  const podIp = "10.77.0.2";
  const worldIp = "10.77.0.1";
  const podIp6 = "fd77::2";
  const worldIp6 = "fd77::1";
  const dir = mkdtempSync(join(tmpdir(), `airlock-netns-${id}-`));
  chmodSync(dir, 0o755);
  const created: string[] = [];
  const destroy = (): void => {
    for (const ns of created) {
      try {
        sh(["ip", "netns", "delete", ns]);
      } catch {
        // already gone
      }
    }
    rmSync(join("/etc/netns", pod), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const ns of [pod, world]) {
      sh(["ip", "netns", "add", ns]);
      created.push(ns);
      sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    sh([
      "ip",
      "link",
      "add",
      `vp${id}`,
      "netns",
      pod,
      "type",
      "veth",
      "peer",
      "name",
      `vw${id}`,
      "netns",
      world,
    ]);
    sh(["ip", "-n", pod, "addr", "add", `${podIp}/24`, "dev", `vp${id}`]);
    sh(["ip", "-n", world, "addr", "add", `${worldIp}/24`, "dev", `vw${id}`]);
    sh(["ip", "-n", pod, "-6", "addr", "add", `${podIp6}/64`, "dev", `vp${id}`, "nodad"]);
    sh(["ip", "-n", world, "-6", "addr", "add", `${worldIp6}/64`, "dev", `vw${id}`, "nodad"]);
    sh(["ip", "-n", pod, "link", "set", `vp${id}`, "up"]);
    sh(["ip", "-n", world, "link", "set", `vw${id}`, "up"]);
    sh(["ip", "-n", pod, "route", "add", "default", "via", worldIp]);
    sh(["ip", "-n", pod, "-6", "route", "add", "default", "via", worldIp6]);
    for (const ip of upstreamIps) sh(["ip", "-n", world, "addr", "add", `${ip}/32`, "dev", "lo"]);
    sh(["ip", "-n", pod, "route", "add", "10.77.1.0/24", "via", worldIp]);
    // Let unprivileged agents open ICMP datagram sockets, so only the capture rules stop ping.
    sh(["ip", "netns", "exec", pod, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    mkdirSync(join("/etc/netns", pod), { recursive: true });
    writeFileSync(
      join("/etc/netns", pod, "resolv.conf"),
      `nameserver ${worldIp}\noptions timeout:1 attempts:1\n`,
    );
  } catch (err) {
    destroy();
    throw err;
  }
  const inPod = (command: string[]): string[] => ["ip", "netns", "exec", pod, ...command];
  return {
    pod,
    world,
    podIp,
    worldIp,
    podIp6,
    worldIp6,
    upstreamIps,
    dir,
    inPod,
    inWorld: (command) => {
      const args = ["ip", "netns", "exec", world, ...command];
      worldCommands.add(args);
      return args;
    },
    asUser: (uid, command, groups = []) =>
      inPod([
        "setpriv",
        `--reuid=${uid}`,
        `--regid=${uid}`,
        groups.length > 0 ? `--groups=${groups.join(",")}` : "--clear-groups",
        "--",
        ...command,
      ]),
    destroy,
  };
}

/**
 * Writes `content` to a file in the scratch folder, readable by every UID; returns its path. The
 * values of any Secret manifest in it are registered with the canary scan.
 */
export function scratchFile(world: PodWorld, name: string, content: string, owner?: number): string {
  registerManifestSecrets(content, `scratch file ${name}`);
  const path = join(world.dir, name);
  writeFileSync(path, content, { mode: 0o644 });
  if (owner !== undefined) chownSync(path, owner, owner);
  return path;
}

/** Reads a file written by a test process. */
export function readScratch(world: PodWorld, name: string): string {
  return readFileSync(join(world.dir, name), "utf8");
}
