// An idle `airlock run` stays asleep: the event-loop lag behind nodejs_eventloop_lag_* is sampled
// every 100 ms (sidecar/observe/metrics.ts), not prom-client's 10 ms, which woke every idle sidecar
// a hundred times a second.
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EVENT_LOOP_SAMPLE_MS } from "../sidecar/observe/metrics.ts";
import { ROOT, startAirlock, type RunningCommand } from "./helpers/cli.ts";

/** Voluntary context switches of every thread of `pid` so far: each one is a sleep ended by a wake-up. */
function wakeups(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${String(pid)}/task`)) {
    const status = readFileSync(`/proc/${String(pid)}/task/${task}/status`, "utf8");
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return total;
}

describe("airlock run: idle", function () {
  this.timeout(30_000);
  let run: RunningCommand;
  before(async function () {
    run = await startAirlock(
      [
        ...["run", "--policy", join(ROOT, "examples/demo/policy.yaml")],
        ...["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
      ],
      /listening on http:\/\/127\.0\.0\.1:\d+/,
    );
  });
  after(async function () {
    run.child.kill("SIGTERM");
    await run.exited;
  });

  it("wakes up a few times a second, not a hundred, and still reports its event-loop lag", async function () {
    // Past start (and the one release of memory that follows it), then four seconds of nothing.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const pid = run.child.pid ?? 0;
    const before = wakeups(pid);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const perSecond = (wakeups(pid) - before) / 4;
    // 10 lag samples a second, the quiet-release tick, a few of V8's and Node's own: about 12 here.
    expect(perSecond, "wake-ups per second of the idle process").to.be.below(40);

    const metrics = /metrics on (http:\/\/\S+)/.exec(run.stderr())?.[1] ?? "";
    const text = await (await fetch(`${metrics}/metrics`)).text();
    const p50 = Number(/^nodejs_eventloop_lag_p50_seconds (\S+)$/m.exec(text)?.[1]);
    // The histogram records the interval between samples, so a free loop reads the interval.
    expect(p50, "nodejs_eventloop_lag_p50_seconds").to.be.within(
      (EVENT_LOOP_SAMPLE_MS * 0.9) / 1000,
      (EVENT_LOOP_SAMPLE_MS * 5) / 1000,
    );
  });
});
