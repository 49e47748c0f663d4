// `make bench` (convergence): how long a change made through the API takes to be true on every
// sidecar it concerns, measured from just before the API write to the moment the last sidecar
// reports it, with the same real processes as the tests: etcd + kube-apiserver, one
// `airlock operator` (least-privilege token, long resync so watches do the work) and an
// `airlock sidecar` per pod on its own 127.0.0.N. Prints a Markdown table (docs/benchmarks.md).
//
//   BENCH_ROUNDS (default 15) changes per scenario; BENCH_PODS (default 4) pods.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { fetch, ProxyAgent } from "undici";
import { startEchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import {
  startAgentPod,
  startOperatorProcess,
  stopProcess,
  type SidecarProcess,
} from "../helpers/agent-pods.ts";
import { installAirlockCrds, startControlPlane } from "../helpers/control-plane.ts";
import { agentPodWorld, operatorFiles, prepareOperatorNamespace } from "../helpers/operator-kit.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const PODS = Number(process.env.BENCH_PODS ?? 4);
const NS = "bench";
const POLL_TIMEOUT_MS = 30_000;

function controlStatus(s: SidecarProcess): Promise<{ generation: number; hash: string | null }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: s.ip, port: s.controlPort, path: "/v1/status", rejectUnauthorized: false, agent: false },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("utf8")));
        res.on("end", () => {
          try {
            resolve(JSON.parse(body) as { generation: number; hash: string | null });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on("error", reject);
  });
}

/** Milliseconds from `t0` until every sidecar in `targets` runs a generation newer than `before`. */
async function untilNewBundles(
  targets: SidecarProcess[],
  before: Map<string, number>,
  t0: number,
): Promise<number> {
  const waiting = new Set(targets);
  for (;;) {
    for (const s of [...waiting])
      if ((await controlStatus(s)).generation > (before.get(s.pod) ?? 0)) waiting.delete(s);
    const now = performance.now();
    if (waiting.size === 0) return now - t0;
    if (now - t0 > POLL_TIMEOUT_MS)
      throw new Error(
        `no new bundle on ${[...waiting].map((s) => s.pod).join(", ")} after ${POLL_TIMEOUT_MS} ms`,
      );
  }
}

async function generations(targets: SidecarProcess[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of targets) out.set(s.pod, (await controlStatus(s)).generation);
  return out;
}

function summary(name: string, what: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  const f = (v: number) => v.toFixed(0);
  return `| ${name} | ${what} | ${String(ms.length)} | ${f(at(0.5))} | ${f(at(0.95))} | ${f(sorted.at(-1) ?? NaN)} |`;
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  log("starting the control plane (a first run builds it; that takes minutes)");
  const cp = await startControlPlane();
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-"));
  const upstream = await startEchoUpstream({ tls: true });
  const sidecars: SidecarProcess[] = [];
  let operatorStop: (() => Promise<void>) | undefined;
  try {
    await installAirlockCrds(cp);
    const files = operatorFiles(dir);
    await prepareOperatorNamespace(cp, NS, files, generateKeyPairSync("ed25519"));
    writeFileSync(files.upstreamCa, upstream.caPem);
    const world = agentPodWorld(cp, NS, dir, files, ["api.example.test:127.0.0.1"]);
    for (let i = 0; i < PODS; i++)
      sidecars.push(
        await startAgentPod(world, `agent-${String(i)}`, `127.0.0.${String(30 + i)}`, files.bundleKey),
      );
    const operator = await startOperatorProcess([
      ...["--kubeconfig", files.operatorKubeconfig, "--signing-key", files.signingKey],
      ...["--lease-namespace", NS, "--identity", "bench", "--control-port", String(world.controlPort)],
      ...["--resync", "600"],
    ]);
    operatorStop = () => stopProcess(operator.command);

    const config = new KubeConfig();
    config.loadFromFile(cp.kubeconfig);
    const api = KubernetesObjectApi.makeApiClient(config);
    // Plain objects as kubectl would send them; client-node types them as its model classes.
    const write = (obj: object) =>
      api.patch(obj, undefined, undefined, "airlock-bench", true, PatchStrategy.ServerSideApply);
    const meta = (name: string) => ({ name, namespace: NS });
    const policy = (paths: string[]) => ({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: meta("agent"),
      spec: {
        podSelector: { matchLabels: { app: "agent" } },
        egress: [
          { name: "api", hosts: ["api.example.test"], ports: [upstream.port], paths, credential: "api" },
        ],
      },
    });
    const secret = (value: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: meta("api-token"),
      stringData: { token: value },
    });
    await write(secret("value-0"));
    await write({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "Credential",
      metadata: meta("api"),
      spec: { secretRef: { name: "api-token", key: "token" }, injection: { header: { name: "X-Api-Key" } } },
    });
    let t0 = performance.now();
    let before = await generations(sidecars);
    await write(policy(["/**"]));
    await untilNewBundles(sidecars, before, t0);

    const dispatchers = new Map(
      sidecars.map((s) => [
        s.pod,
        new ProxyAgent({ uri: s.proxy, requestTls: { ca: [readFileSync(s.caPath, "utf8")] } }),
      ]),
    );
    /** Milliseconds from t0 until a request through every sidecar carries `value`. */
    const untilSent = async (value: string, start: number): Promise<number> => {
      for (const s of sidecars) {
        for (;;) {
          const n = upstream.received.length;
          try {
            const res = await fetch(`https://api.example.test:${String(upstream.port)}/v1/x`, {
              dispatcher: dispatchers.get(s.pod),
            });
            await res.arrayBuffer();
          } catch {
            // Refused (e.g. the policy has not arrived yet): ask again.
          }
          if (upstream.received.length > n && upstream.received.at(-1)?.headers["x-api-key"] === value) break;
          if (performance.now() - start > POLL_TIMEOUT_MS) throw new Error(`${s.pod} never sent ${value}`);
        }
      }
      return performance.now() - start;
    };
    await untilSent("value-0", performance.now());

    const results: Record<string, number[]> = { edit: [], relabel: [], delete: [], create: [], rotate: [] };
    log(`${String(PODS)} sidecars, ${String(ROUNDS)} rounds per scenario`);
    for (let r = 1; r <= ROUNDS; r++) {
      // Edit the policy: every selected sidecar gets a new bundle.
      before = await generations(sidecars);
      t0 = performance.now();
      await write(policy(r % 2 === 0 ? ["/**"] : ["/v1/**"]));
      results.edit?.push(await untilNewBundles(sidecars, before, t0));

      // Relabel one pod out of the policy and back: its sidecar alone gets a new bundle each time.
      const one = sidecars.slice(0, 1);
      for (const app of ["idle", "agent"]) {
        before = await generations(one);
        t0 = performance.now();
        await write({ apiVersion: "v1", kind: "Pod", metadata: { ...meta("agent-0"), labels: { app } } });
        results.relabel?.push(await untilNewBundles(one, before, t0));
      }

      // Delete the policy (every sidecar gets the empty bundle), then create it again.
      before = await generations(sidecars);
      t0 = performance.now();
      await api.delete(policy([]));
      results.delete?.push(await untilNewBundles(sidecars, before, t0));
      before = await generations(sidecars);
      t0 = performance.now();
      await write(policy(r % 2 === 0 ? ["/**"] : ["/v1/**"]));
      results.create?.push(await untilNewBundles(sidecars, before, t0));

      // Rotate the Secret: the next request through every sidecar carries the new value.
      t0 = performance.now();
      await write(secret(`value-${String(r)}`));
      results.rotate?.push(await untilSent(`value-${String(r)}`, t0));
    }
    for (const d of dispatchers.values()) await d.close();

    const metrics = await (await globalThis.fetch(`${operator.metrics}/metrics`)).text();
    const value = (series: string) =>
      Number(
        metrics
          .split("\n")
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1) ?? NaN,
      );
    const count = value("airlock_operator_convergence_seconds_count");
    const mean = (value("airlock_operator_convergence_seconds_sum") / count) * 1000;

    const cpu = cpus()[0]?.model ?? "unknown CPU";
    const out = [
      `Convergence, ${String(PODS)} sidecars, ${String(ROUNDS)} rounds (relabel: ${String(2 * ROUNDS)}), Node ${process.version}, ${String(cpus().length)} × ${cpu}, Kubernetes ${cp.version}:`,
      "",
      "| change | until | n | p50 ms | p95 ms | max ms |",
      "| --- | --- | --- | --- | --- | --- |",
      summary("edit EgressPolicy", "every sidecar ACKed its new bundle", results.edit ?? []),
      summary("relabel one pod", "its sidecar ACKed its new bundle", results.relabel ?? []),
      summary("delete EgressPolicy", "every sidecar ACKed the empty bundle", results.delete ?? []),
      summary("create EgressPolicy", "every sidecar ACKed its new bundle", results.create ?? []),
      summary("rotate Secret", "a request through every sidecar carried the new value", results.rotate ?? []),
      "",
      `The operator's own airlock_operator_convergence_seconds: ${String(count)} changes, mean ${mean.toFixed(0)} ms.`,
    ];
    process.stdout.write(out.join("\n") + "\n");
  } finally {
    await operatorStop?.();
    await Promise.all(sidecars.map((s) => stopProcess(s.command)));
    await upstream.close();
    await cp.stop();
  }
}

await main();
