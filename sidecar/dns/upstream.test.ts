import { expect } from "chai";
import { TYPE } from "./codec.ts";
import { startFakeUpstream, type FakeUpstream } from "./test-upstream.ts";
import { createUpstreamResolve } from "./upstream.ts";

describe("dns upstream: createUpstreamResolve against a real server", () => {
  let server: FakeUpstream;
  before(async () => {
    server = await startFakeUpstream({
      "two.example.test": { A: ["93.184.215.14", "151.101.1.69"], AAAA: ["2a04:4e42::323"], ttl: 120 },
      "v4only.example.test": { A: ["93.184.215.14"] },
      "broken.example.test": { rcode: "SERVFAIL" },
      "silent.example.test": { silent: true },
    });
  });
  after(async () => {
    await server.close();
  });

  const resolve = () =>
    createUpstreamResolve({ servers: [`127.0.0.1:${server.port}`], timeoutMs: 300, tries: 2 });
  const outcome = (promise: Promise<unknown>) =>
    promise.then(
      (value) => ({ value }),
      (err: unknown) => ({ code: (err as { code?: unknown }).code }),
    );

  const rows: { name: string; query: string; type: "A" | "AAAA"; want: object }[] = [
    {
      name: "A records with their TTL",
      query: "two.example.test",
      type: "A",
      want: { value: { addresses: ["93.184.215.14", "151.101.1.69"], ttl: 120 } },
    },
    {
      name: "AAAA records with their TTL",
      query: "two.example.test",
      type: "AAAA",
      want: { value: { addresses: ["2a04:4e42::323"], ttl: 120 } },
    },
    {
      name: "NODATA is no addresses",
      query: "v4only.example.test",
      type: "AAAA",
      want: { value: { addresses: [] } },
    },
    {
      name: "NXDOMAIN throws ENOTFOUND",
      query: "nowhere.example.test",
      type: "A",
      want: { code: "ENOTFOUND" },
    },
    {
      name: "SERVFAIL throws ESERVFAIL",
      query: "broken.example.test",
      type: "A",
      want: { code: "ESERVFAIL" },
    },
    {
      name: "no answer throws ETIMEOUT",
      query: "silent.example.test",
      type: "A",
      want: { code: "ETIMEOUT" },
    },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      expect(await outcome(resolve()(row.query, row.type))).to.deep.equal(row.want);
    });
  }

  it("asks exactly the name and type it is given", async () => {
    const before = server.asked.length;
    await resolve()("two.example.test", "AAAA");
    expect(server.asked.slice(before)).to.deep.equal([{ name: "two.example.test", type: TYPE.AAAA }]);
  });

  it("a silent server is tried `tries` times, then given up", async () => {
    const before = server.asked.length;
    await outcome(resolve()("silent.example.test", "A"));
    expect(server.asked.slice(before).length).to.equal(2);
  });

  it("defaults to the machine's resolvers without asking anything at construction", () => {
    expect(createUpstreamResolve()).to.be.a("function");
  });
});
