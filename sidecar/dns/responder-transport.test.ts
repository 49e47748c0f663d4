// The responder's transports under hostile input: malformed packets over UDP and TCP, fuzzing,
// RFC 7766 framing, and the TCP limits (idle timeout, connection cap), plus port handling.
import { expect } from "chai";
import net from "node:net";
import { TYPE, buildQuery } from "./codec.ts";
import { TcpDnsClient, frame, readHeader, udpExchange } from "./test-clients.ts";
import { startHarness, type Harness } from "./test-harness.ts";
import { header, opt, packet, typeClass, wireName, exampleQuestion } from "./test-packets.ts";

const PROBE_ID = 0x5eed;
/** A well-formed query for a denied name: answered at once, never forwarded. */
const probe = buildQuery({ id: PROBE_ID, name: "probe.denied.test", type: TYPE.A });

const rcodes = { FORMERR: 1, NOTIMP: 4, REFUSED: 5, BADVERS: 0 } as const;

const malformed: { name: string; packet: Uint8Array; want: keyof typeof rcodes | "dropped" }[] = [
  {
    name: "11 bytes (truncated header) is dropped",
    packet: packet(header({}).slice(0, 11)),
    want: "dropped",
  },
  {
    name: "a response (QR set) is dropped",
    packet: packet(header({ flags: 0x8180 }), exampleQuestion),
    want: "dropped",
  },
  {
    name: "QDCOUNT 2 is FORMERR",
    packet: packet(header({ qd: 2 }), exampleQuestion, exampleQuestion),
    want: "FORMERR",
  },
  { name: "QDCOUNT 0 is FORMERR", packet: packet(header({ qd: 0 })), want: "FORMERR" },
  {
    name: "a compression loop is FORMERR",
    packet: packet(header({}), [0xc0, 12], typeClass(TYPE.A)),
    want: "FORMERR",
  },
  {
    name: "a 256-byte name is FORMERR",
    packet: packet(
      header({}),
      wireName("a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)),
      typeClass(1),
    ),
    want: "FORMERR",
  },
  { name: "a truncated question is FORMERR", packet: packet(header({}), [7, 0x65, 0x78]), want: "FORMERR" },
  {
    name: "opcode STATUS is NOTIMP",
    packet: packet(header({ flags: 2 << 11 }), exampleQuestion),
    want: "NOTIMP",
  },
  {
    name: "opcode UPDATE is NOTIMP",
    packet: packet(header({ flags: 5 << 11 }), exampleQuestion),
    want: "NOTIMP",
  },
  {
    name: "class CH is REFUSED",
    packet: packet(header({}), wireName("version", "bind"), typeClass(16, 3)),
    want: "REFUSED",
  },
  {
    name: "EDNS version 1 is BADVERS (extended rcode in the OPT)",
    packet: packet(header({ ar: 1 }), exampleQuestion, opt(1232, { version: 1 })),
    want: "BADVERS",
  },
];

describe("dns responder: malformed packets over UDP", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  for (const row of malformed) {
    it(row.name, async () => {
      const refused = await h.count("refused");
      const [first, second, ...rest] = await udpExchange(h.responder.udpPort, [row.packet, probe]);
      expect(rest).to.deep.equal([]);
      if (row.want === "dropped") {
        expect(second).to.equal(undefined);
        expect(first && readHeader(first).id).to.equal(PROBE_ID);
      } else {
        expect(first, "the malformed packet must be answered").not.to.equal(undefined);
        if (first === undefined) return;
        const head = readHeader(first);
        expect({ id: head.id, qr: head.qr, aa: head.aa, ra: head.ra, rcode: head.rcode }).to.deep.equal({
          id: 0x1234,
          qr: true,
          aa: false,
          ra: true,
          rcode: rcodes[row.want],
        });
        expect(second && readHeader(second).id).to.equal(PROBE_ID);
      }
      expect(await h.count("refused")).to.equal(refused + 1);
      expect(h.upstream.asked).to.deep.equal([]);
    });
  }

  it("survives 3,000 random datagrams and still answers", async () => {
    const junk = Array.from({ length: 3000 }, (_, i) =>
      Uint8Array.from({ length: (i * 37) % 700 }, (_, j) => (i * 131 + j * 17 + ((i * j) >> 3)) & 0xff),
    );
    // In batches, so the kernel's receive buffer does not drop datagrams before they are read.
    for (let at = 0; at < junk.length; at += 100) {
      const responses = await udpExchange(h.responder.udpPort, junk.slice(at, at + 100), 20);
      for (const response of responses) expect(response.length).to.be.at.most(512);
    }
    const [answer] = await udpExchange(h.responder.udpPort, [probe]);
    expect(answer && readHeader(answer).id).to.equal(PROBE_ID);
    expect(h.upstream.asked).to.deep.equal([]);
  });
});

describe("dns responder: TCP", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  const query = (id: number, name: string, type: number = TYPE.A) => frame(buildQuery({ id, name, type }));

  it("answers two queries sent in one write on one connection, in order", async () => {
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    try {
      await client.write(Buffer.concat([query(1, "api.example.test"), query(2, "evil.example.test")]));
      const [one, two] = [await client.next(), await client.next()];
      expect(one && readHeader(one)).to.include({ id: 1, rcode: 0, ancount: 2 });
      expect(two && readHeader(two)).to.include({ id: 2, rcode: 3, ancount: 0 });
    } finally {
      client.close();
    }
  });

  it("reassembles a query written one byte at a time", async () => {
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    try {
      for (const byte of query(3, "api.example.test", TYPE.AAAA)) await client.write(Uint8Array.of(byte));
      const answer = await client.next();
      expect(answer && readHeader(answer)).to.include({ id: 3, rcode: 0, ancount: 1 });
    } finally {
      client.close();
    }
  });

  it("answers FORMERR and keeps the connection for the next query", async () => {
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    try {
      await client.write(frame(packet(header({ qd: 2 }), exampleQuestion, exampleQuestion)));
      const bad = await client.next();
      expect(bad && readHeader(bad)).to.include({ id: 0x1234, rcode: 1 });
      await client.write(query(4, "evil.example.test"));
      const next = await client.next();
      expect(next && readHeader(next)).to.include({ id: 4, rcode: 3 });
    } finally {
      client.close();
    }
  });

  for (const [name, bytes] of [
    ["a zero-length frame", frame(new Uint8Array(0))],
    ["a frame shorter than a header", frame(Uint8Array.of(1, 2, 3))],
    ["a framed response (QR set)", frame(packet(header({ flags: 0x8180 }), exampleQuestion))],
  ] as const) {
    it(`closes the connection on ${name}`, async () => {
      const client = await TcpDnsClient.connect(h.responder.tcpPort);
      await client.write(bytes);
      expect(await client.next()).to.equal(undefined);
      await client.closed;
    });
  }

  it("answers what is complete, then closes, when the client half-closes", async () => {
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    client.socket.end(query(5, "api.example.test"));
    const answer = await client.next();
    expect(answer && readHeader(answer)).to.include({ id: 5, rcode: 0 });
    await client.closed;
  });

  it("survives random bytes on 50 connections and still answers", async () => {
    for (let c = 0; c < 50; c++) {
      const client = await TcpDnsClient.connect(h.responder.tcpPort);
      const junk = Uint8Array.from({ length: 40 + c * 13 }, (_, j) => (c * 97 + j * 31) & 0xff);
      await client.write(c % 2 === 0 ? junk : frame(junk)).catch(() => undefined);
      client.close();
    }
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    await client.write(query(6, "api.example.test"));
    const answer = await client.next();
    expect(answer && readHeader(answer)).to.include({ id: 6, rcode: 0 });
    client.close();
  });
});

describe("dns responder: TCP limits", () => {
  it("closes a connection idle for the timeout", async () => {
    const h = await startHarness({ tcpIdleTimeoutMs: 200 });
    try {
      const client = await TcpDnsClient.connect(h.responder.tcpPort);
      const started = Date.now();
      await client.closed;
      expect(Date.now() - started).to.be.within(150, 2000);
    } finally {
      await h.close();
    }
  });

  it("accepts at most maxTcpConnections at once", async () => {
    const h = await startHarness({ maxTcpConnections: 2 });
    try {
      const open = [
        await TcpDnsClient.connect(h.responder.tcpPort),
        await TcpDnsClient.connect(h.responder.tcpPort),
      ];
      const third = await TcpDnsClient.connect(h.responder.tcpPort);
      await third.closed; // refused by the server right after accept
      await open[0]?.write(frame(buildQuery({ id: 7, name: "api.example.test", type: TYPE.A })));
      const answer = await open[0]?.next();
      expect(answer && readHeader(answer)).to.include({ id: 7 });
      for (const client of open) client.close();
    } finally {
      await h.close();
    }
  });
});

describe("dns responder: ports", () => {
  it("UDP and TCP share the one port chosen for port 0", async () => {
    const h = await startHarness();
    try {
      expect(h.responder.tcpPort).to.equal(h.responder.udpPort);
      const [udp] = await udpExchange(h.responder.udpPort, [probe]);
      expect(udp && readHeader(udp).id).to.equal(PROBE_ID);
    } finally {
      await h.close();
    }
  });

  it("close() ends open connections and frees the port", async () => {
    const h = await startHarness();
    const client = await TcpDnsClient.connect(h.responder.tcpPort);
    await h.close();
    await client.closed;
    const again = await startHarness({ port: h.responder.udpPort });
    expect(again.responder.udpPort).to.equal(h.responder.udpPort);
    await again.close();
  });

  it("a fixed port already taken for TCP is an error, not a half-started responder", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const error = await startHarness({ port }).then(
        () => undefined,
        (err: unknown) => err as { code?: string },
      );
      expect(error?.code).to.equal("EADDRINUSE");
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
