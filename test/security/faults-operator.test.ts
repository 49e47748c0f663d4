// Faults (control plane; THREATS.md Availability, I4): the operator killed and the API server
// down. A sidecar keeps enforcing its last good bundle — the same inject, allow and block outcomes,
// credentials from its last read of the Secret — and is still ready; once the API server and the
// operator are back, a new change is enforced again. Every part is a real process: etcd and
// kube-apiserver (this file's own instance, since it kills the API server), `airlock operator`
// with its least-privilege token, `airlock sidecar` on a loopback pod IP with the pod's token.
import { expect } from "chai";
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import {
  startAgentPod,
  startOperatorProcess,
  stopProcess,
  type OperatorProcess,
  type SidecarProcess,
} from "../helpers/agent-pods.ts";
import {
  CONTROL_PLANE_TIMEOUT_MS,
  installAirlockCrds,
  startControlPlane,
  type ControlPlane,
} from "../helpers/control-plane.ts";
import { alive, stopPid, trackPid } from "../helpers/control-plane-processes.ts";
import { curl } from "../helpers/curl.ts";
import {
  agentPodWorld,
  eventuallyEqual,
  kubectlFor,
  operatorFiles,
  operatorObjects,
  prepareOperatorNamespace,
} from "../helpers/operator-kit.ts";

const POD_IP = "127.0.0.12";

describe("faults (control plane): operator and API server down, the sidecar keeps its last good policy", function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  let upstream: EchoUpstream;
  let sidecar: SidecarProcess;
  let operator: OperatorProcess | undefined;
  /** kube-apiserver as this file restarted it (the helper knows only the first one's PID). */
  let restartedApiserver: number | undefined;
  let apiserverArgv: string[] = [];
  let failed = false;
  // What before() has started, undone in reverse by after() even when before() failed midway.
  const cleanups: (() => Promise<unknown>)[] = [];
  const ns = `airlock-faults-${randomBytes(3).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "airlock-faults-"));
  const keys = generateKeyPairSync("ed25519");
  const files = operatorFiles(dir);

  const { apply } = kubectlFor(() => cp);
  const objects = operatorObjects(ns);
  const { secret, credential } = objects;
  const policy = (egress: unknown[]) => objects.policy("agent", egress);
  const rule = (name: string, host: string, extra: Record<string, unknown> = {}) => ({
    name,
    hosts: [host],
    ports: [upstream.port],
    ...extra,
  });

  /** One request through the sidecar: its status and the X-Api-Key the upstream received, if any. */
  const request = async (host: string): Promise<{ status: number; sent?: string }> => {
    const before = upstream.received.length;
    const res = await curl([
      ...["-x", sidecar.proxy, "--cacert", sidecar.caPath],
      `https://${host}:${upstream.port}/x`,
    ]);
    const sent =
      upstream.received.length > before ? upstream.received.at(-1)?.headers["x-api-key"] : undefined;
    return { status: res.status, ...(typeof sent === "string" ? { sent } : {}) };
  };
  /** Inject, allow and block, as the first policy has them. */
  const outcomes = async () => ({
    inject: await request("api.example.test"),
    allow: await request("open.example.test"),
    block: await request("closed.example.test"),
  });
  const FIRST = {
    inject: { status: 200, sent: "first-value" },
    allow: { status: 200 },
    block: { status: 403 },
  };
  const readyz = async (): Promise<number> => {
    const metrics = /metrics on (http:\/\/\S+)/.exec(sidecar.command.stderr())?.[1] ?? "";
    return (await fetch(`${metrics}/readyz`)).status;
  };
  const apiAnswers = async (): Promise<boolean> =>
    (await cp.kubectl(["get", "--raw", "/readyz", "--request-timeout=2s"])).code === 0;
  const startOperator = async (): Promise<void> => {
    operator = await startOperatorProcess([
      ...["--kubeconfig", files.operatorKubeconfig, "--signing-key", files.signingKey],
      ...["--lease-namespace", ns, "--identity", "op", "--control-port", String(sidecar.controlPort)],
      ...["--resync", "2", "--lease-seconds", "5"],
    ]);
  };

  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    cp = await startControlPlane();
    cleanups.push(async () => {
      if (restartedApiserver !== undefined) await stopPid(restartedApiserver);
      if (failed) process.stderr.write(`\n${cp.logs(60)}\n`);
      await cp.stop();
    });
    await installAirlockCrds(cp);
    await prepareOperatorNamespace(cp, ns, files, keys);
    upstream = await startEchoUpstream({ tls: true });
    cleanups.push(() => upstream.close());
    writeFileSync(files.upstreamCa, upstream.caPem);
    const world = agentPodWorld(
      cp,
      ns,
      dir,
      files,
      ["api.example.test", "open.example.test", "closed.example.test", "new.example.test"].map(
        (h) => `${h}:127.0.0.1`,
      ),
    );
    sidecar = await startAgentPod(world, "agent-0", POD_IP, files.bundleKey);
    cleanups.push(async () => {
      if (failed) process.stderr.write(`--- sidecar stdout ---\n${sidecar.command.stdout().slice(-4000)}\n`);
      await stopProcess(sidecar.command);
    });
    await startOperator();
    cleanups.push(async () => {
      if (!operator) return;
      if (failed)
        process.stderr.write(`--- operator stderr ---\n${operator.command.stderr().slice(-4000)}\n`);
      await stopProcess(operator.command, "SIGKILL");
    });
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed") failed = true;
  });
  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("a Secret, Credential and EgressPolicy applied through the API are enforced: inject, allow, block", async function () {
    await apply(secret("first-value"));
    await apply(credential());
    await apply(
      policy([rule("api", "api.example.test", { credential: "api" }), rule("open", "open.example.test")]),
    );
    await eventuallyEqual(outcomes, FIRST);
  });

  it("operator SIGKILLed and kube-apiserver killed: the same outcomes, credential included, and still ready", async function () {
    if (!operator) throw new Error("no operator");
    await stopProcess(operator.command, "SIGKILL");
    const pid = cp.pids.kubeApiserver;
    apiserverArgv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const watchFailures = (): number => sidecar.command.stdout().split("secret watch failed").length;
    const failuresBefore = watchFailures();
    process.kill(pid, "SIGKILL");
    await eventuallyEqual(async () => Promise.resolve(alive(pid)), false, 10_000);
    expect(await apiAnswers()).to.equal(false);
    expect(await outcomes()).to.deep.equal(FIRST);
    // Wait for the sidecar to have noticed (its Secret watch failed and is being retried) …
    await eventuallyEqual(async () => Promise.resolve(watchFailures() > failuresBefore), true);
    // … and look again: nothing it enforces was dropped or loosened.
    expect(await outcomes()).to.deep.equal(FIRST);
    expect(await readyz()).to.equal(200);
    expect(sidecar.command.child.exitCode).to.equal(null);
  });

  it("kube-apiserver and the operator restarted: a new policy and a rotated Secret are enforced", async function () {
    const [file, ...args] = apiserverArgv;
    if (file === undefined) throw new Error("the API server's command line was not recorded");
    const logFd = openSync(join(dirname(cp.kubeconfig), "logs/kube-apiserver.log"), "a");
    const child = spawn(file, args, { stdio: ["ignore", logFd, logFd] });
    closeSync(logFd);
    child.unref();
    restartedApiserver = child.pid;
    if (restartedApiserver !== undefined) trackPid(restartedApiserver);
    await eventuallyEqual(apiAnswers, true, 60_000);
    await startOperator();
    await apply(
      policy([rule("api", "api.example.test", { credential: "api" }), rule("new", "new.example.test")]),
    );
    await apply(secret("second-value"));
    await eventuallyEqual(
      async () => ({
        inject: await request("api.example.test"),
        closed: await request("open.example.test"),
        allowed: await request("new.example.test"),
      }),
      { inject: { status: 200, sent: "second-value" }, closed: { status: 403 }, allowed: { status: 200 } },
      // The new operator first waits out the killed one's Lease (5 s), then lists and pushes.
      40_000,
    );
  });
});
