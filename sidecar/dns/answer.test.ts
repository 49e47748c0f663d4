// One named case per line of createAnswerer's numbered list, without sockets: a stub resolver
// records every lookup, so "never forwarded" is asserted as "never called".
import { expect } from "chai";
import { createAddressPolicy } from "../net/address.ts";
import { createAnswerer, type AnswererOptions, type DnsAnswer, type ResolveFn } from "./answer.ts";
import { TYPE, buildQuery, parseQuery } from "./codec.ts";
import { readHeader } from "./test-clients.ts";
import { header, packet } from "./test-packets.ts";

type Upstream = Awaited<ReturnType<ResolveFn>> | { throws: string } | "hang";

interface Row {
  name: string;
  query: { name: string; type: number };
  upstream?: Upstream;
  options?: Partial<AnswererOptions>;
  transport?: "udp" | "tcp";
  want: {
    outcome: DnsAnswer["outcome"];
    reason: DnsAnswer["reason"];
    rcode: number;
    answers: number;
    ttl?: number;
    tc?: boolean;
  };
  lookups: string[];
}

const ALLOWED = new Set(["api.example.test", "many.example.test"]);
const PUBLIC = ["93.184.215.14", "151.101.1.69"];

const rows: Row[] = [
  {
    name: "1. the root name is NXDOMAIN, not asked",
    query: { name: "", type: TYPE.A },
    want: { outcome: "nxdomain", reason: "NameNotAllowed", rcode: 3, answers: 0 },
    lookups: [],
  },
  {
    name: "1. a denied name is NXDOMAIN, not asked",
    query: { name: "evil.example.test", type: TYPE.A },
    want: { outcome: "nxdomain", reason: "NameNotAllowed", rcode: 3, answers: 0 },
    lookups: [],
  },
  {
    name: "1. a denied name's MX is NXDOMAIN, not asked",
    query: { name: "evil.example.test", type: TYPE.MX },
    want: { outcome: "nxdomain", reason: "NameNotAllowed", rcode: 3, answers: 0 },
    lookups: [],
  },
  {
    name: "1. isAllowedName throwing is SERVFAIL, not asked",
    query: { name: "api.example.test", type: TYPE.A },
    options: {
      isAllowedName: () => {
        throw new Error("policy bug");
      },
    },
    want: { outcome: "error", reason: "PolicyError", rcode: 2, answers: 0 },
    lookups: [],
  },
  {
    name: "2. MX of an allowed name is NODATA, not asked",
    query: { name: "api.example.test", type: TYPE.MX },
    want: { outcome: "nodata", reason: "TypeNotServed", rcode: 0, answers: 0 },
    lookups: [],
  },
  {
    name: "2. ANY of an allowed name is NODATA, not asked",
    query: { name: "api.example.test", type: TYPE.ANY },
    want: { outcome: "nodata", reason: "TypeNotServed", rcode: 0, answers: 0 },
    lookups: [],
  },
  {
    name: "3. too many lookups in flight is SERVFAIL, not asked",
    query: { name: "api.example.test", type: TYPE.A },
    options: { maxPendingLookups: 0 },
    want: { outcome: "error", reason: "Overloaded", rcode: 2, answers: 0 },
    lookups: [],
  },
  {
    name: "3. upstream ENOTFOUND is NXDOMAIN",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { throws: "ENOTFOUND" },
    want: { outcome: "nxdomain", reason: "UpstreamNxdomain", rcode: 3, answers: 0 },
    lookups: ["A api.example.test"],
  },
  {
    name: "3. upstream ESERVFAIL is SERVFAIL",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { throws: "ESERVFAIL" },
    want: { outcome: "error", reason: "UpstreamFailure", rcode: 2, answers: 0 },
    lookups: ["A api.example.test"],
  },
  {
    name: "3. an upstream slower than the deadline is SERVFAIL",
    query: { name: "api.example.test", type: TYPE.AAAA },
    upstream: "hang",
    options: { resolveTimeoutMs: 50 },
    want: { outcome: "error", reason: "UpstreamTimeout", rcode: 2, answers: 0 },
    lookups: ["AAAA api.example.test"],
  },
  {
    name: "4. no addresses is NODATA",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { addresses: [] },
    want: { outcome: "nodata", reason: "UpstreamNoData", rcode: 0, answers: 0 },
    lookups: ["A api.example.test"],
  },
  {
    name: "4. only forbidden addresses is NODATA",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { addresses: ["10.0.0.1", "169.254.169.254", "127.0.0.1"] },
    want: { outcome: "nodata", reason: "AddressesForbidden", rcode: 0, answers: 0 },
    lookups: ["A api.example.test"],
  },
  {
    name: "4. forbidden, wrong-family, malformed and duplicate addresses are dropped",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: {
      addresses: [
        PUBLIC[0] ?? "",
        "10.0.0.1",
        "2a04:4e42::323",
        "010.1.1.1",
        "not an ip",
        PUBLIC[0] ?? "",
        PUBLIC[1] ?? "",
      ],
      ttl: 10,
    },
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 2, ttl: 10 },
    lookups: ["A api.example.test"],
  },
  {
    name: "4. an address allowed by --allow-address is kept",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { addresses: ["10.0.0.1"] },
    options: { addressPolicy: createAddressPolicy([{ family: 4, address: "10.0.0.0", prefix: 8 }]) },
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 1, ttl: 30 },
    lookups: ["A api.example.test"],
  },
  {
    name: "5. TTL is capped at 30",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { addresses: PUBLIC, ttl: 3600 },
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 2, ttl: 30 },
    lookups: ["A api.example.test"],
  },
  {
    name: "5. an unknown TTL is 30",
    query: { name: "api.example.test", type: TYPE.A },
    upstream: { addresses: PUBLIC },
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 2, ttl: 30 },
    lookups: ["A api.example.test"],
  },
  {
    name: "5. over UDP without EDNS0 the answer is truncated to 512 bytes",
    query: { name: "many.example.test", type: TYPE.AAAA },
    upstream: { addresses: Array.from({ length: 40 }, (_, i) => `2606:2800::${i + 1}`) },
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 17, ttl: 30, tc: true },
    lookups: ["AAAA many.example.test"],
  },
  {
    name: "5. over TCP the same answer is whole",
    query: { name: "many.example.test", type: TYPE.AAAA },
    upstream: { addresses: Array.from({ length: 40 }, (_, i) => `2606:2800::${i + 1}`) },
    transport: "tcp",
    want: { outcome: "answered", reason: "Answered", rcode: 0, answers: 40, ttl: 30 },
    lookups: ["AAAA many.example.test"],
  },
];

function stubResolve(upstream: Upstream | undefined, lookups: string[]): ResolveFn {
  return (name, type) => {
    lookups.push(`${type} ${name}`);
    if (upstream === undefined) return Promise.reject(new Error("this row must not resolve"));
    if (upstream === "hang") return new Promise(() => undefined);
    if ("throws" in upstream)
      return Promise.reject(Object.assign(new Error(upstream.throws), { code: upstream.throws }));
    return Promise.resolve(upstream);
  };
}

/** The TTL of the first answer record (answers follow the echoed question). */
function firstTtl(response: Uint8Array, questionLength: number): number {
  return new DataView(response.buffer, response.byteOffset).getUint32(12 + questionLength + 6);
}

describe("dns answer: createAnswerer precedence", () => {
  for (const row of rows) {
    it(row.name, async () => {
      const lookups: string[] = [];
      const answer = createAnswerer({
        isAllowedName: (name) => ALLOWED.has(name),
        resolve: stubResolve(row.upstream, lookups),
        addressPolicy: createAddressPolicy([]),
        ...row.options,
      });
      const query = buildQuery({ id: 42, ...row.query });
      const result = await answer(query, row.transport ?? "udp");
      expect(result.response).not.to.equal(undefined);
      const response = result.response ?? new Uint8Array();
      const head = readHeader(response);
      const ttl = head.ancount > 0 ? firstTtl(response, query.length - 12) : undefined;
      expect({
        outcome: result.outcome,
        reason: result.reason,
        rcode: head.rcode,
        answers: head.ancount,
        ttl,
        tc: head.tc,
      }).to.deep.equal({ ttl: undefined, tc: false, ...row.want });
      expect(head.id).to.equal(42);
      expect(lookups).to.deep.equal(row.lookups);
    });
  }

  it("shares one lookup between identical queries in flight", async () => {
    const lookups: string[] = [];
    const answer = createAnswerer({
      isAllowedName: () => true,
      resolve: stubResolve({ addresses: PUBLIC }, lookups),
      addressPolicy: createAddressPolicy([]),
    });
    const query = buildQuery({ id: 1, name: "api.example.test", type: TYPE.A });
    const results = await Promise.all([answer(query, "udp"), answer(query, "tcp"), answer(query, "udp")]);
    expect(results.map((result) => result.outcome)).to.deep.equal(["answered", "answered", "answered"]);
    expect(lookups).to.deep.equal(["A api.example.test"]);
  });

  it("malformed packets are refused with the codec's reason; headerless ones dropped", async () => {
    const answer = createAnswerer({
      isAllowedName: () => true,
      resolve: stubResolve(undefined, []),
      addressPolicy: createAddressPolicy([]),
    });
    const formerr = await answer(packet(header({ qd: 0 })), "udp");
    expect({ outcome: formerr.outcome, reason: formerr.reason }).to.deep.equal({
      outcome: "refused",
      reason: "QuestionCount",
    });
    const dropped = await answer(Uint8Array.of(1, 2, 3), "tcp");
    expect(dropped).to.deep.equal({ outcome: "refused", reason: "ShortHeader", response: undefined });
  });

  it("the callback sees a dot and a space inside a label escaped, in lower case", async () => {
    const seen: string[] = [];
    const answer = createAnswerer({
      isAllowedName: (name) => (seen.push(name), false),
      resolve: stubResolve(undefined, []),
      addressPolicy: createAddressPolicy([]),
    });
    const query = packet(
      header({}),
      [5, 0x61, 0x2e, 0x62, 0x20, 0x43, 4, 0x74, 0x65, 0x73, 0x74, 0],
      [0, 1, 0, 1],
    );
    expect(parseQuery(query).kind).to.equal("query");
    const result = await answer(query, "udp");
    expect(seen).to.deep.equal(["a\\.b\\032c.test"]);
    expect(result.outcome).to.equal("nxdomain");
  });
});
