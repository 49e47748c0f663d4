// `make cluster` / `make cluster-down`: the tests' control plane (etcd + kube-apiserver), run in
// the background for people and for checks from outside the test suite. State lives in .cluster/:
// kubeconfig, pids, logs/, bin/ (kubectl and helm links); processes are stopped by recorded PID.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../helpers/cli.ts";
import { alive, stopPid } from "../helpers/control-plane-processes.ts";
import { startControlPlane } from "../helpers/control-plane.ts";

/** The state folder of the background control plane. */
const STATE = join(ROOT, ".cluster");
const PIDS = join(STATE, "pids");
const KUBECONFIG = join(STATE, "kubeconfig");

/** Recorded processes still running as the program recorded (a reused PID is left alone). */
function recorded(): { name: string; pid: number }[] {
  if (!existsSync(PIDS)) return [];
  return readFileSync(PIDS, "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f): f is [string, string] => f.length === 2)
    .map(([name, pid]) => ({ name, pid: Number(pid) }))
    .filter(({ name, pid }) => {
      if (!Number.isInteger(pid) || !alive(pid)) return false;
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      return argv0.endsWith(`/${name}`);
    });
}

async function start(): Promise<void> {
  const running = recorded();
  if (running.length === 2) {
    process.stderr.write(`already running (${running.map((p) => `${p.name} ${p.pid}`).join(", ")})\n`);
  } else {
    await stop();
    mkdirSync(STATE, { recursive: true });
    const cp = await startControlPlane({ dir: STATE, detached: true });
    writeFileSync(PIDS, `etcd ${cp.pids.etcd}\nkube-apiserver ${cp.pids.kubeApiserver}\n`);
    mkdirSync(join(STATE, "bin"));
    symlinkSync(cp.kubectlPath, join(STATE, "bin/kubectl"));
    symlinkSync(cp.helmPath, join(STATE, "bin/helm"));
  }
  const kubectl = join(STATE, "bin/kubectl");
  const rel = relative(process.cwd(), KUBECONFIG) || KUBECONFIG;
  const version = execFileSync(kubectl, ["--kubeconfig", KUBECONFIG, "get", "--raw", "/version"], {
    encoding: "utf8",
  });
  process.stdout.write(
    [
      `control plane running; kubeconfig: ${KUBECONFIG}`,
      `logs: ${join(STATE, "logs")}/{etcd,kube-apiserver}.log; kubectl and helm: ${join(STATE, "bin")}/`,
      `$ kubectl --kubeconfig ${rel} get --raw /version`,
      version.trim(),
      "stop it with: make cluster-down",
      "",
    ].join("\n"),
  );
}

async function stop(): Promise<void> {
  const running = recorded();
  // kube-apiserver first, so that it does not log etcd's disappearance.
  for (const { name, pid } of running.reverse()) {
    await stopPid(pid);
    process.stderr.write(`stopped ${name} (pid ${pid})\n`);
  }
  rmSync(STATE, { recursive: true, force: true });
}

const command = process.argv[2];
if (command === "start") await start();
else if (command === "stop") await stop();
else {
  process.stderr.write("usage: node test/k8s/cluster.ts start|stop\n");
  process.exitCode = 2;
}
