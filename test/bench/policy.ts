// `make bench` (policy scale): what the pure policy core costs at 10, 1,000 and 10,000 rules —
// compile (manifests → CompiledPolicy, hashed), load (the bundle as the sidecar receives it, JSON,
// → PolicyIndex), decide() per request, decideTunnel() per CONNECT, and the heap an index of
// 10,000 rules holds. Rules are spread over policies of 250 (the per-policy limit is 256); a
// quarter name a wildcard host, a quarter constrain paths and methods, one in eight injects a
// credential. Requests cycle through exact hits, wildcard hits, path misses and unknown hosts.
//
//   node --expose-gc test/bench/policy.ts [--no-record]
//
// Prints a Markdown table and adds it, dated with the machine, to the "Policy scale" part of the
// "Data path throughput" section of docs/benchmarks.md (test/bench/proxy.ts writes the rest).
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { compile, decide, decideTunnel, load } from "../../sidecar/policy/index.ts";
import type { RequestFacts } from "../../sidecar/policy/types.ts";
import { recordBenchmark } from "./record.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // Re-run with the collector exposed, so that heap figures are of live objects only.
  const res = spawnSync(
    process.execPath,
    ["--expose-gc", ...process.execArgv, process.argv[1] ?? "", ...process.argv.slice(2)],
    {
      stdio: "inherit",
    },
  );
  process.exit(res.status ?? 1);
}
const collect = (): void => {
  gc();
  gc();
};

const RECORD = !process.argv.includes("--no-record");
const SECTION = "## Data path throughput";
const PER_POLICY = 250;

function manifests(rules: number): { policies: unknown[]; credentials: unknown[] } {
  const policies: unknown[] = [];
  const credentials: unknown[] = [];
  for (let p = 0; p * PER_POLICY < rules; p++) {
    const egress: unknown[] = [];
    for (let r = p * PER_POLICY; r < Math.min(rules, (p + 1) * PER_POLICY); r++) {
      const rule: Record<string, unknown> = {
        name: `r${r}`,
        hosts: r % 4 === 1 ? [`*.team${r}.example.com`] : [`svc${r}.example.com`, `alt${r}.example.net`],
        ports: [443],
      };
      if (r % 4 === 2) {
        rule.paths = [`/v1/items/${r}/*`, "/v2/**"];
        rule.methods = ["GET", "POST"];
      }
      if (r % 8 === 3) {
        rule.credential = `c${r}`;
        credentials.push({
          apiVersion: "airlock.dev/v1alpha1",
          kind: "Credential",
          metadata: { name: `c${r}`, namespace: `ns${p}` },
          spec: {
            secretRef: { name: `c${r}`, key: "token" },
            injection: { header: { name: "Authorization", valuePrefix: "Bearer " } },
          },
        });
      }
      egress.push(rule);
    }
    policies.push({
      apiVersion: "airlock.dev/v1alpha1",
      kind: "EgressPolicy",
      metadata: { name: `p${p}`, namespace: `ns${p}` },
      spec: { podSelector: {}, egress },
    });
  }
  return { policies, credentials };
}

/** Requests that hit exact hosts, wildcards, miss on path, and name unknown hosts. */
function requests(rules: number): RequestFacts[] {
  const out: RequestFacts[] = [];
  const base = { scheme: "https", port: 443, method: "GET", entry: "connect" } as const;
  for (let i = 0; i < 1024; i++) {
    const r = (i * 7919) % rules;
    const kind = i % 4;
    const host =
      kind === 3
        ? `unknown${i}.example.org`
        : r % 4 === 1
          ? `api.eu.team${r}.example.com`
          : r % 2 === 0
            ? `svc${r}.example.com`
            : `alt${r}.example.net`;
    const path = r % 4 === 2 ? (kind === 2 ? "/v3/nothing" : `/v1/items/${r}/detail`) : `/anything/${i}`;
    out.push({ ...base, host, path });
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

function median(xs: number[]): number {
  return quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

/** Per-call times (ns, the timer's own ~tens of ns included) and the batched mean (ns/op). */
function timeCalls(calls: (() => unknown)[], rounds: number): { p50: number; p99: number; mean: number } {
  let sink = 0;
  // Warm-up long enough for the optimizing compilers to settle on this index (each row is a new one).
  for (let i = 0; i < 200_000; i++) sink += calls[i % calls.length]?.() === undefined ? 0 : 1;
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const call = calls[i % calls.length] as () => unknown;
    const t0 = process.hrtime.bigint();
    const result = call();
    const t1 = process.hrtime.bigint();
    if (result !== undefined) sink++;
    samples.push(Number(t1 - t0));
  }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) if ((calls[i % calls.length] as () => unknown)() !== undefined) sink++;
  const mean = Number(process.hrtime.bigint() - t0) / rounds;
  if (sink < 0) throw new Error("unreachable");
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), mean };
}

interface Row {
  rules: number;
  compileMs: number;
  loadMs: number;
  bundleKiB: number;
  decide: { p50: number; p99: number; mean: number };
  tunnel: { p50: number; p99: number; mean: number };
  heapMiB: number;
}

function measure(rules: number): Row {
  const input = manifests(rules);
  const compileTimes: number[] = [];
  const loadTimes: number[] = [];
  let bundleText = "";
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const compiled = compile(input);
    compileTimes.push(performance.now() - t0);
    if (!compiled.ok) throw new Error(`compile failed: ${JSON.stringify(compiled.errors.slice(0, 3))}`);
    bundleText = JSON.stringify(compiled.value);
    const bundle: unknown = JSON.parse(bundleText);
    const t1 = performance.now();
    const loaded = load(bundle);
    loadTimes.push(performance.now() - t1);
    if (!loaded.ok) throw new Error(`load failed: ${JSON.stringify(loaded.errors.slice(0, 3))}`);
  }
  // The heap one index holds: load it again with nothing else kept, measured after full GCs.
  const bundle: unknown = JSON.parse(bundleText);
  collect();
  const before = process.memoryUsage().heapUsed;
  const held = load(bundle);
  collect();
  const heapMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  if (!held.ok) throw new Error("load failed");
  const live = held.value;
  const facts = requests(rules);
  const decideCalls = facts.map((f) => () => decide(live, f));
  const tunnelCalls = facts.map(
    (f) => () => decideTunnel(live, { host: f.host, port: f.port, entry: "connect" }),
  );
  return {
    rules,
    compileMs: median(compileTimes),
    loadMs: median(loadTimes),
    bundleKiB: Buffer.byteLength(bundleText) / 1024,
    decide: timeCalls(decideCalls, 200_000),
    tunnel: timeCalls(tunnelCalls, 200_000),
    heapMiB,
  };
}

function table(rows: Row[]): string {
  const ns = (x: number): string => x.toFixed(0);
  return [
    "| rules | compile ms | load ms | bundle KiB | decide p50 / p99 ns | decide mean ns | decideTunnel p50 / p99 ns | index heap MiB |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.rules.toLocaleString("en")} | ${r.compileMs.toFixed(1)} | ${r.loadMs.toFixed(1)} | ${r.bundleKiB.toFixed(0)} | ` +
        `${ns(r.decide.p50)} / ${ns(r.decide.p99)} | ${ns(r.decide.mean)} | ${ns(r.tunnel.p50)} / ${ns(r.tunnel.p99)} | ${r.heapMiB.toFixed(1)} |`,
    ),
  ].join("\n");
}

// A fresh process's first measurement pays for its own start (the optimizing compilers, the heap
// growing): one round of 10 rules is run first and thrown away, or its p99 would be that.
measure(10);
const rows = [10, 1000, 10_000].map(measure);
const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
const nproc = spawnSync("nproc", ["--all"], { encoding: "utf8" }).stdout.trim();
const block =
  `Policy scale, ${new Date().toISOString().slice(0, 10)}: nproc ${nproc}, ${cpu}, Node ${process.version}; ` +
  `compile and load: median of 5; decide: 200,000 calls over 1,024 requests (per-call p50 / p99 include ` +
  `the timer's own cost, the mean is of back-to-back calls):\n\n${table(rows)}\n`;
process.stdout.write(`${block}\n`);
if (RECORD) await recordBenchmark(SECTION, block);
