// Properties of the ClientHello peek and the HTTP sniff: the first bytes of every connection come
// from the agent, so no byte string may throw, and a verdict, once given, must not change when
// more bytes arrive (or a listener could be steered by how the agent splits its writes).
import { expect } from "chai";
import fc from "fast-check";
import { assertProperty, PROPERTY_TIMEOUT_MS } from "../../test/helpers/property.ts";
import { parseClientHello, sniffHttp, type ClientHelloResult } from "./client-hello.ts";

const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u24 = (n: number): Buffer => Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
const vec1 = (data: Uint8Array): Buffer => Buffer.concat([Buffer.from([data.length & 0xff]), data]);
const vec2 = (data: Uint8Array): Buffer => Buffer.concat([u16(data.length), data]);

// Sizes are explicit: fast-check's default "small" size would stop every byte string at 10 bytes.
const bytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength, size: "max" });
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.uint8Array({ maxLength: 2048, size: "large" }),
);
const hostBytes = fc.oneof(
  fc.domain().map((name) => Buffer.from(name, "latin1")),
  bytes(40),
);

/** Mostly `usual`, sometimes `unusual`: most hellos should get deep enough to be accepted. */
const mostly = <T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: usual, weight: 9 }, { arbitrary: unusual, weight: 1 });

const serverName = fc
  .oneof(
    { arbitrary: hostBytes.map((name) => [[0, name] as const]), weight: 9 },
    fc.array(fc.tuple(fc.nat(255), hostBytes), { maxLength: 2 }),
  )
  .map((entries) =>
    vec2(Buffer.concat(entries.map(([type, name]) => Buffer.concat([Buffer.from([type]), vec2(name)])))),
  );

const alpn = fc
  .array(
    fc.oneof(
      fc.constantFrom("h2", "http/1.1").map((p) => Buffer.from(p)),
      bytes(8),
    ),
    { maxLength: 3 },
  )
  .map((protocols) => vec2(Buffer.concat(protocols.map(vec1))));

const extension = fc.oneof(
  serverName.map((data) => ({ type: 0, data })),
  alpn.map((data) => ({ type: 16, data })),
  fc.record({ type: fc.nat(0xffff), data: bytes(20) }),
);
const extensions = mostly(
  fc.uniqueArray(extension, { maxLength: 4, selector: (e) => e.type }),
  fc.array(extension, { maxLength: 4 }),
);

/** A ClientHello body, well-formed in outline; its inner lengths follow what it holds. */
const helloBody = fc
  .record({
    version: mostly(fc.constantFrom(0x0301, 0x0303, 0x0304), fc.nat(0xffff)),
    random: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    session: mostly(bytes(32), bytes(33)),
    suites: mostly(fc.constant(Buffer.from([0x13, 0x01, 0xc0, 0x2f])), bytes(8)),
    compression: mostly(fc.constant(Buffer.from([0])), bytes(2)),
    extensions: fc.option(extensions, { freq: 10 }),
  })
  .map((h) =>
    Buffer.concat([
      u16(h.version),
      h.random,
      vec1(h.session),
      vec2(h.suites),
      vec1(h.compression),
      h.extensions === null
        ? Buffer.alloc(0)
        : vec2(Buffer.concat(h.extensions.map((e) => Buffer.concat([u16(e.type), vec2(e.data)])))),
    ]),
  );

/** The hello split into records of random sizes; now and then a header byte or length is wrong. */
const helloRecords = fc
  .tuple(
    helloBody,
    fc.oneof({ arbitrary: fc.constant(1), weight: 9 }, fc.nat(255)),
    fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, fc.nat(0xffffff)),
    fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 4 }),
    fc.oneof({ arbitrary: fc.constantFrom(1, 3, 4), weight: 9 }, fc.nat(255)),
  )
  .map(([body, type, declared, sizes, minor]) => {
    const handshake = Buffer.concat([Buffer.from([type]), u24(declared ?? body.length), body]);
    const records: Buffer[] = [];
    for (let at = 0, i = 0; at < handshake.length; i++) {
      const size = sizes[i % sizes.length] ?? 1;
      const fragment = handshake.subarray(at, at + size);
      records.push(Buffer.from([22, 3, minor]), u16(fragment.length), fragment);
      at += size;
    }
    return Buffer.concat(records);
  });

/** The records, then possibly cut short, one byte overwritten, or more bytes appended. */
const mutatedHello = fc
  .tuple(
    helloRecords,
    fc.nat(),
    fc.nat(255),
    bytes(64),
    fc.constantFrom("none", "none", "cut", "flip", "append"),
  )
  .map(([buf, at, value, extra, how]) => {
    if (how === "cut") return buf.subarray(0, at % (buf.length + 1));
    if (how === "append") return Buffer.concat([buf, extra]);
    if (how === "flip" && buf.length > 0) {
      const copy = Buffer.from(buf);
      copy[at % copy.length] = value;
      return copy;
    }
    return buf;
  });

const arbitraryBytes = fc.oneof(
  anyBytes.map((b) => Buffer.from(b)),
  anyBytes.map((b) => Buffer.concat([Buffer.from([22]), b])),
  anyBytes.map((b) => Buffer.concat([Buffer.from([22, 3, 3]), b])),
);

function checkResult(buf: Buffer, result: ClientHelloResult): void {
  if (result.state === "ok") {
    expect(Number.isInteger(result.length) && result.length > 0 && result.length <= buf.length).to.equal(
      true,
    );
  } else if (result.state === "invalid") {
    expect(result.message).to.be.a("string").and.not.equal("");
  } else {
    expect(result.state).to.be.oneOf(["need-more", "not-tls"]);
  }
}

/**
 * Parses `buf` and `buf` + `more`: no throw, and a verdict on `buf` stands on the longer input
 * (an `invalid` one may name another fault: record headers are checked before the hello).
 */
function checkHello(buf: Buffer, more: Uint8Array): void {
  const result = parseClientHello(buf);
  checkResult(buf, result);
  const longer = Buffer.concat([buf, more]);
  const later = parseClientHello(longer);
  checkResult(longer, later);
  if (result.state === "invalid") expect(later.state, buf.toString("hex")).to.equal("invalid");
  else if (result.state !== "need-more") expect(later, buf.toString("hex")).to.deep.equal(result);
}

describe("parseClientHello and sniffHttp: properties", function () {
  this.timeout(PROPERTY_TIMEOUT_MS);

  it("parseClientHello never throws on arbitrary bytes, and its verdicts are final", function () {
    assertProperty(fc.property(arbitraryBytes, bytes(64), checkHello));
  });

  it("parseClientHello never throws on generated, cut and corrupted hellos, and its verdicts are final", function () {
    assertProperty(fc.property(mutatedHello, bytes(64), checkHello));
  });

  it("sniffHttp never throws on arbitrary bytes, and its verdicts are final", function () {
    const opening = fc.oneof(
      bytes(40),
      fc.stringMatching(/^[A-Z]{0,22} ?/).map((s) => new TextEncoder().encode(s)),
    );
    assertProperty(
      fc.property(opening, bytes(8), (start, more) => {
        const verdict = sniffHttp(Buffer.from(start));
        expect(verdict).to.be.oneOf(["http", "not-http", "need-more"]);
        const later = sniffHttp(Buffer.concat([start, more]));
        if (verdict !== "need-more") expect(later).to.equal(verdict);
      }),
    );
  });
});
