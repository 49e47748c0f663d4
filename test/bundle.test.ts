// The sidecar as the image runs it: image/bundle.ts writes sidecar/cli/bundle.js into a copy of the
// repository, and the copy's bin/airlock runs it. The demo's three outcomes come out of the
// bundle, and a running sidecar from it loads the memory addon (its path is resolved against the
// bundle's location) and pulls undici's Pool from node_modules at run time.
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { NATIVE_MEMORY_PATH } from "../sidecar/process/memory.ts";
import { ROOT } from "./helpers/cli.ts";
import { eventually } from "./helpers/eventually.ts";

const run = promisify(execFile);

describe("the sidecar bundle (image/bundle.ts)", function () {
  this.timeout(60_000);
  let copy: string;
  before(async function () {
    copy = mkdtempSync(join(tmpdir(), "airlock-bundle-"));
    for (const part of ["bin", "sidecar", "examples", "package.json"])
      cpSync(join(ROOT, part), join(copy, part), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    const { stderr } = await run(process.execPath, [join(ROOT, "image/bundle.ts"), copy]);
    expect(stderr).to.match(/^bundle: .*sidecar\/cli\/bundle\.js from \d+ modules$/m);
  });
  after(function () {
    rmSync(copy, { recursive: true, force: true });
  });

  it("is one module holding the sidecar's dependencies, not importing them", function () {
    const bundle = readFileSync(join(copy, "sidecar/cli/bundle.js"), "utf8");
    expect(bundle).not.to.match(/from\s*"(pino|prom-client|js-yaml)"/);
    expect(bundle).not.to.match(/from\s*"\.{1,2}\//);
    expect(bundle).to.include("airlock_decisions_total");
  });

  it("runs the demo: inject, allow and block as the policy says", async function () {
    const { stdout } = await run(join(copy, "bin/airlock"), ["demo"], { timeout: 30_000 });
    expect(stdout).to.include("All three outcomes as the policy says");
  });

  it("a sidecar from it loads the memory addon next to it and serves", async function () {
    const child = spawn(
      join(copy, "bin/airlock"),
      [
        ...["run", "--policy", join(copy, "examples/demo/policy.yaml")],
        ...["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    try {
      await eventually(() => expect(err).to.match(/listening on http/), {
        what: "the bundled sidecar listening",
      });
      const pid = String(child.pid);
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).to.include(join(copy, "sidecar/cli/bundle.js"));
      const addon = join(copy, "sidecar/native/build/memory.node");
      expect(existsSync(addon), `${NATIVE_MEMORY_PATH} built (make install)`).to.equal(true);
      expect(readFileSync(`/proc/${pid}/maps`, "utf8")).to.include(addon);
      const metrics = /metrics on (http:\/\/\S+)/.exec(err)?.[1] ?? "";
      const text = await (await fetch(`${metrics}/metrics`)).text();
      expect(text).to.include("# TYPE airlock_decisions_total counter");
    } finally {
      child.kill("SIGTERM");
    }
  });
});
