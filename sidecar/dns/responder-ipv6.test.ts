// The responder over IPv6 loopback: ip6tables redirects the agent's IPv6 DNS to [::1]:15053
// (docs/capture.md), so [::1] must give, over UDP and TCP, exactly the answers 127.0.0.1 gives —
// one answerer behind both. Then the sidecar runtime: its default 127.0.0.1 DNS address serves
// [::1] as well, on the same port.
import { expect } from "chai";
import net from "node:net";
import { Writable } from "node:stream";
import { createAuditLog } from "../observe/audit.ts";
import { compile } from "../policy/compile.ts";
import { StaticSecrets } from "../proxy/secrets.ts";
import { startSidecar } from "../runtime.ts";
import { TYPE, buildQuery } from "./codec.ts";
import { TcpDnsClient, dig, frame, readHeader, udpExchange, type DigResult } from "./test-clients.ts";
import { startHarness, type Harness } from "./test-harness.ts";

/** What must be equal over every address and transport (dig's header id and timings are not). */
function answerOf(result: DigResult): object {
  const answers = result.answers.map((a) => `${a.name} ${String(a.ttl)} ${a.type} ${a.data}`).sort();
  return { status: result.status, answers };
}

/** Fails with what to do when this machine has no IPv6 loopback (a prerequisite, never a skip). */
async function requireIpv6Loopback(): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => {
      reject(new Error(`no IPv6 loopback here (${err.message}): enable IPv6 and bring up lo with ::1`));
    });
    server.listen(0, "::1", resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}

const QUERIES = [
  { args: ["api.example.test", "A"], status: "NOERROR", count: 2 },
  { args: ["api.example.test", "AAAA"], status: "NOERROR", count: 1 },
  { args: ["a.b.cdn.example.test", "A"], status: "NOERROR", count: 1 },
  { args: ["evil.example.test", "A"], status: "NXDOMAIN", count: 0 },
  { args: ["api.example.test", "MX"], status: "NOERROR", count: 0 },
] as const;

describe("dns responder over IPv6: [::1] answers as 127.0.0.1 does", () => {
  let h: Harness;
  before(async () => {
    await requireIpv6Loopback();
    h = await startHarness({ extraHosts: ["::1"] });
  });
  after(async () => {
    await h.close();
  });

  it("serves both loopback addresses on one port", () => {
    expect(h.responder.hosts).to.deep.equal(["127.0.0.1", "::1"]);
  });

  for (const q of QUERIES) {
    for (const transport of ["udp", "tcp"] as const) {
      it(`dig ${q.args.join(" ")} over ${transport}: same answer from [::1] and 127.0.0.1`, async () => {
        const flags = transport === "tcp" ? ["+tcp"] : ["+notcp"];
        const port = h.responder.udpPort;
        const v4 = await dig(port, [...flags, ...q.args]);
        const v6 = await dig(port, [...flags, ...q.args], "::1");
        expect(answerOf(v6)).to.deep.equal(answerOf(v4));
        expect(v6.status, v6.output).to.equal(q.status);
        expect(v6.answers).to.have.length(q.count);
      });
    }
  }

  it("raw UDP and TCP clients get byte-identical responses over both families", async () => {
    const port = h.responder.udpPort;
    const query = buildQuery({ id: 0x6666, name: "api.example.test", type: TYPE.A });
    const [udp4] = await udpExchange(port, [query], 2000);
    const [udp6] = await udpExchange(port, [query], 2000, "::1");
    expect(udp4, "no UDP answer over 127.0.0.1").not.to.equal(undefined);
    expect(udp6, "no UDP answer over [::1]").to.deep.equal(udp4);
    const tcpAnswers: (Buffer | undefined)[] = [];
    for (const host of ["127.0.0.1", "::1"]) {
      const client = await TcpDnsClient.connect(port, host);
      try {
        await client.write(frame(query));
        tcpAnswers.push(await client.next());
      } finally {
        client.close();
      }
    }
    expect(tcpAnswers[0] && readHeader(tcpAnswers[0])).to.include({ id: 0x6666, ancount: 2, rcode: 0 });
    expect(tcpAnswers[1], "TCP over [::1]").to.deep.equal(tcpAnswers[0]);
  });

  it("queries over [::1] are counted like any other", async () => {
    const before = await h.count("nxdomain");
    await dig(h.responder.udpPort, ["+notcp", "evil.example.test", "A"], "::1");
    await dig(h.responder.udpPort, ["+tcp", "evil.example.test", "A"], "::1");
    expect(await h.count("nxdomain")).to.equal(before + 2);
  });
});

describe("dns responder: extra hosts that cannot be bound", () => {
  it("an address this host lacks (IPv6 off) is skipped; the rest is served", async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: binding it fails with EADDRNOTAVAIL.
    const h = await startHarness({ extraHosts: ["192.0.2.1"] });
    try {
      expect(h.responder.hosts).to.deep.equal(["127.0.0.1"]);
      expect((await dig(h.responder.udpPort, ["api.example.test", "A"])).answers).to.have.length(2);
    } finally {
      await h.close();
    }
  });

  it("an extra host whose port is taken is an error, and nothing is left listening", async () => {
    await requireIpv6Loopback();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "::1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const error = await startHarness({ port, extraHosts: ["::1"] }).then(
        async (h) => {
          await h.close();
          return undefined;
        },
        (err: unknown) => err as { code?: string },
      );
      expect(error?.code).to.equal("EADDRINUSE");
      const again = await startHarness({ port }); // 127.0.0.1 was released
      await again.close();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe("sidecar runtime: the DNS responder at 127.0.0.1 also serves [::1]", () => {
  it("answers over [::1], UDP and TCP, on the port chosen for 127.0.0.1", async () => {
    await requireIpv6Loopback();
    const sink = new Writable({
      write(_chunk, _encoding, callback) {
        callback();
      },
    });
    const sidecar = await startSidecar({
      listen: { host: "127.0.0.1", port: 0 },
      metrics: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      secrets: new StaticSecrets([]),
      log: createAuditLog({}, { destination: sink }),
      // Pinned: the runtime answers this name without asking any resolver.
      pins: new Map([["api.example.test", ["93.184.215.14"]]]),
    });
    try {
      const compiled = compile({
        policies: [
          {
            apiVersion: "airlock.dev/v1alpha1",
            kind: "EgressPolicy",
            metadata: { name: "p", namespace: "agents" },
            spec: { podSelector: {}, egress: [{ name: "api", hosts: ["api.example.test"] }] },
          },
        ],
        credentials: [],
      });
      if (!compiled.ok) throw new Error("fixture policy must compile");
      expect(sidecar.gate.apply(JSON.parse(JSON.stringify(compiled.value)), 1)).to.deep.equal({ ok: true });
      const port = sidecar.dnsAddress?.port ?? 0;
      expect(port).to.be.above(0);
      for (const transport of ["+notcp", "+tcp"]) {
        const v6 = await dig(port, [transport, "api.example.test", "A"], "::1");
        expect(answerOf(v6), v6.output).to.deep.equal({
          status: "NOERROR",
          answers: ["api.example.test. 30 A 93.184.215.14"],
        });
        const denied = await dig(port, [transport, "evil.example.test", "A"], "::1");
        expect(denied.status).to.equal("NXDOMAIN");
      }
    } finally {
      await sidecar.close();
    }
  });
});
