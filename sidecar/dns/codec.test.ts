import { expect } from "chai";
import { TYPE, buildQuery, parseQuery, type Edns } from "./codec.ts";
import { exampleQuestion, header, label, opt, packet, summary, typeClass, wireName } from "./test-packets.ts";

const query = (name: string, type: number = TYPE.A, edns?: Edns, qclass = 1) => ({
  kind: "query",
  question: { name, type, qclass },
  edns,
});
const reject = (rcode: string, reason: string, question?: object, edns?: Edns) => ({
  kind: "reject",
  rcode,
  reason,
  question,
  edns,
});

describe("dns codec: parseQuery", () => {
  const apiA = { name: "api.example.com", type: TYPE.A, qclass: 1 };
  const rows: { name: string; packet: Uint8Array; want: object }[] = [
    { name: "plain A query", packet: packet(header({}), exampleQuestion), want: query("api.example.com") },
    {
      name: "upper case is lower-cased",
      packet: packet(header({}), wireName("API", "Example", "COM"), typeClass(TYPE.AAAA)),
      want: query("api.example.com", TYPE.AAAA),
    },
    { name: "the root name is empty", packet: packet(header({}), [0], typeClass(2)), want: query("", 2) },
    {
      name: "a dot inside a label is escaped, not a label boundary",
      packet: packet(header({}), wireName("api.example", "com"), typeClass(TYPE.A)),
      want: query("api\\.example.com"),
    },
    {
      name: "binary and space bytes are escaped as \\DDD",
      packet: packet(header({}), [3, 0x00, 0x20, 0xff], wireName("com"), typeClass(TYPE.A)),
      want: query("\\000\\032\\255.com"),
    },
    {
      name: "EDNS0 OPT with a cookie option",
      packet: packet(
        header({ ar: 1 }),
        exampleQuestion,
        opt(1232, { options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8] }),
      ),
      want: query("api.example.com", TYPE.A, { udpSize: 1232, version: 0, dnssecOk: false }),
    },
    {
      name: "EDNS0 DO bit is read",
      packet: packet(header({ ar: 1 }), exampleQuestion, opt(4096, { dnssecOk: true })),
      want: query("api.example.com", TYPE.A, { udpSize: 4096, version: 0, dnssecOk: true }),
    },
    {
      name: "a 255-byte name is the longest accepted",
      packet: packet(
        header({}),
        wireName("a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)),
        [0, 1, 0, 1],
      ),
      want: query(["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".")),
    },
    {
      name: "11 bytes is dropped: no header",
      packet: packet(header({}).slice(0, 11)),
      want: { kind: "drop", reason: "ShortHeader" },
    },
    { name: "empty packet is dropped", packet: packet([]), want: { kind: "drop", reason: "ShortHeader" } },
    {
      name: "a response (QR set) is dropped",
      packet: packet(header({ flags: 0x8180 }), exampleQuestion),
      want: { kind: "drop", reason: "NotAQuery" },
    },
    {
      name: "opcode STATUS is NOTIMP",
      packet: packet(header({ flags: 2 << 11 }), exampleQuestion),
      want: reject("NOTIMP", "UnsupportedOpcode"),
    },
    {
      name: "opcode UPDATE is NOTIMP",
      packet: packet(header({ flags: 5 << 11 }), exampleQuestion),
      want: reject("NOTIMP", "UnsupportedOpcode"),
    },
    {
      name: "opcode IQUERY is NOTIMP",
      packet: packet(header({ flags: 1 << 11 }), exampleQuestion),
      want: reject("NOTIMP", "UnsupportedOpcode"),
    },
    {
      name: "QDCOUNT 0 is FORMERR",
      packet: packet(header({ qd: 0 })),
      want: reject("FORMERR", "QuestionCount"),
    },
    {
      name: "QDCOUNT 2 is FORMERR",
      packet: packet(header({ qd: 2 }), exampleQuestion, exampleQuestion),
      want: reject("FORMERR", "QuestionCount"),
    },
    {
      name: "an answer record in a query is FORMERR",
      packet: packet(header({ an: 1 }), exampleQuestion),
      want: reject("FORMERR", "UnexpectedRecords"),
    },
    {
      name: "an authority record in a query is FORMERR",
      packet: packet(header({ ns: 1 }), exampleQuestion),
      want: reject("FORMERR", "UnexpectedRecords"),
    },
    {
      name: "two additional records are FORMERR",
      packet: packet(header({ ar: 2 }), exampleQuestion, opt(512), opt(512)),
      want: reject("FORMERR", "UnexpectedRecords"),
    },
    {
      name: "a compression pointer in the question is FORMERR",
      packet: packet(header({}), label("api"), [0xc0, 12], typeClass(TYPE.A)),
      want: reject("FORMERR", "CompressedName"),
    },
    {
      name: "a compression loop (pointer to itself) is FORMERR",
      packet: packet(header({}), [0xc0, 12], typeClass(TYPE.A)),
      want: reject("FORMERR", "CompressedName"),
    },
    {
      name: "extended label type 0x40 is FORMERR",
      packet: packet(header({}), [0x41, 0], typeClass(TYPE.A)),
      want: reject("FORMERR", "BadLabel"),
    },
    {
      name: "reserved label type 0x80 is FORMERR",
      packet: packet(header({}), [0x80, 0], typeClass(TYPE.A)),
      want: reject("FORMERR", "BadLabel"),
    },
    {
      name: "a 256-byte name is FORMERR",
      packet: packet(
        header({}),
        wireName("a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)),
        [0, 1, 0, 1],
      ),
      want: reject("FORMERR", "NameTooLong"),
    },
    {
      name: "a long chain of one-byte labels past 255 is FORMERR",
      packet: packet(header({}), wireName(...Array<string>(130).fill("x")), typeClass(TYPE.A)),
      want: reject("FORMERR", "NameTooLong"),
    },
    {
      name: "a label running off the end is FORMERR",
      packet: packet(header({}), [10, 0x61, 0x62]),
      want: reject("FORMERR", "Truncated"),
    },
    {
      name: "a name without its root byte is FORMERR",
      packet: packet(header({}), label("api")),
      want: reject("FORMERR", "Truncated"),
    },
    {
      name: "a missing type and class is FORMERR",
      packet: packet(header({}), wireName("api"), [0, 1]),
      want: reject("FORMERR", "Truncated"),
    },
    {
      name: "bytes after the question are FORMERR",
      packet: packet(header({}), exampleQuestion, [0xde, 0xad]),
      want: reject("FORMERR", "TrailingBytes", apiA),
    },
    {
      name: "ARCOUNT 1 without the record is FORMERR",
      packet: packet(header({ ar: 1 }), exampleQuestion),
      want: reject("FORMERR", "Truncated", apiA),
    },
    {
      name: "an additional record other than OPT is FORMERR",
      packet: packet(header({ ar: 1 }), exampleQuestion, [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
      want: reject("FORMERR", "BadOpt", apiA),
    },
    {
      name: "an OPT with a non-root owner is FORMERR",
      packet: packet(header({ ar: 1 }), exampleQuestion, [1, 0x61], opt(512)),
      want: reject("FORMERR", "BadOpt", apiA),
    },
    {
      name: "an OPT whose option overruns its data is FORMERR",
      packet: packet(header({ ar: 1 }), exampleQuestion, opt(512, { options: [0, 10, 0, 9, 1, 2] })),
      want: reject("FORMERR", "BadOpt", apiA),
    },
    {
      name: "an OPT whose data overruns the packet is FORMERR",
      packet: packet(header({ ar: 1 }), exampleQuestion, opt(512).slice(0, 9), [0, 4]),
      want: reject("FORMERR", "Truncated", apiA),
    },
    {
      name: "EDNS version 1 is BADVERS",
      packet: packet(header({ ar: 1 }), exampleQuestion, opt(1232, { version: 1 })),
      want: reject("BADVERS", "BadEdnsVersion", apiA, { udpSize: 1232, version: 1, dnssecOk: false }),
    },
    {
      name: "class CH (version.bind) is REFUSED",
      packet: packet(header({}), wireName("version", "bind"), typeClass(TYPE.TXT, 3)),
      want: reject("REFUSED", "UnsupportedClass", { name: "version.bind", type: TYPE.TXT, qclass: 3 }),
    },
    {
      name: "class ANY is REFUSED",
      packet: packet(header({}), wireName("api", "example", "com"), typeClass(TYPE.A, 255)),
      want: reject("REFUSED", "UnsupportedClass", { ...apiA, qclass: 255 }),
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(summary(parseQuery(row.packet))).to.deep.equal(row.want);
    });
  }

  it("echoes the question exactly as received, case included (0x20 clients check it)", () => {
    const parsed = parseQuery(packet(header({}), wireName("ApI", "eXample", "com"), typeClass(TYPE.A)));
    expect(parsed.kind).to.equal("query");
    if (parsed.kind !== "query") return;
    expect([...parsed.question.wire]).to.deep.equal([
      ...wireName("ApI", "eXample", "com"),
      ...typeClass(TYPE.A),
    ]);
  });

  it("reads what buildQuery writes", () => {
    const bytes = buildQuery({ id: 7, name: "a.b.example", type: TYPE.AAAA, edns: { udpSize: 1232 } });
    expect(summary(parseQuery(bytes))).to.deep.equal(
      query("a.b.example", TYPE.AAAA, { udpSize: 1232, version: 0, dnssecOk: false }),
    );
  });
});
