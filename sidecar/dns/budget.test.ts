// DNS as a data channel through a wildcard rule: every name under `*.zone` is resolved, but each
// one never sent before takes a token of a per-pod budget; with none left the name is REFUSED,
// counted as `throttled`, audited, and never reaches the upstream. Exact and already-sent names are
// free. The bucket alone, the wildcard check against the real policy, then the real responder
// with the real fake upstream (whose record of questions proves what left).
import { expect } from "chai";
import { Writable } from "node:stream";
import { createAuditLog } from "../observe/audit.ts";
import { compile } from "../policy/compile.ts";
import { load } from "../policy/load.ts";
import { nameReachable } from "../policy/reachable.ts";
import { createNameBudget, underWildcard } from "./budget.ts";
import { dig } from "./test-clients.ts";
import { startHarness, type Harness } from "./test-harness.ts";

describe("dns name budget: the bucket", () => {
  it("admits `capacity` new names, refuses the next, and refills one token per `refillMs`", () => {
    let clock = 1000;
    const budget = createNameBudget({ capacity: 3, refillMs: 500, now: () => clock });
    expect(["a", "b", "c", "d"].map((n) => budget.take(n))).to.deep.equal([
      "admitted",
      "admitted",
      "admitted",
      "exhausted",
    ]);
    expect(budget.take("a"), "a name already sent stays free when the bucket is empty").to.equal("known");
    clock += 499;
    expect(budget.take("d")).to.equal("exhausted");
    clock += 1;
    expect(budget.take("d")).to.equal("admitted");
    expect(budget.take("d")).to.equal("known");
    expect(budget.take("e")).to.equal("exhausted");
    clock += 10_000; // refills to capacity, never beyond
    expect(["e", "f", "g", "h"].map((n) => budget.take(n))).to.deep.equal([
      "admitted",
      "admitted",
      "admitted",
      "exhausted",
    ]);
  });

  it("a clock stepping back refills nothing", () => {
    let clock = 10_000;
    const budget = createNameBudget({ capacity: 1, refillMs: 100, now: () => clock });
    expect(budget.take("a")).to.equal("admitted");
    clock = 0;
    expect(budget.take("b")).to.equal("exhausted");
    clock = 10_099;
    expect(budget.take("b")).to.equal("exhausted");
    clock = 10_100;
    expect(budget.take("b")).to.equal("admitted");
  });

  it("remembers at most `remember` names, forgetting the least recently asked", () => {
    const budget = createNameBudget({ capacity: 10, remember: 2, now: () => 0 });
    budget.take("a");
    budget.take("b");
    budget.take("a"); // a is now the most recent
    budget.take("c"); // forgets b
    expect([budget.take("a"), budget.take("c"), budget.take("b")]).to.deep.equal([
      "known",
      "known",
      "admitted",
    ]);
  });

  it("refuses a nonsensical shape", () => {
    expect(() => createNameBudget({ refillMs: 0 })).to.throw(RangeError);
  });
});

describe("dns name budget: which names are under a wildcard (the real policy index)", () => {
  const compiled = compile({
    policies: [
      {
        apiVersion: "airlock.dev/v1alpha1",
        kind: "EgressPolicy",
        metadata: { name: "p", namespace: "ns" },
        spec: {
          podSelector: {},
          egress: [
            { name: "exact", hosts: ["api.example.com", "x.pkg.example.org"] },
            { name: "wild", hosts: ["*.pkg.example.org"] },
          ],
        },
      },
    ],
    credentials: [],
  });
  if (!compiled.ok) throw new Error("fixture must compile");
  const loaded = load(compiled.value);
  if (!loaded.ok) throw new Error("fixture must load");
  const index = loaded.value;
  const allowed = (name: string): boolean => nameReachable(index, name);
  const long = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(45)}.pkg.example.org`;
  const table = [
    { host: "api.example.com", want: false, why: "an exact name" },
    { host: "a.pkg.example.org", want: true, why: "one label under the wildcard" },
    { host: "a.b.c.pkg.example.org", want: true, why: "any depth" },
    { host: "x.pkg.example.org", want: true, why: "exact and under the wildcard: budgeted (stricter)" },
    { host: `q.${long.slice(2)}`, want: true, why: "a 253-byte name with a one-letter first label" },
    { host: long, want: true, why: "a 253-byte name" },
  ];
  for (const row of table) {
    it(`${row.why}: ${row.host.slice(0, 40)}${row.host.length > 40 ? "…" : ""}`, () => {
      expect(allowed(row.host), "fixture: the name must be allowed").to.equal(true);
      expect(underWildcard(row.host, allowed)).to.equal(row.want);
    });
  }
  it("the long fixture is a maximal name", () => {
    expect(long.length).to.equal(253);
  });
});

describe("dns name budget: the responder", () => {
  let h: Harness;
  let clock = 0;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const ask = (name: string, type = "A", transport = "+notcp", host = "127.0.0.1") =>
    dig(h.responder.udpPort, [transport, name, type], host);
  const asked = (name: string): number => h.upstream.askedNames().filter((n) => n === name).length;

  before(async () => {
    h = await startHarness({
      extraHosts: ["::1"],
      nameBudget: { capacity: 3, refillMs: 60_000, now: () => clock },
      log: createAuditLog({ pod: "budget-pod" }, { destination: sink }),
    });
  });
  after(async () => {
    await h.close();
  });

  it("the N+1th new name under a wildcard is REFUSED, counted, audited and never forwarded", async () => {
    const throttled = await h.count("throttled");
    expect((await ask("a.b.cdn.example.test")).answers).to.have.length(1);
    expect((await ask("a.b.cdn.example.test", "AAAA")).status, "A and AAAA share a token").to.equal(
      "NOERROR",
    );
    expect((await ask("n1.cdn.example.test", "A", "+tcp")).status).to.equal("NXDOMAIN"); // asked upstream
    expect((await ask("n2.cdn.example.test", "A", "+notcp", "::1")).status).to.equal("NXDOMAIN");
    for (const [transport, host] of [
      ["+notcp", "127.0.0.1"],
      ["+tcp", "127.0.0.1"],
      ["+notcp", "::1"],
      ["+tcp", "::1"],
    ] as const) {
      const refused = await ask("c2vjcmv0.cdn.example.test", "A", transport, host);
      expect(refused.status, `${transport} ${host}`).to.equal("REFUSED");
    }
    expect(asked("n1.cdn.example.test")).to.equal(1);
    expect(asked("c2vjcmv0.cdn.example.test")).to.equal(0);
    expect(await h.count("throttled")).to.equal(throttled + 4);
    const audit = lines.filter((l) => l.msg === "dns name budget exhausted");
    expect(audit).to.have.length(4);
    expect(audit[0]).to.deep.include({ level: "warn", pod: "budget-pod" });
    expect(audit[0]?.dns).to.deep.include({
      name: "c2vjcmv0.cdn.example.test",
      outcome: "throttled",
      reason: "NameBudgetExhausted",
    });
  });

  it("exact names and names already sent keep resolving with the budget spent", async () => {
    const before = asked("a.b.cdn.example.test");
    expect((await ask("api.example.test")).answers).to.have.length(2);
    expect((await ask("a.b.cdn.example.test")).answers).to.have.length(1);
    expect((await ask("n1.cdn.example.test", "AAAA")).status).to.equal("NXDOMAIN");
    expect(asked("a.b.cdn.example.test")).to.equal(before + 1);
    expect((await ask("other.cdn.example.test")).status).to.equal("REFUSED");
  });

  it("the budget refills: one token per refill period", async () => {
    clock += 60_000;
    expect((await ask("c2vjcmv0.cdn.example.test")).status).to.equal("NXDOMAIN"); // the upstream's answer
    expect(asked("c2vjcmv0.cdn.example.test")).to.equal(1);
    expect((await ask("other.cdn.example.test")).status).to.equal("REFUSED");
    expect(asked("other.cdn.example.test")).to.equal(0);
  });
});
