import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { loadNativeMemory, NATIVE_MEMORY_PATH, startQuietRelease, type NativeMemory } from "./memory.ts";

const silent = pino({ level: "silent" });

/** Runs `script` (an ES module) in a fresh Node with the addon's path in ADDON; returns its JSON. */
function inChild(script: string): Record<string, number> {
  const res = spawnSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, ADDON: NATIVE_MEMORY_PATH, MALLOC_ARENA_MAX: "2" },
  });
  expect(res.status, res.stderr).to.equal(0);
  return JSON.parse(res.stdout) as Record<string, number>;
}

/** Snippet for inChild scripts: kib(FIELD) of /proc/self/status, and rss() in MiB. */
const statusReaders = `
  const kib = (field) => Number(new RegExp("^" + field + ":\\\\s+(\\\\d+)", "m").exec(readFileSync("/proc/self/status", "utf8"))[1]);
  const rss = () => kib("VmRSS") / 1024;`;

describe("memory: the native addon", function () {
  before(function () {
    if (!existsSync(NATIVE_MEMORY_PATH))
      throw new Error(
        `${NATIVE_MEMORY_PATH} is not built: run make install (sidecar/native/build.sh needs gcc: apt-get install gcc)`,
      );
  });

  it("loads for this Node", function () {
    const loaded = loadNativeMemory();
    expect(loaded.ok, loaded.ok ? "" : loaded.reason).to.equal(true);
  });

  it("a missing or foreign addon is reported with the path and what to do, not thrown", function () {
    const missing = loadNativeMemory("/nonexistent/memory.node");
    expect(missing).to.deep.equal({
      ok: false,
      reason: "/nonexistent/memory.node is not built (sidecar/native/build.sh; needs gcc)",
    });
    // A file that is not an addon for this Node: the loader's first line, and "rebuild it".
    const foreignPath = join(mkdtempSync(join(tmpdir(), "airlock-memory-")), "memory.node");
    writeFileSync(foreignPath, "not an ELF object, ".repeat(100));
    const foreign = loadNativeMemory(foreignPath);
    expect(foreign.ok).to.equal(false);
    if (!foreign.ok) expect(foreign.reason).to.equal(`${foreignPath}: invalid ELF header; rebuild it`);
    // An addon from before dropFilePages() (a build left from an older checkout).
    const olderPath = join(mkdtempSync(join(tmpdir(), "airlock-memory-")), "older.cjs");
    writeFileSync(olderPath, "module.exports = { trim: () => true };\n");
    expect(loadNativeMemory(olderPath)).to.deep.equal({
      ok: false,
      reason: `${olderPath} does not export dropFilePages(); rebuild it`,
    });
  });

  it("trim() gives back malloc's free pages that glibc's own trimming keeps (fragmented)", function () {
    // 4,000 malloc'd 24 KiB blocks, one in eight kept: the freed ones lie between live blocks, so
    // no free reaches the top of the arena. ArrayBuffers of Buffer.allocUnsafeSlow are malloc'd.
    const out = inChild(`
      import { createRequire } from "node:module";
      import { readFileSync } from "node:fs";
      ${statusReaders}
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      let blocks = [];
      for (let i = 0; i < 4000; i++) blocks.push(Buffer.allocUnsafeSlow(24 * 1024).fill(1));
      const kept = blocks.filter((_, i) => i % 8 === 0);
      blocks = null;
      gc();
      await new Promise((r) => setTimeout(r, 100));
      const before = rss();
      const trimmed = addon.trim();
      console.log(JSON.stringify({ before, after: rss(), trimmed: trimmed ? 1 : 0, kept: kept.length }));
    `);
    expect(out["trimmed"]).to.equal(1);
    // About 82 MiB were freed; the kernel must see most of it go.
    expect((out["before"] ?? 0) - (out["after"] ?? 0)).to.be.above(40);
  });

  it("dropFilePages() unmaps the clean file pages and keeps every page the process wrote", function () {
    // Node's binary has pages it wrote in read-only file mappings: RELRO (the GOT, relocated at
    // start, then protected). Dropping one would lose the relocation and crash the next call
    // through it; the pages must stay, and the process keep working (its code mapped back in).
    const out = inChild(`
      import { createRequire } from "node:module";
      import { readFileSync } from "node:fs";
      ${statusReaders}
      // KiB of written (anonymous) pages in the read-only private file mappings.
      const written = () => {
        let sum = 0, inside = false;
        for (const line of readFileSync("/proc/self/smaps", "utf8").split("\\n")) {
          const head = /^[0-9a-f]+-[0-9a-f]+ (\\S+) \\S+ \\S+ (\\d+)/.exec(line);
          if (head) inside = head[2] !== "0" && head[1][1] === "-" && head[1][3] === "p";
          else if (inside && line.startsWith("Anonymous:")) sum += Number(line.split(/\\s+/)[1]);
        }
        return sum;
      };
      const addon = createRequire(import.meta.url)(process.env.ADDON);
      const fileBefore = kib("RssFile"), writtenBefore = written();
      const dropped = addon.dropFilePages();
      const fileAfter = kib("RssFile"), writtenAfter = written();
      // Work that runs code and reads data from the binary again.
      const zlib = await import("node:zlib");
      const { createHash } = await import("node:crypto");
      const text = "airlock ".repeat(10000);
      const roundTrip = zlib.gunzipSync(zlib.gzipSync(text)).toString() === text ? 1 : 0;
      const hash = createHash("sha256").update("abc").digest("hex");
      const hashOk = hash === "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" ? 1 : 0;
      console.log(JSON.stringify({ fileBefore, fileAfter, droppedKiB: dropped / 1024, writtenBefore, writtenAfter, roundTrip, hashOk }));
    `);
    expect(out["writtenBefore"], "no written page in a read-only file mapping to protect").to.be.above(0);
    expect(out["writtenAfter"]).to.equal(out["writtenBefore"]);
    expect(out["droppedKiB"]).to.be.above(10 * 1024);
    expect((out["fileBefore"] ?? 0) - (out["fileAfter"] ?? 0)).to.be.above(10 * 1024);
    expect(out["roundTrip"]).to.equal(1);
    expect(out["hashOk"]).to.equal(1);
  });
});

describe("memory: releasing when quiet", function () {
  /** Keeps the event loop busy for `ms` (one long task), as load would. */
  const busyFor = (ms: number): Promise<void> =>
    new Promise((resolve) =>
      setImmediate(() => {
        const until = performance.now() + ms;
        while (performance.now() < until);
        resolve();
      }),
    );
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const counting = (): NativeMemory & { calls: number; drops: number } => {
    const native = {
      calls: 0,
      drops: 0,
      trim: () => {
        native.calls++;
        return true;
      },
      dropFilePages: () => {
        native.drops++;
        return 4096;
      },
    };
    return native;
  };

  it("releases once after start, once after each busy spell, never while busy or twice while quiet", async function () {
    const native = counting();
    const quiet = startQuietRelease(native, silent, { tickMs: 50, quietTicks: 3 });
    try {
      // Start counts as busy: the first quiet run releases.
      await sleep(400);
      expect(native.calls, "after start").to.equal(1);
      // Staying quiet does not release again.
      await sleep(400);
      expect(native.calls, "quiet").to.equal(1);
      // While busy (every tick full), nothing; once quiet again, exactly one more.
      for (let i = 0; i < 6; i++) await busyFor(60);
      expect(native.calls, "while busy").to.equal(1);
      await sleep(400);
      expect(native.calls, "after the busy spell").to.equal(2);
      expect(native.drops, "file pages dropped with each trim").to.equal(2);
      expect(quiet.releases).to.equal(2);
    } finally {
      quiet.stop();
    }
  });

  it("a trim that takes long does not count as activity (no release loop)", async function () {
    const native = counting();
    const slow: NativeMemory = {
      trim: () => {
        native.trim();
        // Blocks the thread for 120 ms without allocating: a spin on performance.now() leaves
        // garbage whose collection right after would itself read as a busy tick.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120);
        return true;
      },
      dropFilePages: () => native.dropFilePages(),
    };
    const quiet = startQuietRelease(slow, silent, { tickMs: 50, quietTicks: 3 });
    try {
      await sleep(1000);
      expect(native.calls).to.equal(1);
    } finally {
      quiet.stop();
    }
  });

  it("a system where file pages cannot be dropped says why once, and still trims", async function () {
    const native = counting();
    let drops = 0;
    const failing: NativeMemory = {
      trim: () => native.trim(),
      dropFilePages: () => {
        drops++;
        throw new Error("/proc/self/pagemap: Permission denied");
      },
    };
    const lines: string[] = [];
    const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
    const quiet = startQuietRelease(failing, log, { tickMs: 50, quietTicks: 3 });
    try {
      await sleep(400);
      for (let i = 0; i < 6; i++) await busyFor(60);
      await sleep(400);
      expect(native.calls, "trims").to.equal(2);
      expect(drops, "attempts to drop").to.equal(1);
      const said = lines.filter((line) => line.includes("not unmapping unused file pages when quiet"));
      expect(said).to.have.length(1);
      expect(said[0]).to.include("/proc/self/pagemap: Permission denied");
      const released = lines.filter((line) => line.includes("released memory while quiet"));
      expect(
        released.map((line) => (JSON.parse(line) as { fileBytesDropped: number }).fileBytesDropped),
      ).to.deep.equal([0, 0]);
    } finally {
      quiet.stop();
    }
  });

  it("stop() ends it", async function () {
    const native = counting();
    const quiet = startQuietRelease(native, silent, { tickMs: 50, quietTicks: 3 });
    quiet.stop();
    await sleep(400);
    expect(native.calls).to.equal(0);
  });
});
