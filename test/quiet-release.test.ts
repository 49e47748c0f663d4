// A real `airlock run` gives memory back when its data path falls quiet (sidecar/process/memory.ts
// with the native addon): malloc's free pages and the file pages it no longer touches, once after
// start, once after each spell of load, never in a loop.
import { expect } from "chai";
import http from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { NATIVE_MEMORY_PATH } from "../sidecar/process/memory.ts";
import { ROOT, startAirlock, type RunningCommand } from "./helpers/cli.ts";
import { eventually } from "./helpers/eventually.ts";

interface Release {
  rssBeforeBytes: number;
  rssAfterBytes: number;
  fileBytesDropped: number;
  ms: number;
}

/** The "released memory while quiet" lines the process has written so far. */
function releases(run: RunningCommand): Release[] {
  return run
    .stdout()
    .split("\n")
    .filter((line) => line.includes('"msg":"released memory while quiet"'))
    .map((line) => JSON.parse(line) as Release);
}

/** `total` requests through the proxy, `concurrency` at a time on keep-alive connections. */
async function load(proxy: URL, total: number, concurrency: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          const req = http.get(
            {
              host: proxy.hostname,
              port: proxy.port,
              path: "http://blocked.example.test/" + "x".repeat(512),
              headers: { host: "blocked.example.test" },
              agent,
            },
            (res) => {
              res.resume();
              res.on("end", () => {
                resolve(res.statusCode ?? 0);
              });
            },
          );
          req.on("error", reject);
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return statuses;
}

describe("airlock run: memory given back when quiet", function () {
  this.timeout(60_000);
  let run: RunningCommand;
  before(async function () {
    run = await startAirlock(
      [
        ...["run", "--policy", join(ROOT, "examples/demo/policy.yaml"), "--log-level", "debug"],
        ...["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
      ],
      /listening on http:\/\/127\.0\.0\.1:\d+/,
    );
  });
  after(async function () {
    run.child.kill("SIGTERM");
    await run.exited;
  });

  it("loads the addon, releases once after start and once after a spell of load, then stays put", async function () {
    const maps = readFileSync(`/proc/${String(run.child.pid)}/maps`, "utf8");
    expect(maps, `the sidecar did not load ${NATIVE_MEMORY_PATH}:\n${run.stdout()}`).to.include(
      NATIVE_MEMORY_PATH,
    );
    const [afterStart] = await eventually(
      () => {
        const seen = releases(run);
        expect(seen).to.have.length(1);
        return seen;
      },
      { what: "the release after start" },
    );
    // Start-up touched most of Node's binary; the release unmaps what the idle process does not use.
    expect(afterStart?.fileBytesDropped).to.be.above(8 * 1024 * 1024);
    expect(afterStart?.rssAfterBytes).to.be.below(afterStart?.rssBeforeBytes ?? 0);
    const proxy = new URL(/listening on (http:\/\/\S+)/.exec(run.stderr())?.[1] ?? "");
    const statuses = await load(proxy, 4000, 20);
    expect(new Set(statuses)).to.deep.equal(new Set([403]));
    const [, afterLoad] = await eventually(
      () => {
        const seen = releases(run);
        expect(seen).to.have.length(2);
        return seen;
      },
      { what: "the release after the load" },
    );
    expect(afterLoad?.rssAfterBytes).to.be.below(afterLoad?.rssBeforeBytes ?? 0);
    // The code the load ran came back in; the release unmaps it again.
    expect(afterLoad?.fileBytesDropped).to.be.above(0);
    // Quiet for longer than the three quiet seconds a release waits for: no second release. The
    // positive signal that the time passed is a request answered after it (which is no load).
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(await load(proxy, 1, 1)).to.deep.equal([403]);
    expect(releases(run)).to.have.length(2);
  });
});
