import { expect } from "chai";
import { WorkQueue, type Timers } from "./queue.ts";

/** Timers under the test's control: nothing fires until advance(). */
class FakeTimers implements Timers {
  #now = 0;
  #next = 0;
  readonly #pending = new Map<number, { at: number; callback: () => void }>();
  now(): number {
    return this.#now;
  }
  set(callback: () => void, ms: number): number {
    this.#next += 1;
    this.#pending.set(this.#next, { at: this.#now + ms, callback });
    return this.#next;
  }
  clear(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  get pending(): number {
    return this.#pending.size;
  }
  advance(ms: number): void {
    this.#now += ms;
    const due = [...this.#pending].filter(([, t]) => t.at <= this.#now).sort(([, a], [, b]) => a.at - b.at);
    for (const [handle, t] of due) {
      this.#pending.delete(handle);
      t.callback();
    }
  }
}

/** Resolves to the value, or "waiting" when the promise has not settled after a turn of the event loop. */
async function settled<T>(promise: Promise<T>): Promise<T | "waiting"> {
  return Promise.race([
    promise,
    new Promise<"waiting">((resolve) => {
      setImmediate(() => {
        resolve("waiting");
      });
    }),
  ]);
}

describe("WorkQueue", () => {
  it("coalesces duplicate adds of a queued key", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.add("a");
    expect(q.length).to.equal(2);
    expect([await q.get(), await q.get()]).to.deep.equal(["a", "b"]);
    expect(await settled(q.get())).to.equal("waiting");
    q.shutDown();
  });

  it("never hands a key to two workers at once; a re-add during processing runs once more after done", async () => {
    const q = new WorkQueue();
    q.add("ns");
    const first = await q.get();
    const second = q.get();
    q.add("ns");
    q.add("ns");
    expect(await settled(second)).to.equal("waiting"); // ns is being processed: not handed out again
    if (first !== undefined) q.done(first);
    expect(await settled(second)).to.equal("ns"); // exactly once more
    q.done("ns");
    expect(await settled(q.get())).to.equal("waiting");
    q.shutDown();
  });

  it("a waiting worker is woken by add", async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add("x");
    expect(await next).to.equal("x");
    q.shutDown();
  });

  it("done without a re-add does not queue the key again", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.done((await q.get()) ?? "");
    expect(q.length).to.equal(0);
    q.shutDown();
  });

  it("backoff doubles from 100 ms per failure, caps at 30 s, and forget resets it", () => {
    const timers = new FakeTimers();
    const q = new WorkQueue({ timers });
    const delays = Array.from({ length: 12 }, () => q.addRateLimited("a"));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
    expect(q.numRequeues("a")).to.equal(12);
    q.forget("a");
    expect(q.numRequeues("a")).to.equal(0);
    expect(q.addRateLimited("a")).to.equal(100);
    q.shutDown();
  });

  it("a rate-limited key is added when its delay has passed, and keeps the earlier of two retries", async () => {
    const timers = new FakeTimers();
    const q = new WorkQueue({ timers });
    q.addRateLimited("a"); // due at 100
    q.addRateLimited("a"); // due at 200: the retry at 100 stands
    expect(timers.pending).to.equal(1);
    timers.advance(99);
    expect(q.length).to.equal(0);
    timers.advance(1);
    expect(q.length).to.equal(1);
    expect(await q.get()).to.equal("a");
    q.shutDown();
  });

  it("shutDown wakes every waiting worker with undefined and drops queued keys and retries", async () => {
    const timers = new FakeTimers();
    const q = new WorkQueue({ timers });
    const waiters = [q.get(), q.get()];
    q.shutDown();
    expect(await Promise.all(waiters)).to.deep.equal([undefined, undefined]);
    q.add("late");
    q.addRateLimited("late");
    expect(timers.pending).to.equal(0);
    expect(await q.get()).to.equal(undefined);
    expect(q.shuttingDown).to.equal(true);
  });

  it("with real timers, a retry arrives after its delay", async () => {
    const q = new WorkQueue({ baseDelayMs: 5 });
    const started = performance.now();
    q.addRateLimited("a");
    expect(await q.get()).to.equal("a");
    expect(performance.now() - started).to.be.at.least(4);
    q.shutDown();
  });
});
