// Gives memory back to the system when the sidecar falls quiet, through the native addon
// (sidecar/native/memory.c):
// - malloc's free pages. Under load OpenSSL and Node's sockets allocate and free megabytes, and
//   glibc keeps what was freed: fragmented, so its trim threshold (which returns memory only from
//   the top of an arena) does not, and the pages stay resident after the load is gone.
// - the file pages the process no longer touches. Starting Node maps in most of its binary's
//   start-up code and data; unmapping the clean pages lets only what the sidecar still runs come
//   back (from the page cache, on first touch).
// Once per busy spell, after a few quiet seconds: both walk large structures and block the event
// loop for several milliseconds, which only a quiet sidecar can afford. docs/benchmarks.md has the
// measurements.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Logger } from "pino";

/** The addon's call. */
export interface NativeMemory {
  /** malloc_trim(0); whether any memory went back to the system. */
  trim(): boolean;
  /**
   * Unmaps the clean page-cache pages of the read-only private file mappings (never a page the
   * process wrote); the bytes unmapped. Throws, naming the file, if /proc/self/pagemap cannot be read.
   */
  dropFilePages(): number;
}

/** Where `sidecar/native/build.sh` writes the addon (next to the sources in the image too). */
export const NATIVE_MEMORY_PATH = fileURLToPath(new URL("../native/build/memory.node", import.meta.url));

/** The addon, or why it is not there (not built, or not loadable here). */
export function loadNativeMemory(
  path: string = NATIVE_MEMORY_PATH,
): { ok: true; native: NativeMemory } | { ok: false; reason: string } {
  if (!existsSync(path))
    return { ok: false, reason: `${path} is not built (sidecar/native/build.sh; needs gcc)` };
  try {
    const native = createRequire(import.meta.url)(path) as Partial<NativeMemory>;
    for (const name of ["trim", "dropFilePages"] as const)
      if (typeof native[name] !== "function")
        return { ok: false, reason: `${path} does not export ${name}(); rebuild it` };
    return { ok: true, native: native as NativeMemory };
  } catch (err) {
    // Built for another platform, or not an addon at all.
    const first = (err as Error).message.split("\n")[0] ?? "";
    const message = first.startsWith(`${path}: `) ? first.slice(path.length + 2) : first;
    return { ok: false, reason: `${path}: ${message}; rebuild it` };
  }
}

/** A tick whose event-loop utilisation reaches this marks a busy spell. */
const BUSY_ABOVE = 0.05;
/** A tick below this is quiet (an idle sidecar's timers and scrapes stay well under it). */
const QUIET_BELOW = 0.02;

/** How often the event loop is sampled, and how long quiet must last before a release. */
export interface QuietReleaseOptions {
  /** The event loop is sampled this often; default 1,000 ms. */
  tickMs?: number;
  /** Quiet ticks in a row, after a busy spell, before a release; default 3. */
  quietTicks?: number;
}

/** A running quiet-release loop. */
export interface QuietRelease {
  /** Releases done so far. */
  readonly releases: number;
  stop(): void;
}

/**
 * Samples the event loop's utilisation every tick; after a busy tick, the first run of
 * `quietTicks` quiet ticks releases memory once. Process start counts as busy, so an idle sidecar
 * gives back what loading its modules left. The release's own time is not counted as activity.
 */
export function startQuietRelease(
  native: NativeMemory,
  log: Logger,
  options: QuietReleaseOptions = {},
): QuietRelease {
  const tickMs = options.tickMs ?? 1000;
  const quietTicks = options.quietTicks ?? 3;
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let busy = true;
  let quiet = 0;
  let releases = 0;
  // A system without a readable /proc/self/pagemap (it drops nothing then) is told once.
  let dropping = true;
  const dropFilePages = (): number => {
    if (!dropping) return 0;
    try {
      return native.dropFilePages();
    } catch (err) {
      dropping = false;
      log.debug({ reason: (err as Error).message }, "not unmapping unused file pages when quiet");
      return 0;
    }
  };
  const timer = setInterval(() => {
    const window = performance.eventLoopUtilization(last);
    // A tick right after a long one (a release, or a long task) spans too little time to judge.
    if (window.idle + window.active < tickMs / 2) return;
    last = performance.eventLoopUtilization();
    if (window.utilization >= BUSY_ABOVE) {
      busy = true;
      quiet = 0;
      return;
    }
    quiet = window.utilization < QUIET_BELOW ? quiet + 1 : 0;
    if (!busy || quiet < quietTicks) return;
    const rssBefore = process.memoryUsage.rss();
    const started = performance.now();
    native.trim();
    const fileBytesDropped = dropFilePages();
    releases++;
    busy = false;
    quiet = 0;
    last = performance.eventLoopUtilization();
    log.debug(
      {
        rssBeforeBytes: rssBefore,
        rssAfterBytes: process.memoryUsage.rss(),
        fileBytesDropped,
        ms: Math.round(performance.now() - started),
      },
      "released memory while quiet",
    );
  }, tickMs);
  timer.unref();
  return {
    get releases() {
      return releases;
    },
    stop: () => {
      clearInterval(timer);
    },
  };
}
