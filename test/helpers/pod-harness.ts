// The pod harness the netns tests share (DESIGN.md §8): a pod world (netns.ts) with what each
// of those tests starts in it — the world's upstream and resolver, `airlock init` applied in the
// pod, the sidecar as UID 15000 — and their teardown, in reverse, even when setup failed midway.
// Also the child-process runner those tests use for agent commands (UID 1000) and the world's
// JSON records.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { chownSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AIRLOCK } from "./cli.ts";
import {
  background,
  createPodWorld,
  NODE,
  requireNetnsPrerequisites,
  scratchFile,
  type Background,
  type PodWorld,
} from "./netns.ts";

/** The UID agent commands run as. */
export const AGENT_UID = 1000;
/** The UID the sidecar runs as (exempt from `airlock init`'s capture rules). */
export const SIDECAR_UID = 15000;
/** The PATH every command of these tests gets (nothing is inherited from the test process). */
export const TEST_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/** How a finished command ended and what it printed. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** How runExact decodes output and treats a missing program. */
export interface RunOptions {
  timeoutMs?: number;
  encoding?: BufferEncoding;
  maxBuffer?: number;
  /** Reject (naming the program to install) when it is not found, instead of resolving code 1. */
  rejectMissing?: boolean;
}

/** Runs `args` with exactly `env` (nothing inherited); resolves with its exit code and output. */
export function runExact(
  args: string[],
  env: Record<string, string>,
  options: RunOptions = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      args[0] ?? "",
      args.slice(1),
      {
        encoding: options.encoding ?? "utf8",
        timeout: options.timeoutMs ?? 15_000,
        ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer }),
        env,
      },
      (err, stdout, stderr) => {
        if (options.rejectMissing === true && err && (err as NodeJS.ErrnoException).code === "ENOENT") {
          reject(new Error(`${args[0] ?? ""} is not installed: apt-get install it (see .ci/run)`));
          return;
        }
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs `args` with PATH, HOME=/tmp and `env`; resolves with its exit code and output. */
export function run(args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<Run> {
  return runExact(args, { PATH: TEST_PATH, HOME: "/tmp", ...env }, { timeoutMs });
}

/** The JSON records a world process printed, one a line, without its "ready" line. */
export function worldRecords<T>(process: Background): T[] {
  return process
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{") && !l.includes('"ready"'))
    .map((l) => JSON.parse(l) as T);
}

/** What the sidecar is started with besides its policy and trust bundle (in this order). */
export interface SidecarFlags {
  policy: string;
  upstreamCa?: string;
  /** `NAME:IP` pins (--resolve). */
  resolve?: string[];
  /** CIDRs (--allow-address). */
  allow: string[];
  /** A command the sidecar is exec'd through (e.g. a shell setting its umask). */
  wrapper?: string[];
}

/**
 * A pod world and everything started in it, torn down in reverse by teardown(). Make one per
 * describe(), create() it in before() and teardown() it in after() (safe when before() failed).
 */
export class PodHarness {
  #pw: PodWorld | undefined;
  readonly #cleanups: (() => unknown)[] = [];

  /** The pod world; throws before create(). */
  get pw(): PodWorld {
    if (this.#pw === undefined) throw new Error("the pod world is not created yet (PodHarness.create)");
    return this.#pw;
  }

  /** Checks `tools` (and root), then creates the pod world with `upstreamIps` in the world. */
  create(tools: string[], upstreamIps: string[]): PodWorld {
    requireNetnsPrerequisites(tools);
    const pw = createPodWorld(upstreamIps);
    this.#pw = pw;
    this.defer(() => {
      pw.destroy();
    });
    return pw;
  }

  /** Runs `cleanup` at teardown, before everything deferred earlier. */
  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  /** Starts `args` in the background (see netns.ts background) and stops it at teardown. */
  async start(args: string[], ready?: RegExp): Promise<Background> {
    const started = await background(args, ready);
    this.defer(() => started.stop());
    return started;
  }

  /** Starts test/fixtures/world-upstream.ts in the world with `args`; returns it and its CA (PEM). */
  async startWorldUpstream(args: string[]): Promise<{ upstream: Background; ca: string }> {
    const upstream = await this.start(
      this.pw.inWorld([NODE, join(import.meta.dirname, "../fixtures/world-upstream.ts"), ...args]),
      /"ready":true/,
    );
    const ready = upstream
      .output()
      .split("\n")
      .find((l) => l.includes('"ready"'));
    return { upstream, ca: (JSON.parse(ready ?? "{}") as { ca: string }).ca };
  }

  /**
   * Starts dnsmasq in the world on `listen`, authoritative for each `[name, ip]` of `addresses`; with
   * `log`, every query goes to dnsmasq.log in the scratch folder (read it with dnsLog()).
   */
  async startDnsmasq(listen: string, addresses: [string, string][], log = true): Promise<Background> {
    return this.start(
      this.pw.inWorld([
        ...["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces"],
        `--listen-address=${listen}`,
        "--user=root",
        `--pid-file=${join(this.pw.dir, "dnsmasq.pid")}`,
        ...(log ? ["--log-queries", `--log-facility=${join(this.pw.dir, "dnsmasq.log")}`] : []),
        // Authoritative records, as a cluster's resolver has them: AAAA of a name with only an A
        // record answers NODATA (--address=/name/ip would answer REFUSED, without a resolver behind).
        ...addresses.flatMap(([name, ip]) => [`--host-record=${name},${ip}`, `--local=/${name}/`]),
      ]),
    );
  }

  /** The world resolver's query log so far. */
  dnsLog(): string {
    return readFileSync(join(this.pw.dir, "dnsmasq.log"), "utf8");
  }

  /** The sidecar's trust-bundle folder (in the scratch folder). */
  get trustDir(): string {
    return join(this.pw.dir, "trust");
  }

  /** The bundle the sidecar writes there. */
  get trustBundle(): string {
    return join(this.trustDir, "ca-bundle.pem");
  }

  /** Creates trustDir with `mode`, owned by the sidecar's UID. */
  makeTrustDir(mode = 0o755): void {
    mkdirSync(this.trustDir, { mode });
    chownSync(this.trustDir, SIDECAR_UID, SIDECAR_UID);
  }

  /** Applies `airlock init` in the pod; fails the test unless it exits 0. */
  async init(): Promise<void> {
    const init = await run(this.pw.inPod([AIRLOCK, "init"]));
    expect(init.code, `airlock init failed:\n${init.stderr}`).to.equal(0);
  }

  /** The sidecar's command line: as UID 15000 in the pod, metrics on 127.0.0.1:15090. */
  sidecarArgs(flags: SidecarFlags): string[] {
    return this.pw.asUser(SIDECAR_UID, [
      ...(flags.wrapper ?? []),
      ...[AIRLOCK, "sidecar", "--policy", flags.policy, "--trust-bundle", this.trustBundle],
      ...(flags.upstreamCa === undefined ? [] : ["--upstream-ca", flags.upstreamCa]),
      ...(flags.resolve ?? []).flatMap((pin) => ["--resolve", pin]),
      ...flags.allow.flatMap((cidr) => ["--allow-address", cidr]),
      ...["--metrics", "127.0.0.1:15090"],
    ]);
  }

  /** Writes what an agent trusts: the bundle the sidecar wrote plus `extraPem`; returns its path. */
  agentBundle(extraPem: string): string {
    return scratchFile(this.pw, "agent-bundle.pem", readFileSync(this.trustBundle, "utf8") + extraPem);
  }

  /** Runs every deferred cleanup, the latest first. */
  async teardown(): Promise<void> {
    for (const cleanup of this.#cleanups.reverse()) await cleanup();
  }
}
