// Binaries and processes of the test control plane: runs test/k8s/build.sh (which builds etcd
// and kube-apiserver once per version) and stops processes by PID, never by name.
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { canary } from "./canary.ts";
import { ROOT } from "./cli.ts";

/** Absolute paths of the four programs and the Kubernetes version they are (`v1.35.4`). */
export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubectl: string;
  helm: string;
  version: string;
}

/** The script that provides the binaries; `make cluster` and the tests both go through it. */
export const BUILD_SCRIPT = join(ROOT, "test/k8s/build.sh");

let binaries: Promise<ControlPlaneBinaries> | undefined;

function runBuildScript(): Promise<ControlPlaneBinaries> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [BUILD_SCRIPT], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    // Progress goes straight through: a cold build is silent for minutes otherwise.
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      process.stderr.write(chunk);
    });
    child.once("error", (err) => {
      reject(new Error(`could not run ${BUILD_SCRIPT}: ${err.message} (is bash installed?)`));
    });
    child.once("close", (code) => {
      canary.record("process-output", BUILD_SCRIPT, `${stdout}\n${stderr}`, "exposed");
      const values = new Map(
        stdout
          .split("\n")
          .map((line) => /^([A-Z_]+)=(.*)$/.exec(line))
          .filter((m) => m !== null)
          .map((m) => [m[1] ?? "", m[2] ?? ""]),
      );
      const get = (key: string): string => values.get(key) ?? "";
      const found: ControlPlaneBinaries = {
        etcd: get("ETCD"),
        kubeApiserver: get("KUBE_APISERVER"),
        kubectl: get("KUBECTL"),
        helm: get("HELM"),
        version: get("KUBERNETES_VERSION"),
      };
      if (code === 0 && Object.values(found).every((v) => v !== "")) {
        resolve(found);
        return;
      }
      const why = stderr
        .split("\n")
        .filter((l) => l.startsWith("k8s build: "))
        .join("\n");
      reject(
        new Error(
          `the test control plane is missing: ${BUILD_SCRIPT} exited with ${String(code)}\n` +
            (why || stderr.split("\n").slice(-30).join("\n")),
        ),
      );
    });
  });
}

/**
 * Provides the binaries once per process, building them on first use (progress on stderr). A
 * failure is kept too: every later caller gets the same message without another long build.
 */
export function ensureBinaries(): Promise<ControlPlaneBinaries> {
  binaries ??= runBuildScript();
  return binaries;
}

/** True while `pid` names a process that has not exited (a zombie counts as exited). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

const tracked = new Set<number>();
const trackedDirs = new Set<string>();

/** Remembers a child so that it is killed even if this process exits without stop(). */
export function trackPid(pid: number): void {
  tracked.add(pid);
}

/** Remembers a temp folder so that it is removed even if this process exits without stop(). */
export function trackDir(dir: string): string {
  trackedDirs.add(dir);
  return dir;
}

/** Forgets a folder that stop() removed. */
export function untrackDir(dir: string): void {
  trackedDirs.delete(dir);
}

// The last resort for runs that never call stop() (e.g. mocha without root-hooks.ts, or a crash).
process.once("exit", () => {
  for (const pid of tracked) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const dir of trackedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // a killed process may still be writing; the folder is only a temp folder
    }
  }
});

/** Stops `pid` with SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  tracked.delete(pid);
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      signal("SIGKILL");
      const killDeadline = Date.now() + 5000;
      while (alive(pid) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a server whose address must be known
 * before it starts (e.g. `--webhook` together with `--webhook-url`).
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}
