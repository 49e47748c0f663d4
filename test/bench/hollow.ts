// `make bench` (operator scale): convergence to 100, 500 and 1,000 sidecars. A thousand sidecar
// processes do not fit on this machine, so this process serves "hollow sidecars", as kubemark does
// for nodes: each a real control port (the sidecar's own control server and Gate, so the operator's
// TLS, signature check, generation store and ACK/NACK are the real ones) on its own 127.10.X.Y,
// for a Pod on the real API server whose status names that address. The operator is the real
// `airlock operator` process. Measured per size: a policy edit → every hollow sidecar has applied
// its new bundle (per-sidecar latency p50/p99 and the time until the last), and the operator's CPU
// and RSS. Prints a Markdown table and adds it to docs/benchmarks.md ("Operator convergence").
//
//   node test/bench/hollow.ts [--sizes 100,500,1000] [--rounds N] [--gap SECONDS] [--no-record]
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import type https from "node:https";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import pino from "pino";
import { createControlServer } from "../../sidecar/control/server.ts";
import { createAddressPolicy } from "../../sidecar/net/address.ts";
import { createSidecarMetrics } from "../../sidecar/observe/metrics.ts";
import { Gate } from "../../sidecar/proxy/gate.ts";
import { Resolver } from "../../sidecar/proxy/resolve.ts";
import { StaticSecrets } from "../../sidecar/proxy/secrets.ts";
import { STATUS_ANNOTATION } from "../../sidecar/constants.ts";
import { CertificateAuthority } from "../../sidecar/tls/ca.ts";
import { startOperatorProcess, stopProcess } from "../helpers/agent-pods.ts";
import { installAirlockCrds, startControlPlane } from "../helpers/control-plane.ts";
import { operatorFiles, prepareOperatorNamespace } from "../helpers/operator-kit.ts";
import { flag, option } from "./args.ts";
import { recordBenchmark } from "./record.ts";

const SIZES = (option("--sizes") ?? "100,500,1000").split(",").map(Number);
const ROUNDS = Number(option("--rounds") ?? 5);
/**
 * Seconds between edits (default 6): longer than the operator keeps an idle connection to a
 * sidecar (4 s), so each edit pays its TLS handshakes as a real, occasional edit would.
 */
const GAP_S = Number(option("--gap") ?? 6);
const RECORD = !flag("--no-record");
const NS = "hollow";
const CONTROL_PORT = 15443;
const TIMEOUT_MS = 120_000;
const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

/** One hollow sidecar: a real Gate and control server, and when each generation was applied. */
interface Hollow {
  pod: string;
  ip: string;
  gate: Gate;
  server: https.Server;
  appliedAt: Map<number, number>;
}

/** The address of hollow sidecar `i`: 127.10.X.Y, Y in 1..250. */
const ipOf = (i: number): string => `127.10.${String(Math.floor(i / 250))}.${String((i % 250) + 1)}`;

async function startHollow(i: number, shared: { ca: CertificateAuthority; key: KeyObject }): Promise<Hollow> {
  const silent = pino({ level: "silent" });
  const gate = new Gate({
    secrets: new StaticSecrets([]),
    resolver: new Resolver({ addressPolicy: createAddressPolicy([]) }),
    ca: shared.ca,
    metrics: createSidecarMetrics(),
    log: silent,
  });
  const hollow: Hollow = {
    pod: `agent-${String(i)}`,
    ip: ipOf(i),
    gate,
    server: undefined as never,
    appliedAt: new Map(),
  };
  const apply = gate.apply.bind(gate);
  gate.apply = (bundle, generation) => {
    const result = apply(bundle, generation);
    if (result.ok) hollow.appliedAt.set(generation, performance.now());
    return result;
  };
  const { server } = createControlServer({ gate, ca: shared.ca, publicKey: shared.key, log: silent });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(CONTROL_PORT, hollow.ip, () => {
      resolve();
    });
  });
  hollow.server = server;
  return hollow;
}

/** Runs `work` over `items`, `width` at a time. */
async function inBatches<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(work));
}

/** Creates the pods of `hollows` (marked injected) and sets each Running at its address. */
async function createPods(core: CoreV1Api, objects: KubernetesObjectApi, hollows: Hollow[]): Promise<void> {
  await inBatches(hollows, 20, async (h) => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: h.pod,
        namespace: NS,
        labels: { app: "agent" },
        annotations: { [STATUS_ANNOTATION]: "{}" },
      },
      spec: { serviceAccountName: "agent", containers: [{ name: "agent", image: "example.invalid/agent" }] },
    };
    await objects.create(pod);
    await core.patchNamespacedPodStatus(
      {
        namespace: NS,
        name: h.pod,
        body: { status: { phase: "Running", podIP: h.ip, podIPs: [{ ip: h.ip }] } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  });
}

/** Waits until every hollow sidecar has applied a generation above its `before`; returns when each did. */
async function untilApplied(hollows: Hollow[], before: Map<string, number>): Promise<number[]> {
  const started = performance.now();
  for (;;) {
    const waiting = hollows.filter((h) => h.gate.generation <= (before.get(h.pod) ?? 0));
    if (waiting.length === 0) break;
    if (performance.now() - started > TIMEOUT_MS)
      throw new Error(
        `${String(waiting.length)} hollow sidecars got no new bundle in ${String(TIMEOUT_MS)} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return hollows.map((h) => h.appliedAt.get(h.gate.generation) ?? NaN);
}

/** utime + stime of `pid` in seconds, and its VmRSS in MiB. */
function usage(pid: number): { cpu: number; rssMiB: number } {
  const stat =
    readFileSync(`/proc/${String(pid)}/stat`, "utf8")
      .split(") ")[1]
      ?.split(" ") ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, "utf8"))?.[1];
  return { cpu: ticks / 100, rssMiB: Number(rss) / 1024 };
}

const quantile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

interface Row {
  size: number;
  perSidecar: number[];
  allDone: number[];
  cpuPerEdit: number;
  rssMiB: number;
}

async function main(): Promise<void> {
  log("starting the control plane (a first run builds it; that takes minutes)");
  const cp = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), "airlock-hollow-"));
  const hollows: Hollow[] = [];
  let operatorStop: (() => Promise<void>) | undefined;
  try {
    await installAirlockCrds(cp);
    const files = operatorFiles(dir);
    await prepareOperatorNamespace(cp, NS, files, generateKeyPairSync("ed25519"));
    const key = createPublicKey(readFileSync(files.bundleKey, "utf8"));
    const shared = { ca: new CertificateAuthority(), key };
    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    const core = config.makeApiClient(CoreV1Api);
    const objects = KubernetesObjectApi.makeApiClient(config);
    const policy = (path: string) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: { name: "agent", namespace: NS },
      spec: {
        podSelector: { matchLabels: { app: "agent" } },
        egress: [{ name: "api", hosts: ["api.example.test"], ports: [443], methods: ["GET"], paths: [path] }],
      },
    });
    const write = (obj: object) =>
      objects.patch(obj, undefined, undefined, "airlock-bench", true, PatchStrategy.ServerSideApply);
    await write(policy("/v0/**"));
    const operator = await startOperatorProcess([
      ...["--kubeconfig", files.operatorKubeconfig, "--signing-key", files.signingKey],
      ...["--lease-namespace", NS, "--identity", "bench", "--control-port", String(CONTROL_PORT)],
      ...["--resync", "600"],
    ]);
    operatorStop = () => stopProcess(operator.command);
    const operatorPid = operator.command.child.pid ?? 0;
    const rows: Row[] = [];
    let version = 0;
    for (const size of SIZES) {
      const added: Hollow[] = [];
      for (let i = hollows.length; i < size; i++) added.push(await startHollow(i, shared));
      hollows.push(...added);
      const t0 = performance.now();
      await createPods(core, objects, added);
      await untilApplied(added, new Map());
      log(
        `${String(size)} hollow sidecars, the ${String(added.length)} new ones converged in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      const perSidecar: number[] = [];
      const allDone: number[] = [];
      const cpuBefore = usage(operatorPid).cpu;
      for (let r = 0; r < ROUNDS; r++) {
        await new Promise((resolve) => setTimeout(resolve, GAP_S * 1000));
        const before = new Map(hollows.map((h) => [h.pod, h.gate.generation]));
        const start = performance.now();
        await write(policy(`/v${String(++version)}/**`));
        const times = (await untilApplied(hollows, before)).map((at) => at - start);
        perSidecar.push(...times);
        allDone.push(Math.max(...times));
      }
      const cpuPerEdit = (usage(operatorPid).cpu - cpuBefore) / ROUNDS;
      rows.push({ size, perSidecar, allDone, cpuPerEdit, rssMiB: usage(operatorPid).rssMiB });
      log(
        `${String(size)}: every sidecar ACKed after p50 ${quantile(
          [...allDone].sort((a, b) => a - b),
          0.5,
        ).toFixed(0)} ms`,
      );
    }
    await report(rows, cp.version);
  } finally {
    await operatorStop?.();
    await Promise.all(hollows.map((h) => new Promise((resolve) => h.server.close(resolve))));
    await cp.stop();
  }
}

async function report(rows: Row[], kubernetes: string): Promise<void> {
  const ms = (x: number): string => x.toFixed(0);
  const table = [
    "| hollow sidecars | edits | per sidecar p50 / p99 ms | until every sidecar ACKed p50 / p99 / max ms | operator CPU per edit s | operator RSS MiB |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => {
      const per = [...r.perSidecar].sort((a, b) => a - b);
      const all = [...r.allDone].sort((a, b) => a - b);
      return `| ${r.size.toLocaleString("en")} | ${String(r.allDone.length)} | ${ms(quantile(per, 0.5))} / ${ms(quantile(per, 0.99))} | ${ms(quantile(all, 0.5))} / ${ms(quantile(all, 0.99))} / ${ms(all.at(-1) ?? NaN)} | ${r.cpuPerEdit.toFixed(2)} | ${r.rssMiB.toFixed(0)} |`;
    }),
  ].join("\n");
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const block = `Operator scale, ${new Date().toISOString().slice(0, 10)}: hollow sidecars (real control servers in one process, Pods on a real API server), one \`airlock operator\`, ${String(ROUNDS)} policy edits per size ${String(GAP_S)} s apart; nproc ${String(cpus().length)}, ${cpu}, Node ${process.version}, Kubernetes ${kubernetes}:\n\n${table}\n`;
  process.stdout.write(`${block}\n`);
  if (RECORD) await recordBenchmark("## Operator convergence", block);
}

await main();
