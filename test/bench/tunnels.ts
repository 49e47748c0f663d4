// `make bench` (idle tunnels): what 2,000 idle CONNECT tunnels cost a real `airlock run` process.
// For each mix — all passed through to an allowed TLS host, all intercepted (TLS handshake done
// with the sidecar's certificate), half of each — it starts a fresh sidecar, reads its VmRSS
// (/proc/PID/status) idle, with every tunnel open and idle, and after closing them all (once its
// descriptors are back) — in BENCH_ROUNDS rounds on the same process, to tell memory kept for
// reuse from a leak —
// and its used V8 heap while they are open, prints a Markdown table and adds it, dated, with the machine (nproc, CPU,
// Node version, load average), to the "Idle tunnels" section of docs/benchmarks.md.
//
//   BENCH_TUNNELS (default 2000) tunnels per mix; BENCH_HOLD_MS (default 5000) how long they idle;
//   BENCH_ROUNDS (default 3) open-idle-close rounds per sidecar process.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type tls from "node:tls";
import { startEchoUpstream, type EchoUpstream } from "../../sidecar/demo/echo-upstream.ts";
import { ROOT } from "../helpers/cli.ts";
import { recordBenchmark } from "./record.ts";
import {
  getOnTunnel,
  INTERCEPT_HOST,
  openFds,
  openFileLimits,
  openTunnel,
  openTunnels,
  PASS_HOST,
  rssKiB,
  startSidecarProcess,
  until,
  writeTunnelPolicy,
  type SidecarUnderLoad,
} from "../security/tunnel-load.ts";

const TUNNELS = Number(process.env.BENCH_TUNNELS ?? 2000);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECTION = "## Idle tunnels";
const DOC = join(ROOT, "docs/benchmarks.md");
/** This process holds each client socket and the upstream's end of each passthrough tunnel. */
const FDS_NEEDED = 2 * TUNNELS + 1000;
const SIDECAR_FDS = 2 * TUNNELS + 1000;

const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

/** One mix's figures, RSS in KiB; `rounds` holds each open-idle-close round. */
interface Result {
  mix: string;
  open: number;
  openSeconds: number;
  fdsOpen: number;
  idle: number;
  rounds: { peak: number; heapMiB: number; after: number }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Median of `count` VmRSS samples `every` ms apart. */
async function rssMedian(pid: number, count = 10, every = 100): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    samples.push(rssKiB(pid));
    await sleep(every);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(count / 2)] ?? NaN;
}

/** V8's used heap, from the sidecar's own /metrics (prom-client's process metrics). */
async function heapUsedMiB(metricsUrl: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("nodejs_heap_size_used_bytes "));
  return Number(line?.split(" ")[1] ?? NaN) / 2 ** 20;
}

/** Opens the tunnels, lets them idle HOLD_MS, closes them: the largest RSS, heap, RSS after. */
async function round(
  sidecar: SidecarUnderLoad,
  counts: { pass: number; intercepted: number },
  opens: { pass: () => Promise<tls.TLSSocket>; intercepted: () => Promise<tls.TLSSocket> },
  baseFds: number,
): Promise<{ peak: number; heapMiB: number; after: number; openSeconds: number; fdsOpen: number }> {
  let tunnels: tls.TLSSocket[] = [];
  try {
    const t0 = performance.now();
    tunnels = [
      ...(await openTunnels(counts.pass, 50, opens.pass)),
      ...(await openTunnels(counts.intercepted, 50, opens.intercepted)),
    ];
    const openSeconds = (performance.now() - t0) / 1000;
    const fdsOpen = openFds(sidecar.pid) - baseFds;
    let peak = 0;
    for (const end = Date.now() + HOLD_MS; Date.now() < end; await sleep(250))
      peak = Math.max(peak, rssKiB(sidecar.pid));
    const heapMiB = await heapUsedMiB(sidecar.metricsUrl);
    const closed = tunnels.filter((t) => t.destroyed).length;
    if (closed > 0) throw new Error(`${closed} tunnels closed while idle`);
    for (const t of tunnels) t.destroy();
    tunnels = [];
    await until("the sidecar's descriptors back to idle", () => openFds(sidecar.pid) <= baseFds + 5, 30_000);
    return { peak, heapMiB, after: await rssMedian(sidecar.pid, 20), openSeconds, fdsOpen };
  } finally {
    for (const t of tunnels) t.destroy();
  }
}

async function measure(
  mix: string,
  counts: { pass: number; intercepted: number },
  upstream: EchoUpstream,
  dir: string,
): Promise<Result> {
  const caFile = join(dir, "upstream-ca.pem");
  writeFileSync(caFile, upstream.caPem);
  const sidecar = await startSidecarProcess({
    dir,
    policy: writeTunnelPolicy(dir, upstream.port),
    upstreamCaFile: caFile,
    fdLimit: Math.min(openFileLimits().hard, SIDECAR_FDS),
  });
  const opens = {
    pass: () => openTunnel(sidecar.proxyPort, PASS_HOST, upstream.port, upstream.caPem),
    intercepted: () => openTunnel(sidecar.proxyPort, INTERCEPT_HOST, upstream.port, sidecar.caPem),
  };
  try {
    // Warm up both paths (code loaded, the leaf certificate issued) before the idle figure.
    await getOnTunnel(await opens.pass(), PASS_HOST, upstream.port, "/warm");
    await getOnTunnel(await opens.intercepted(), INTERCEPT_HOST, upstream.port, "/warm");
    const baseFds = openFds(sidecar.pid);
    const idle = await rssMedian(sidecar.pid);
    // Rounds on the same process: memory that is reused, not leaked, levels off.
    const rounds: Awaited<ReturnType<typeof round>>[] = [];
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round(sidecar, counts, opens, baseFds));
    log(`${mix}: idle ${idle} KiB; rounds ${JSON.stringify(rounds)}`);
    const [first] = rounds;
    if (!first) throw new Error("BENCH_ROUNDS must be at least 1");
    const total = counts.pass + counts.intercepted;
    return { mix, open: total, openSeconds: first.openSeconds, fdsOpen: first.fdsOpen, idle, rounds };
  } finally {
    await sidecar.stop();
  }
}

function table(results: Result[]): string {
  const mib = (kib: number | undefined) => ((kib ?? NaN) / 1024).toFixed(0);
  const rows = results.map((r) => {
    const first = r.rounds[0];
    return (
      `| ${r.mix} | ${r.openSeconds.toFixed(1)} | ${r.fdsOpen} | ${mib(r.idle)} | ` +
      `${r.rounds.map((x) => mib(x.peak)).join(" / ")} | ` +
      `${(((first?.peak ?? NaN) - r.idle) / r.open).toFixed(0)} | ${(first?.heapMiB ?? NaN).toFixed(0)} | ` +
      `${r.rounds.map((x) => mib(x.after)).join(" / ")} |`
    );
  });
  return [
    "| tunnels | s to open | sidecar fds | idle MiB | open MiB, each round | KiB per tunnel | heap used MiB | after close MiB, each round |",
    "| ------- | --------- | ----------- | -------- | -------------------- | -------------- | ------------- | --------------------------- |",
    ...rows,
  ].join("\n");
}

/** Re-runs this script with `ulimit -n` raised when the current soft limit is too low. */
function ensureFdLimit(): boolean {
  const { soft, hard } = openFileLimits();
  if (soft >= FDS_NEEDED) return false;
  if (hard < FDS_NEEDED || process.env.AIRLOCK_BENCH_REEXEC === "1")
    throw new Error(`${FDS_NEEDED} open files needed, ulimit -n allows ${soft} (hard ${hard})`);
  log(`raising ulimit -n from ${soft} to ${hard}`);
  const res = spawnSync(
    "bash",
    ["-c", `ulimit -n ${hard} && exec "$0" "$1"`, process.execPath, process.argv[1] ?? ""],
    {
      stdio: "inherit",
      env: { ...process.env, AIRLOCK_BENCH_REEXEC: "1" },
    },
  );
  process.exitCode = res.status ?? 1;
  return true;
}

async function main(): Promise<void> {
  if (ensureFdLimit()) return;
  const load = loadavg()[0] ?? 0;
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-tunnels-"));
  const upstream = await startEchoUpstream({ tls: true });
  const results: Result[] = [];
  try {
    const half = Math.floor(TUNNELS / 2);
    for (const [mix, counts] of [
      [`${TUNNELS} passthrough`, { pass: TUNNELS, intercepted: 0 }],
      [`${TUNNELS} intercepted`, { pass: 0, intercepted: TUNNELS }],
      [`${half} + ${TUNNELS - half} mixed`, { pass: half, intercepted: TUNNELS - half }],
    ] as const) {
      log(`${mix}: opening`);
      results.push(await measure(mix, counts, upstream, dir));
    }
  } finally {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  const nproc = spawnSync("nproc", { encoding: "utf8" }).stdout.trim();
  const heading =
    `Idle tunnels, ${new Date().toISOString().slice(0, 10)}: nproc ${nproc}, ${cpu}, Node ${process.version}, ` +
    `held ${HOLD_MS / 1000} s, ${ROUNDS} rounds, load average ${load.toFixed(1)} at the start:`;
  const block = `${heading}\n\n${table(results)}\n`;
  process.stdout.write(`${block}\n`);
  await recordBenchmark(SECTION, block);
  log(`added to ${DOC}`);
}

await main();
