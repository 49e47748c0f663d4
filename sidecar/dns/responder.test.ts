// The responder end to end: real clients (Node's resolver, `dig` over UDP and TCP) ask it, it asks
// a real fake upstream through `upstream.ts`, and the upstream's record of every question proves
// what left the sidecar — a denied name never does.
import { expect } from "chai";
import type { DnsOutcome } from "./answer.ts";
import { dig } from "./test-clients.ts";
import { BIG_AAAA, V4, V6, startHarness, type Harness } from "./test-harness.ts";

type Want = { addresses: string[] } | { error: "ENOTFOUND" | "ENODATA" | "ESERVFAIL" };

interface Row {
  name: string;
  query: string;
  type: "A" | "AAAA" | "MX" | "TXT";
  want: Want;
  /** Whether the fake upstream must have been asked for this name (false: it must not have been). */
  forwarded: boolean;
  outcome: DnsOutcome;
}

const EXFIL_LABEL = "mzxw6ytboi".repeat(6) + "mzx"; // 63 characters of base32, a maximal label

const rows: Row[] = [
  {
    name: "allowed name: answered with the upstream's A records",
    query: "api.example.test",
    type: "A",
    want: { addresses: [V4[0], V4[1]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "allowed name: answered with the upstream's AAAA records",
    query: "api.example.test",
    type: "AAAA",
    want: { addresses: [V6[0]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "case and a trailing dot do not matter",
    query: "API.Example.TEST.",
    type: "A",
    want: { addresses: [V4[0], V4[1]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "wildcard-allowed subdomain is answered",
    query: "a.b.cdn.example.test",
    type: "A",
    want: { addresses: [V4[2]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "the wildcard does not cover its apex: NXDOMAIN, not forwarded",
    query: "cdn.example.test",
    type: "A",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "denied name: NXDOMAIN, never forwarded",
    query: "evil.example.test",
    type: "A",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "denied name, AAAA: NXDOMAIN, never forwarded",
    query: "evil.example.test",
    type: "AAAA",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "denied name, MX: NXDOMAIN, never forwarded",
    query: "evil.example.test",
    type: "MX",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "exfiltration label under a denied name is never forwarded",
    query: "c2VjcmV0.evil.example.test",
    type: "A",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "a maximal base32 label under a denied name is never forwarded",
    query: `${EXFIL_LABEL}.${EXFIL_LABEL}.evil.example.test`,
    type: "TXT",
    want: { error: "ENOTFOUND" },
    forwarded: false,
    outcome: "nxdomain",
  },
  {
    name: "MX of an allowed name: NODATA without forwarding",
    query: "api.example.test",
    type: "MX",
    want: { error: "ENODATA" },
    forwarded: false,
    outcome: "nodata",
  },
  {
    name: "TXT of an allowed name: NODATA without forwarding",
    query: "api.example.test",
    type: "TXT",
    want: { error: "ENODATA" },
    forwarded: false,
    outcome: "nodata",
  },
  {
    name: "forbidden A addresses are filtered out",
    query: "mixed.example.test",
    type: "A",
    want: { addresses: [V4[0]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "forbidden AAAA addresses (loopback, metadata, mapped private) are filtered out",
    query: "mixed.example.test",
    type: "AAAA",
    want: { addresses: [V6[1]] },
    forwarded: true,
    outcome: "answered",
  },
  {
    name: "every address forbidden: NODATA",
    query: "internal.example.test",
    type: "A",
    want: { error: "ENODATA" },
    forwarded: true,
    outcome: "nodata",
  },
  {
    name: "upstream NODATA stays NODATA",
    query: "v4only.example.test",
    type: "AAAA",
    want: { error: "ENODATA" },
    forwarded: true,
    outcome: "nodata",
  },
  {
    name: "upstream NXDOMAIN for an allowed name is NXDOMAIN",
    query: "gone.example.test",
    type: "A",
    want: { error: "ENOTFOUND" },
    forwarded: true,
    outcome: "nxdomain",
  },
  {
    name: "upstream SERVFAIL is SERVFAIL",
    query: "broken.example.test",
    type: "A",
    want: { error: "ESERVFAIL" },
    forwarded: true,
    outcome: "error",
  },
];

async function ask(h: Harness, row: Row): Promise<Want> {
  try {
    const name = row.query;
    switch (row.type) {
      case "A":
        return { addresses: await h.client.resolve4(name) };
      case "AAAA":
        return { addresses: await h.client.resolve6(name) };
      case "MX":
        return { addresses: (await h.client.resolveMx(name)).map((mx) => mx.exchange) };
      case "TXT":
        return { addresses: (await h.client.resolveTxt(name)).map((txt) => txt.join("")) };
    }
  } catch (err) {
    return { error: (err as { code: "ENOTFOUND" | "ENODATA" | "ESERVFAIL" }).code };
  }
}

describe("dns responder: Node's resolver as the client", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  for (const row of rows) {
    it(row.name, async () => {
      const askedBefore = h.upstream.asked.length;
      const countBefore = await h.count(row.outcome);
      expect(await ask(h, row)).to.deep.equal(row.want);
      const asked = h.upstream.asked.slice(askedBefore).map((question) => question.name);
      const lower = row.query.toLowerCase().replace(/\.$/, "");
      if (row.forwarded) expect(asked).to.include(lower);
      else expect(asked, "the upstream must not have been asked anything").to.deep.equal([]);
      expect(await h.count(row.outcome)).to.equal(countBefore + 1);
    });
  }

  it("no denied name ever reached the upstream, in any form", () => {
    const leaked = h.upstream
      .askedNames()
      .filter((name) => name.includes("evil") || name === "cdn.example.test");
    expect(leaked).to.deep.equal([]);
  });

  it("caps the TTL at 30 s and keeps a shorter upstream TTL", async () => {
    expect(await h.client.resolve4("api.example.test", { ttl: true })).to.deep.equal([
      { address: V4[0], ttl: 30 },
      { address: V4[1], ttl: 30 },
    ]);
    expect(await h.client.resolve4("short.example.test", { ttl: true })).to.deep.equal([
      { address: V4[0], ttl: 5 },
    ]);
  });

  it("a large AAAA set arrives whole: c-ares sees TC over UDP and retries over TCP", async () => {
    expect(await h.client.resolve6("big.example.test")).to.deep.equal(BIG_AAAA);
  });
});

describe("dns responder: dig as the client", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  for (const transport of ["udp", "tcp"] as const) {
    const over = (args: string[]) => (transport === "tcp" ? ["+tcp", ...args] : args);

    it(`allowed name answered, RA set, AA never (${transport})`, async () => {
      const result = await dig(h.responder.udpPort, over(["api.example.test", "A"]));
      expect(result.status, result.output).to.equal("NOERROR");
      expect(result.answers).to.deep.equal([
        { name: "api.example.test.", ttl: 30, type: "A", data: V4[0] },
        { name: "api.example.test.", ttl: 30, type: "A", data: V4[1] },
      ]);
      expect(result.flags).to.include.members(["qr", "rd", "ra"]);
      expect(result.flags).not.to.include.members(["aa", "tc"]);
    });

    it(`denied name NXDOMAIN and not forwarded (${transport})`, async () => {
      const before = h.upstream.asked.length;
      const result = await dig(h.responder.udpPort, over(["c2VjcmV0.evil.example.test", "A"]));
      expect(result.status).to.equal("NXDOMAIN");
      expect(h.upstream.asked.slice(before)).to.deep.equal([]);
    });

    it(`ANY of an allowed name is NODATA without forwarding (${transport})`, async () => {
      const before = h.upstream.asked.length;
      const result = await dig(h.responder.udpPort, over(["api.example.test", "ANY"]));
      expect([result.status, result.answers]).to.deep.equal(["NOERROR", []]);
      expect(h.upstream.asked.slice(before)).to.deep.equal([]);
    });

    it(`opcode STATUS is NOTIMP (${transport})`, async () => {
      const result = await dig(h.responder.udpPort, over(["+opcode=status", "api.example.test"]));
      expect(result.status).to.equal("NOTIMP");
    });

    it(`class CH (version.bind) is REFUSED (${transport})`, async () => {
      const result = await dig(h.responder.udpPort, over(["-c", "CH", "-t", "TXT", "version.bind"]));
      expect(result.status).to.equal("REFUSED");
    });
  }

  it("UDP without EDNS0: 512 bytes, TC set, only the answers that fit", async () => {
    const result = await dig(h.responder.udpPort, ["+noedns", "+ignore", "big.example.test", "AAAA"]);
    expect(result.flags).to.include("tc");
    expect(result.answers.length).to.equal(Math.floor((512 - 12 - 22) / 28));
  });

  it("UDP without EDNS0: dig retries over TCP after TC and gets every record", async () => {
    const result = await dig(h.responder.udpPort, ["+noedns", "big.example.test", "AAAA"]);
    expect(result.truncatedRetry).to.equal(true);
    expect(result.answers.map((answer) => answer.data)).to.deep.equal(BIG_AAAA);
  });

  it("UDP with EDNS0 1232: the 1165-byte answer fits, no TC", async () => {
    const result = await dig(h.responder.udpPort, ["+bufsize=1232", "big.example.test", "AAAA"]);
    expect(result.flags).not.to.include("tc");
    expect(result.answers).to.have.length(40);
  });

  it("UDP with EDNS0 4096 is still capped at 1232", async () => {
    const many = Array.from({ length: 100 }, (_, i) => `2606:2800:220:2::${(i + 1).toString(16)}`);
    const capped = await startHarness({ resolve: () => Promise.resolve({ addresses: many }) });
    try {
      const udp = await dig(capped.responder.udpPort, [
        "+bufsize=4096",
        "+ignore",
        "big.example.test",
        "AAAA",
      ]);
      expect(udp.flags).to.include("tc");
      expect(udp.answers.length).to.equal(Math.floor((1232 - 12 - 22 - 11) / 28));
      const tcp = await dig(capped.responder.udpPort, ["+tcp", "big.example.test", "AAAA"]);
      expect(tcp.answers.map((answer) => answer.data)).to.deep.equal(many);
    } finally {
      await capped.close();
    }
  });
});

describe("dns responder: metrics", () => {
  it("counts one query of each outcome in airlock_dns_queries_total{outcome}", async () => {
    const h = await startHarness();
    try {
      await h.client.resolve4("api.example.test");
      await h.client.resolve4("evil.example.test").catch(() => undefined);
      await h.client.resolveMx("api.example.test").catch(() => undefined);
      await h.client.resolve4("broken.example.test").catch(() => undefined);
      await dig(h.responder.udpPort, ["-c", "CH", "-t", "TXT", "version.bind"]);
      const outcomes = ["answered", "nxdomain", "nodata", "refused", "error"] as const;
      const counts = await Promise.all(outcomes.map((outcome) => h.count(outcome)));
      expect(Object.fromEntries(outcomes.map((outcome, i) => [outcome, counts[i]]))).to.deep.equal({
        answered: 1,
        nxdomain: 1,
        nodata: 1,
        refused: 1,
        error: 1,
      });
      const text = await h.metrics.registry.metrics();
      expect(text).not.to.include("evil");
    } finally {
      await h.close();
    }
  });
});
