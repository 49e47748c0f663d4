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

const rssMiB = `const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;`;

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
  });

  it("trim() gives back malloc's free pages that glibc's own trimming keeps (fragmented)", function () {
    // 4,000 malloc'd 24 KiB blocks, one in eight kept: the freed ones lie between live blocks, so
    // no free reaches the top of the arena. ArrayBuffers of Buffer.allocUnsafeSlow are malloc'd.
    const out = inChild(`
      import { createRequire } from "node:module";
      import { readFileSync } from "node:fs";
      ${rssMiB}
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
  const counting = (): NativeMemory & { calls: number } => {
    const native = {
      calls: 0,
      trim: () => {
        native.calls++;
        return true;
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
        const until = performance.now() + 120;
        while (performance.now() < until);
        return true;
      },
    };
    const quiet = startQuietRelease(slow, silent, { tickMs: 50, quietTicks: 3 });
    try {
      await sleep(1000);
      expect(native.calls).to.equal(1);
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
