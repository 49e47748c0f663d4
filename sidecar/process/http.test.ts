import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** The internal modules of Node's bundled fetch/WebSocket client loaded after importing `specifier`. */
function undiciLoadedBy(specifier: string): string[] {
  const script = `await import(${JSON.stringify(specifier)});
console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.includes("deps/undici"))));`;
  const res = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  expect(res.status, res.stderr).to.equal(0);
  return JSON.parse(res.stdout) as string[];
}

describe("node:http without Node's bundled fetch client", () => {
  it("control: an ESM import of node:http loads it (so the check below can see it)", () => {
    expect(undiciLoadedBy("node:http")).to.have.length.above(0);
  });

  it("the sidecar's commands, data path included, load none of it", () => {
    for (const entry of ["../cli/run.ts", "../cli/serve.ts", "../runtime.ts", "../proxy/boundary.ts"])
      expect(undiciLoadedBy(join(import.meta.dirname, entry)), entry).to.deep.equal([]);
  });
});
