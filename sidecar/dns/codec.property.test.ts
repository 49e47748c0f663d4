// Properties of the DNS codec: any datagram an agent sends to the responder is parsed without
// throwing, and whatever is answered can be encoded within the size the query allows.
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { buildQuery, buildResponse, parseQuery, TYPE, udpResponseLimit } from "./codec.ts";

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];

/** Mostly `usual`, sometimes `unusual`: most packets should get past the header checks. */
const mostly = <T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: usual, weight: 9 }, { arbitrary: unusual, weight: 1 });

// Sizes are explicit: fast-check's default "small" size would stop every byte string at 10 bytes.
const label = mostly(
  fc.uint8Array({ minLength: 1, maxLength: 30, size: "max" }).map((bytes) => [bytes.length, ...bytes]),
  fc.oneof(
    fc.uint8Array({ maxLength: 70, size: "max" }).map((bytes) => [bytes.length, ...bytes]), // over 63: a bad label
    fc.tuple(fc.integer({ min: 0x40, max: 0xff }), fc.nat(255)).map(([a, b]) => [a, b]), // pointers, ext.
  ),
);

// Long names too: a name near the 255-byte wire limit, on either side of it.
const name = fc
  .oneof(fc.array(label, { maxLength: 12 }), fc.array(label, { minLength: 8, maxLength: 16, size: "max" }))
  .map((labels) => [...labels.flat(), 0]);

const opt = fc
  .record({
    owner: mostly(fc.constant(0), fc.nat(255)),
    type: mostly(fc.constant(TYPE.OPT), fc.nat(0xffff)),
    udpSize: fc.nat(0xffff),
    version: mostly(fc.constant(0), fc.nat(255)),
    flags: fc.nat(255),
    options: fc.array(fc.tuple(fc.nat(0xffff), fc.uint8Array({ maxLength: 12 })), { maxLength: 3 }),
    lengthSlack: mostly(fc.constant(0), fc.integer({ min: -5, max: 5 })),
  })
  .map((o) => {
    const options = o.options.flatMap(([code, data]) => [...u16(code), ...u16(data.length), ...data]);
    return [
      o.owner,
      ...u16(o.type),
      ...u16(o.udpSize),
      0,
      o.version,
      o.flags,
      0,
      ...u16(options.length + o.lengthSlack),
      ...options,
    ];
  });

/** A query as a stub resolver sends it, with each part now and then out of line. */
const query = fc
  .record({
    id: fc.nat(0xffff),
    flags: mostly(fc.constantFrom(0x0100, 0x0000, 0x0110), fc.nat(0xffff)),
    counts: mostly<[number, number, number]>(
      fc.constant([1, 0, 0]),
      fc.tuple(fc.nat(3), fc.nat(2), fc.nat(2)),
    ),
    name,
    type: fc.oneof(fc.constantFrom(TYPE.A, TYPE.AAAA, TYPE.ANY, TYPE.TXT), fc.nat(0xffff)),
    qclass: mostly(fc.constant(1), fc.nat(0xffff)),
    opt: fc.option(opt),
    trailing: mostly(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 8 })),
  })
  .map((q) =>
    Uint8Array.from([
      ...u16(q.id),
      ...u16(q.flags),
      ...u16(q.counts[0]),
      ...u16(q.counts[1]),
      ...u16(q.counts[2]),
      ...u16(q.opt === null ? 0 : 1),
      ...q.name,
      ...u16(q.type),
      ...u16(q.qclass),
      ...(q.opt ?? []),
      ...q.trailing,
    ]),
  );

/** The query, then possibly cut short, one byte overwritten, or more bytes appended. */
const mutatedQuery = fc
  .tuple(
    query,
    fc.nat(),
    fc.nat(255),
    fc.uint8Array({ maxLength: 16 }),
    fc.constantFrom("none", "none", "cut", "flip", "append"),
  )
  .map(([packet, at, value, extra, how]) => {
    if (how === "cut") return packet.subarray(0, at % (packet.length + 1));
    if (how === "append") return Uint8Array.from([...packet, ...extra]);
    if (how === "flip" && packet.length > 0) {
      const copy = Uint8Array.from(packet);
      copy[at % copy.length] = value;
      return copy;
    }
    return packet;
  });

const ANSWERS = [
  { type: TYPE.A, ttl: 5, data: Uint8Array.from([127, 0, 0, 1]) },
  { type: TYPE.AAAA, ttl: 5, data: new Uint8Array(16) },
] as const;

/** Parses `packet`; whatever is not dropped must encode, echo its ID and fit its size limit. */
function checkPacket(packet: Uint8Array): void {
  const parsed = parseQuery(packet);
  if (parsed.kind === "drop") {
    expect(parsed.reason).to.be.oneOf(["ShortHeader", "NotAQuery"]);
    return;
  }
  if (parsed.kind === "query")
    expect(/[A-Z]/.test(parsed.question.name), parsed.question.name).to.equal(false);
  const limit = udpResponseLimit(parsed.edns);
  const answers = parsed.kind === "query" ? [...ANSWERS, ...ANSWERS] : [];
  const rcode = parsed.kind === "query" ? "NOERROR" : parsed.rcode;
  const response = buildResponse({ ...parsed, rcode, answers }, limit);
  expect(response.length).to.be.at.most(limit);
  expect(((response[0] ?? 0) << 8) | (response[1] ?? 0)).to.equal(parsed.header.id);
}

describe("dns codec: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("parseQuery never throws on arbitrary bytes, and every answer it allows encodes", function () {
    const packet = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.uint8Array({ maxLength: 600, size: "large" }),
    );
    assertProperty(fc.property(packet, checkPacket));
  });

  it("parseQuery never throws on generated, cut and corrupted queries, and every answer encodes", function () {
    assertProperty(fc.property(mutatedQuery, checkPacket));
  });

  it("parseQuery reads back what buildQuery writes (names lower-cased)", function () {
    const plainName = fc
      .array(fc.stringMatching(/^[A-Za-z0-9-]{1,63}$/), { maxLength: 4 })
      .map((l) => l.join("."));
    assertProperty(
      fc.property(
        fc.nat(0xffff),
        plainName,
        fc.nat(0xffff),
        fc.option(fc.nat(0xffff)),
        (id, text, type, udp) => {
          const parsed = parseQuery(
            buildQuery({ id, name: text, type, ...(udp === null ? {} : { edns: { udpSize: udp } }) }),
          );
          expect(parsed.kind).to.equal("query");
          if (parsed.kind !== "query") return;
          expect([parsed.header.id, parsed.question.name, parsed.question.type]).to.deep.equal([
            id,
            text.toLowerCase(),
            type,
          ]);
        },
      ),
    );
  });
});
