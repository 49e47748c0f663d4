import { expect } from "chai";
import {
  TYPE,
  addressBytes,
  buildQuery,
  buildResponse,
  parseQuery,
  udpResponseLimit,
  type Edns,
  type ParsedQuery,
  type ResponseSpec,
} from "./codec.ts";
import { readHeader } from "./test-clients.ts";
import { exampleQuestion, header, packet, summary } from "./test-packets.ts";

describe("dns codec: buildResponse", () => {
  const parsedQuery = (bytes: Uint8Array): Extract<ParsedQuery, { kind: "query" }> => {
    const parsed = parseQuery(bytes);
    if (parsed.kind !== "query")
      throw new Error(`fixture is not a query: ${JSON.stringify(summary(parsed))}`);
    return parsed;
  };
  const plain = parsedQuery(packet(header({ id: 0xbeef, flags: 0x0110 }), exampleQuestion));
  const withOpt = parsedQuery(
    buildQuery({ id: 9, name: "api.example.com", type: TYPE.A, edns: { udpSize: 4096, dnssecOk: true } }),
  );
  const v4 = (n: number) => ({ type: TYPE.A, ttl: 30, data: Uint8Array.of(93, 184, 0, n) });
  const spec = (over: Partial<ResponseSpec>): ResponseSpec => ({ ...plain, rcode: "NOERROR", ...over });

  it("echoes ID, RD, CD and the question; sets QR and RA; never AA", () => {
    const bytes = buildResponse(spec({ rcode: "NXDOMAIN" }), 512);
    expect(readHeader(bytes)).to.deep.equal({
      id: 0xbeef,
      qr: true,
      opcode: 0,
      aa: false,
      tc: false,
      rd: true,
      ra: true,
      rcode: 3,
      qdcount: 1,
      ancount: 0,
      nscount: 0,
      arcount: 0,
    });
    expect((bytes[3] ?? 0) & 0x10).to.equal(0x10); // CD echoed
    expect([...bytes.subarray(12)]).to.deep.equal(exampleQuestion);
  });

  it("writes answers owned by a pointer to the question name", () => {
    const bytes = buildResponse(spec({ answers: [v4(1)] }), 512);
    expect(readHeader(bytes).ancount).to.equal(1);
    const answer = [...bytes.subarray(12 + exampleQuestion.length)];
    expect(answer).to.deep.equal([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 93, 184, 0, 1]);
  });

  it("adds an OPT record only when the query had one, echoing DO", () => {
    expect(readHeader(buildResponse(spec({}), 512)).arcount).to.equal(0);
    const bytes = buildResponse({ ...withOpt, rcode: "NOERROR" }, 1232);
    expect(readHeader(bytes).arcount).to.equal(1);
    expect([...bytes.subarray(bytes.length - 11)]).to.deep.equal([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
  });

  it("BADVERS: 1 in the OPT's extended rcode, 0 in the header", () => {
    const bytes = buildResponse({ ...withOpt, rcode: "BADVERS" }, 1232);
    expect(readHeader(bytes).rcode).to.equal(0);
    expect(bytes[bytes.length - 6]).to.equal(1);
  });

  it("leaves out answers that do not fit and sets TC", () => {
    const answers = Array.from({ length: 40 }, (_, i) => v4(i));
    const bytes = buildResponse(spec({ answers }), 512);
    const head = readHeader(bytes);
    expect(bytes.length).to.be.at.most(512);
    expect(head.tc).to.equal(true);
    expect(head.ancount).to.equal(Math.floor((512 - 12 - exampleQuestion.length) / 16));
    expect(readHeader(buildResponse(spec({ answers }), 65535)).tc).to.equal(false);
  });

  it("a reject without a question has QDCOUNT 0 and no answers", () => {
    const bytes = buildResponse(
      { header: plain.header, question: undefined, edns: undefined, rcode: "FORMERR", answers: [v4(1)] },
      512,
    );
    expect(bytes.length).to.equal(12);
    expect(readHeader(bytes)).to.include({ qdcount: 0, ancount: 0, rcode: 1 });
  });

  const limits: { name: string; edns: Edns | undefined; want: number }[] = [
    { name: "no EDNS: 512", edns: undefined, want: 512 },
    { name: "EDNS below 512 counts as 512", edns: { udpSize: 100, version: 0, dnssecOk: false }, want: 512 },
    { name: "EDNS 1232 is honoured", edns: { udpSize: 1232, version: 0, dnssecOk: false }, want: 1232 },
    { name: "EDNS 4096 is capped at 1232", edns: { udpSize: 4096, version: 0, dnssecOk: false }, want: 1232 },
  ];
  for (const row of limits) {
    it(`udpResponseLimit: ${row.name}`, () => {
      expect(udpResponseLimit(row.edns)).to.equal(row.want);
    });
  }
});

describe("dns codec: addressBytes", () => {
  const rows: { ip: string; want: number[] | undefined }[] = [
    { ip: "93.184.215.14", want: [93, 184, 215, 14] },
    { ip: "0.0.0.0", want: [0, 0, 0, 0] },
    { ip: "::1", want: [...Array<number>(15).fill(0), 1] },
    { ip: "2606:2800::1", want: [0x26, 0x06, 0x28, 0, ...Array<number>(11).fill(0), 1] },
    { ip: "::ffff:1.2.3.4", want: [...Array<number>(10).fill(0), 0xff, 0xff, 1, 2, 3, 4] },
    { ip: "1:2:3:4:5:6:7:8", want: [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8] },
    { ip: "256.1.1.1", want: undefined },
    { ip: "010.1.1.1", want: undefined },
    { ip: "1.2.3", want: undefined },
    { ip: "1::2::3", want: undefined },
    { ip: "1:2:3:4:5:6:7:8:9", want: undefined },
    { ip: "1:2:3:4:5:6:7", want: undefined },
    { ip: "gggg::", want: undefined },
    { ip: "example.com", want: undefined },
    { ip: "", want: undefined },
  ];
  for (const row of rows) {
    it(`${JSON.stringify(row.ip)} → ${row.want === undefined ? "not an address" : `${row.want.length} bytes`}`, () => {
      const bytes = addressBytes(row.ip);
      expect(bytes === undefined ? undefined : [...bytes]).to.deep.equal(row.want);
    });
  }
});
